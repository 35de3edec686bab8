//! A hostile vhost-user frontend against a running `vswitchd`.
//!
//! Three server ports in one switch: `a` and `b` carry DPDK testpmd
//! (virtio-user) traffic with exact frame counts, `h` takes a raw Unix
//! socket client that writes the vhost-user wire format by hand, one
//! malformed or out-of-order scenario per connection. After each one:
//! the daemon is alive, `a` and `b` exchanged every frame of a round
//! sent while the hostile connection was open, the log says why `h` was
//! reset (or that its frontend left), and a well-behaved frontend then
//! connects on `h`'s socket and its frame reaches `a` and `b`.
//!
//! Needs root and `dpdk-testpmd` (scripts/install-deps.sh).

mod support;

use std::os::fd::AsRawFd;
use std::time::Duration;

use support::frontend::*;
use support::{serial, wait_until};

const MAC_A: &str = "02:00:00:00:0a:01";
const MAC_B: &str = "02:00:00:00:0b:01";
/// Source of the well-behaved frontend's frames on `h`.
const MAC_H: [u8; 6] = [0x02, 0, 0, 0, 0x0c, 0x01];

const CONFIG: &str = "switches:
  - name: sw0
    ports:
      - name: a
      - name: b
      - name: h
      - name: x
";

/// What the daemon must do with the hostile connection.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Close it, logging `resetting the port` and this text.
    Reset(&'static str),
    /// Keep it (the messages are legal or harmless); the test hangs up.
    Kept,
    /// The client hangs up mid-message: `frontend disconnected`.
    Hangup,
}

struct Scenario {
    name: &'static str,
    send: Box<dyn Fn(&Raw)>,
    expect: Expect,
}

fn scenario(name: &'static str, expect: Expect, send: impl Fn(&Raw) + 'static) -> Scenario {
    Scenario {
        name,
        send: Box::new(send),
        expect,
    }
}

/// Writes, ignoring errors: the daemon may hang up at any point.
fn put(r: &Raw, m: &[u8]) {
    let _ = r.send(m);
}

fn put_fds(r: &Raw, m: &[u8], fds: &[std::os::fd::RawFd]) {
    let _ = r.send_with(m, fds);
}

/// One huge page: the smallest hugetlbfs guest memory.
const HUGE_MEM: u64 = 2 << 20;

/// A memfd on hugetlbfs (`MFD_HUGETLB`) of `size` bytes. Reserves 2 MiB
/// pages first if none are free (they stay reserved: 4 MiB).
fn hugetlb_memfd(size: u64) -> std::fs::File {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let dir = "/sys/kernel/mm/hugepages/hugepages-2048kB";
    let read = |f: &str| -> u64 {
        std::fs::read_to_string(format!("{dir}/{f}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let want = size.div_ceil(2 << 20) + 1;
    if read("free_hugepages") < want {
        let total = read("nr_hugepages") + want;
        std::fs::write(format!("{dir}/nr_hugepages"), total.to_string())
            .expect("reserve 2 MiB huge pages (needs root)");
    }
    let fd = memfd_create(
        c"vswitch-test-hugetlb",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_HUGETLB,
    )
    .expect("memfd_create(MFD_HUGETLB): no huge pages?");
    let f = std::fs::File::from(fd);
    f.set_len(size).expect("size the hugetlbfs file");
    f
}

/// The good start of a session: owner, features (VERSION_1), a memory
/// table of one 1 MiB memfd (returned: it must stay open).
fn good_start(r: &Raw) -> std::fs::File {
    start_with(r, memfd(GUEST_MEM), GUEST_MEM)
}

/// The good start with `mem` (`size` bytes) as the memory table.
fn start_with(r: &Raw, mem: std::fs::File, size: u64) -> std::fs::File {
    put(r, &msg(req::SET_OWNER, &[]));
    put(r, &msg(req::SET_FEATURES, &u64_body(F_VERSION_1)));
    put_fds(
        r,
        &msg(req::SET_MEM_TABLE, &mem_table(&[(0, size, FRONTEND_VA, 0)])),
        &[mem.as_raw_fd()],
    );
    mem
}

/// Both rings set up and kicked on memory `m`, then `m` truncated to 0
/// while the PMD polls them.
fn shrink_under_running_rings(r: &Raw, m: std::fs::File) {
    for q in 0..2u32 {
        let kick = eventfd();
        for msg in ring_setup(q) {
            put(r, &msg);
        }
        put_fds(
            r,
            &msg(req::SET_VRING_KICK, &u64_body(u64::from(q))),
            &[kick.as_raw_fd()],
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    m.set_len(0).expect("shrink the memory file");
    // The PMD polls the (now missing) rings meanwhile.
    std::thread::sleep(Duration::from_millis(300));
}

/// Ring 1 set up with these user addresses and size, then kicked.
fn ring_with(r: &Raw, num: u32, desc: u64, used: u64, avail: u64, base: u32) {
    let kick = eventfd();
    put(r, &msg(req::SET_VRING_NUM, &state(1, num)));
    put(
        r,
        &msg(req::SET_VRING_ADDR, &vring_addr(1, desc, used, avail)),
    );
    put(r, &msg(req::SET_VRING_BASE, &state(1, base)));
    put_fds(
        r,
        &msg(req::SET_VRING_KICK, &u64_body(1)),
        &[kick.as_raw_fd()],
    );
    // Keep the kick fd open until the daemon has read the message.
    std::thread::sleep(Duration::from_millis(100));
}

fn memory_scenarios() -> Vec<Scenario> {
    use Expect::*;
    let one = |r: &Raw, regions: &[Region], files: &[&std::fs::File]| {
        put(r, &msg(req::SET_OWNER, &[]));
        put(r, &msg(req::SET_FEATURES, &u64_body(F_VERSION_1)));
        let fds: Vec<_> = files.iter().map(|f| f.as_raw_fd()).collect();
        put_fds(r, &msg(req::SET_MEM_TABLE, &mem_table(regions)), &fds);
    };
    vec![
        scenario(
            "SET_MEM_TABLE: an fd that cannot be mapped (a pipe)",
            Reset("SET_MEM_TABLE refused"),
            move |r| {
                let (rd, _wr) = nix::unistd::pipe().expect("pipe");
                put(r, &msg(req::SET_OWNER, &[]));
                put_fds(
                    r,
                    &msg(
                        req::SET_MEM_TABLE,
                        &mem_table(&[(0, GUEST_MEM, FRONTEND_VA, 0)]),
                    ),
                    &[rd.as_raw_fd()],
                );
                std::thread::sleep(Duration::from_millis(100));
            },
        ),
        scenario("SET_MEM_TABLE: two regions, one fd", Reset(""), move |r| {
            let m = memfd(GUEST_MEM);
            one(
                r,
                &[
                    (0, GUEST_MEM, FRONTEND_VA, 0),
                    (GUEST_MEM, GUEST_MEM, FRONTEND_VA + GUEST_MEM, 0),
                ],
                &[&m],
            );
        }),
        scenario("SET_MEM_TABLE: a region and no fd", Reset(""), move |r| {
            one(r, &[(0, GUEST_MEM, FRONTEND_VA, 0)], &[]);
        }),
        scenario(
            "SET_MEM_TABLE: a 64 MiB region on a 1 MiB file, rings past its end",
            Reset("SET_MEM_TABLE refused"),
            move |r| {
                let m = memfd(GUEST_MEM);
                one(r, &[(0, 64 << 20, FRONTEND_VA, 0)], &[&m]);
                let at = FRONTEND_VA + (32 << 20);
                ring_with(r, 256, at, at + 0x2000, at + 0x1000, 0);
            },
        ),
        scenario(
            "SET_MEM_TABLE: mmap offset past the end of the file",
            Reset("SET_MEM_TABLE refused"),
            move |r| {
                let m = memfd(GUEST_MEM);
                one(r, &[(0, GUEST_MEM, FRONTEND_VA, 2 * GUEST_MEM)], &[&m]);
                ring_with(
                    r,
                    256,
                    FRONTEND_VA,
                    FRONTEND_VA + 0x2000,
                    FRONTEND_VA + 0x1000,
                    0,
                );
            },
        ),
        scenario("SET_MEM_TABLE: a zero-sized region", Reset(""), move |r| {
            let m = memfd(GUEST_MEM);
            one(r, &[(0, 0, FRONTEND_VA, 0)], &[&m]);
        }),
        scenario(
            "SET_MEM_TABLE: overlapping regions",
            Reset("SET_MEM_TABLE refused"),
            move |r| {
                let (m1, m2) = (memfd(GUEST_MEM), memfd(GUEST_MEM));
                one(
                    r,
                    &[
                        (0, GUEST_MEM, FRONTEND_VA, 0),
                        (GUEST_MEM / 2, GUEST_MEM, FRONTEND_VA + (4 << 20), 0),
                    ],
                    &[&m1, &m2],
                );
            },
        ),
        scenario(
            "SET_MEM_TABLE: overlapping frontend (user) addresses",
            Reset("SET_MEM_TABLE refused"),
            move |r| {
                let (m1, m2) = (memfd(GUEST_MEM), memfd(GUEST_MEM));
                one(
                    r,
                    &[
                        (0, GUEST_MEM, FRONTEND_VA, 0),
                        (4 * GUEST_MEM, GUEST_MEM, FRONTEND_VA + GUEST_MEM / 2, 0),
                    ],
                    &[&m1, &m2],
                );
            },
        ),
        scenario(
            "SET_MEM_TABLE: 40 regions with 40 fds (at most 32 fds ride on a message)",
            Reset(""),
            move |r| {
                let files: Vec<_> = (0..40).map(|_| memfd(4096)).collect();
                let regions: Vec<Region> = (0..40u64)
                    .map(|i| (i << 20, 4096, FRONTEND_VA + (i << 20), 0))
                    .collect();
                let refs: Vec<&std::fs::File> = files.iter().collect();
                one(r, &regions, &refs);
            },
        ),
        scenario(
            "SET_MEM_TABLE: guest address + size overflows 64 bits",
            Reset(""),
            move |r| {
                let m = memfd(GUEST_MEM);
                one(r, &[(u64::MAX - 0xfff, GUEST_MEM, FRONTEND_VA, 0)], &[&m]);
            },
        ),
        scenario(
            "SET_VRING_ADDR outside guest memory, then kick",
            Reset("resetting the port"),
            move |r| {
                let _m = good_start(r);
                let at = FRONTEND_VA + 2 * GUEST_MEM;
                ring_with(r, 256, at, at + 0x2000, at + 0x1000, 0);
            },
        ),
        scenario(
            "SET_VRING_ADDR: used ring straddles the end of guest memory",
            Reset("resetting the port"),
            move |r| {
                let _m = good_start(r);
                let end = FRONTEND_VA + GUEST_MEM;
                ring_with(r, 256, FRONTEND_VA, end - 16, FRONTEND_VA + 0x1000, 0);
            },
        ),
        scenario(
            "SET_VRING_ADDR: guest-physical instead of user addresses",
            Reset("resetting the port"),
            move |r| {
                let _m = good_start(r);
                ring_with(r, 256, 0, 0x2000, 0x1000, 0);
            },
        ),
        scenario("SET_VRING_NUM 0", Reset(""), move |r| {
            let _m = good_start(r);
            put(r, &msg(req::SET_VRING_NUM, &state(0, 0)));
        }),
        scenario(
            "SET_VRING_NUM 100 (not a power of two)",
            Reset(""),
            move |r| {
                let _m = good_start(r);
                put(r, &msg(req::SET_VRING_NUM, &state(0, 100)));
            },
        ),
        scenario("SET_VRING_NUM 65536 (huge)", Reset(""), move |r| {
            let _m = good_start(r);
            put(r, &msg(req::SET_VRING_NUM, &state(1, 65536)));
        }),
        scenario("SET_VRING_NUM 2^31", Reset(""), move |r| {
            let _m = good_start(r);
            put(r, &msg(req::SET_VRING_NUM, &state(1, 1 << 31)));
        }),
        scenario(
            "SET_VRING_NUM on vring 7 (there are 2)",
            Reset(""),
            move |r| {
                let _m = good_start(r);
                put(r, &msg(req::SET_VRING_NUM, &state(7, 256)));
            },
        ),
        scenario(
            "SET_VRING_BASE 0x10000 (beyond a 16-bit ring index)",
            Reset(""),
            move |r| {
                let _m = good_start(r);
                put(r, &msg(req::SET_VRING_BASE, &state(1, 0x1_0000)));
            },
        ),
        scenario(
            "SET_VRING_BASE 300 on an empty ring of 256 (base ahead of the guest)",
            Reset("guest corrupted a vring"),
            move |r| {
                let m = good_start(r);
                ring_with(
                    r,
                    256,
                    FRONTEND_VA,
                    FRONTEND_VA + 0x2000,
                    FRONTEND_VA + 0x1000,
                    300,
                );
                // Keep the memory until the PMD has looked at the ring.
                std::thread::sleep(Duration::from_millis(300));
                drop(m);
            },
        ),
        scenario(
            "memory file shrunk to 0 after SET_MEM_TABLE, rings running",
            Reset("guest memory"),
            move |r| shrink_under_running_rings(r, good_start(r)),
        ),
        scenario(
            "hugetlbfs memory file shrunk to 0 after SET_MEM_TABLE, rings running",
            Reset("guest memory"),
            // Guest memory on hugepages, as QEMU's memory-backend-file on
            // /dev/hugepages gives it: such files cannot be sealed against
            // shrinking, so the SIGBUS guard must hold here too.
            move |r| {
                shrink_under_running_rings(r, start_with(r, hugetlb_memfd(HUGE_MEM), HUGE_MEM))
            },
        ),
        scenario(
            "SET_VRING_CALL with a pipe nobody drains (not an eventfd), then traffic",
            Reset("not an eventfd"),
            move |r| {
                // A 4 KiB pipe: 512 notifications fill it; a write to a
                // full blocking pipe never returns.
                let (rd, wr) = nix::unistd::pipe().expect("pipe");
                let _ = nix::fcntl::fcntl(&wr, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096));
                let raw = Raw {
                    s: r.s.try_clone().expect("dup"),
                };
                let dup = wr.try_clone().expect("dup");
                let Ok(mut g) = GoodFrontend::on(raw, [wr, dup]) else {
                    return;
                };
                // Each burst of up to 32 frames is one notification (the
                // frames go to an 802.1D group: read, then dropped).
                for i in 0..80u32 {
                    let batch: Vec<Vec<u8>> = (0..256u32)
                        .map(|j| {
                            let b = (i * 256 + j).to_be_bytes();
                            eth_frame(
                                [0x01, 0x80, 0xc2, 0, 0, 0],
                                [0x02, 0xcc, b[0], b[1], b[2], b[3]],
                            )
                        })
                        .collect();
                    if g.send_frames_within(&batch, Duration::from_secs(2))
                        .is_err()
                    {
                        break;
                    }
                }
                // The read end stays open (and never read) for the rest
                // of the test: a switch that wrote to it would block.
                std::mem::forget(rd);
            },
        ),
    ]
}

fn framing_scenarios() -> Vec<Scenario> {
    use Expect::*;
    vec![
        scenario(
            "header size bigger than the body sent, then silence",
            Reset("stalled mid-message"),
            |r| {
                put(r, &msg(req::SET_OWNER, &[]));
                put(
                    r,
                    &message(req::SET_VRING_NUM, VERSION_1, 8, &1u32.to_le_bytes()),
                );
            },
        ),
        scenario(
            "header size smaller than the body sent",
            Reset("resetting the port"),
            |r| {
                put(r, &msg(req::SET_OWNER, &[]));
                put(
                    r,
                    &message(req::SET_VRING_NUM, VERSION_1, 4, &state(0, 256)),
                );
            },
        ),
        scenario(
            "header size 4 GiB - 1",
            Reset("announces a 4294967295-byte body"),
            |r| {
                put(
                    r,
                    &message(req::SET_MEM_TABLE, VERSION_1, u32::MAX, &[0; 64]),
                );
            },
        ),
        scenario(
            "a 1 MiB body actually sent",
            Reset("announces a 1048576-byte body"),
            |r| {
                let body = vec![0x5a; 1 << 20];
                let m = message(req::SET_MEM_TABLE, VERSION_1, 1 << 20, &body);
                put(r, &m);
            },
        ),
        scenario("unknown request code 0xdead", Reset(""), |r| {
            put(r, &msg(0xdead, &[0; 8]));
        }),
        scenario("request code 0", Reset(""), |r| {
            put(r, &msg(0, &[]));
        }),
        scenario("protocol version 0 in the flags", Reset(""), |r| {
            put(r, &message(req::SET_OWNER, 0, 0, &[]));
        }),
        scenario(
            "SET_VRING_KICK (with an fd) before SET_MEM_TABLE",
            Kept,
            |r| {
                let kick = eventfd();
                put(r, &msg(req::SET_OWNER, &[]));
                put_fds(
                    r,
                    &msg(req::SET_VRING_KICK, &u64_body(1)),
                    &[kick.as_raw_fd()],
                );
                put(r, &msg(req::SET_VRING_NUM, &state(1, 256)));
                std::thread::sleep(Duration::from_millis(100));
            },
        ),
        scenario(
            "SET_MEM_TABLE: header and fds in one write, the body 100 ms later",
            Kept,
            |r| {
                // A frontend whose send was split by a nearly full socket
                // buffer. The session must outlive the 2 s stall timeout:
                // the message was whole 100 ms in (issue 26 item 5).
                let mem = memfd(GUEST_MEM);
                put(r, &msg(req::SET_OWNER, &[]));
                put(r, &msg(req::SET_FEATURES, &u64_body(F_VERSION_1)));
                let m = msg(
                    req::SET_MEM_TABLE,
                    &mem_table(&[(0, GUEST_MEM, FRONTEND_VA, 0)]),
                );
                put_fds(r, &m[..12], &[mem.as_raw_fd()]);
                std::thread::sleep(Duration::from_millis(100));
                put(r, &m[12..]);
                std::thread::sleep(Duration::from_millis(2500));
            },
        ),
        scenario("SET_VRING_ADDR before SET_FEATURES", Kept, |r| {
            put(r, &msg(req::SET_OWNER, &[]));
            for m in ring_setup(0) {
                put(r, &m);
            }
        }),
        scenario("GET_VRING_BASE of a ring never set up", Kept, |r| {
            put(r, &msg(req::GET_VRING_BASE, &state(1, 0)));
            let _ = r.reply(Duration::from_secs(2));
        }),
        scenario(
            "200,000 GET_FEATURES and never a reply read",
            Reset("has not read its replies"),
            |r| {
                let one = msg(req::GET_FEATURES, &[]);
                let many: Vec<u8> = one
                    .iter()
                    .copied()
                    .cycle()
                    .take(one.len() * 200_000)
                    .collect();
                // Blocks once the switch stops reading (its replies fill
                // the socket): the write gives up after 5 s.
                put(r, &many);
            },
        ),
        scenario("disconnect mid-header", Hangup, |r| {
            put(r, &msg(req::SET_OWNER, &[]));
            put(r, &msg(req::GET_FEATURES, &[])[..6]);
        }),
        scenario(
            "disconnect mid-body of SET_MEM_TABLE (fd attached)",
            Hangup,
            |r| {
                let m = memfd(GUEST_MEM);
                let full = msg(
                    req::SET_MEM_TABLE,
                    &mem_table(&[(0, GUEST_MEM, FRONTEND_VA, 0)]),
                );
                put_fds(r, &full[..20], &[m.as_raw_fd()]);
                std::thread::sleep(Duration::from_millis(50));
            },
        ),
    ]
}

/// Runs `scenarios` one connection each against port `h`, with testpmd
/// traffic between `a` and `b`; see the module doc for what is checked.
fn run_scenarios(tag: &str, scenarios: Vec<Scenario>) {
    require_testpmd();
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path(), CONFIG);
    let mut pmd = Testpmd::start(
        &[(d.socket("a"), MAC_A, MAC_B), (d.socket("b"), MAC_B, MAC_A)],
        &[],
        "paired",
        tag,
    );
    pmd.run("set fwd rxonly", None);
    pmd.run("start", None);
    let round = 4 * 32;
    let mut sent = 0u64;
    let mut from_h = 0u64;
    let mut report = Vec::new();
    for sc in scenarios {
        let log_from = d.log().len();
        let raw = Raw::connect(&d.socket("h"));
        (sc.send)(&raw);
        d.assert_alive(&format!("`{}`", sc.name));
        if std::env::var_os("HOSTILE_DEBUG").is_some() {
            println!("after `{}`: h {:?}", sc.name, d.port("h").vhost);
        }

        // a <-> b keep forwarding, every frame, while `h` misbehaves.
        pmd.run("stop", Some("Done."));
        pmd.run("start tx_first 4", None);
        sent += round;
        let s = pmd.wait_stats(
            &format!("a<->b during `{}`", sc.name),
            &[sent + from_h, sent + from_h],
            &[sent, sent],
        );
        for p in &s {
            assert_eq!((p.rx_missed, p.rx_errors, p.tx_errors), (0, 0, 0), "{s:?}");
        }

        let want = match sc.expect {
            Expect::Reset(_) => {
                assert!(
                    raw.closed_by_peer(Duration::from_secs(6)),
                    "`{}`: the daemon kept the connection\n{}",
                    sc.name,
                    d.log_tail()
                );
                "resetting the port"
            }
            Expect::Kept => {
                assert!(
                    !raw.closed_by_peer(Duration::from_millis(300)),
                    "`{}`: the daemon dropped a legal session\n{}",
                    sc.name,
                    d.log_tail()
                );
                drop(raw);
                "frontend disconnected"
            }
            Expect::Hangup => {
                drop(raw);
                "frontend disconnected"
            }
        };
        assert!(
            d.alive(),
            "`{}` killed the daemon\n{}",
            sc.name,
            d.log_tail()
        );
        let mut why = String::new();
        let logged = wait_until(Duration::from_secs(5), || {
            let log = d.log();
            let new = &log[log_from.min(log.len())..];
            let hit = new
                .lines()
                .find(|l| l.contains("port=h") && l.contains(want));
            why = hit.unwrap_or_default().to_string();
            hit.is_some()
                && match sc.expect {
                    Expect::Reset(text) => new.contains(text),
                    _ => true,
                }
        });
        assert!(
            logged,
            "`{}`: no `{want}` line for port h{}\n{}",
            sc.name,
            match sc.expect {
                Expect::Reset(t) => format!(" (with `{t}`)"),
                _ => String::new(),
            },
            d.log_tail()
        );

        // A well-behaved frontend on the same socket passes traffic: one
        // broadcast reaches a and b.
        let mut good = GoodFrontend::connect(&d.socket("h"))
            .unwrap_or_else(|e| panic!("after `{}`: {e}\n{}", sc.name, d.log_tail()));
        good.send_frames(&[eth_frame([0xff; 6], MAC_H)])
            .unwrap_or_else(|e| panic!("after `{}`: {e}\n{}", sc.name, d.log_tail()));
        from_h += 1;
        pmd.wait_stats(
            &format!("h's broadcast after `{}`", sc.name),
            &[sent + from_h, sent + from_h],
            &[sent, sent],
        );
        drop(good);
        // `...: MESSAGE; resetting the port port=h reason=WHY` or
        // `...: WHY; resetting the port port=h`.
        let reason = match why.split_once("resetting the port") {
            Some((_, after)) if after.contains("reason=") => after.trim().to_string(),
            Some((before, after)) => format!(
                "{} ({})",
                after.trim(),
                before
                    .rsplit(": ")
                    .next()
                    .unwrap_or("")
                    .trim_end_matches("; ")
            ),
            None => want.to_string(),
        };
        report.push(format!("{:<72} -> {want} {reason}", sc.name));
    }
    pmd.run("stop", Some("Done."));
    pmd.quit();
    assert!(d.alive(), "daemon died\n{}", d.log_tail());
    let h = d.port("h");
    println!("port h counters after the scenarios: {h:?}");
    println!("{}", report.join("\n"));
    assert_eq!(h.rx_packets, from_h, "h: {h:?}");
}

#[test]
fn malformed_memory_tables_and_vrings_reset_only_that_port() {
    run_scenarios("mem", memory_scenarios());
}

#[test]
fn lying_unknown_and_out_of_order_messages_reset_only_that_port() {
    run_scenarios("framing", framing_scenarios());
}

/// A guest whose TX descriptors are hostile (on a correct vhost-user
/// session): chains that loop, point outside guest memory, claim 4 GiB,
/// are empty, name a descriptor past the table, nest indirect tables or
/// give an indirect table outside memory. Each must be survived: counted
/// (`rx_bad_chain`) or the port reset (`ring_broken`), never a crash or a
/// stall of `a` and `b`, and the same guest's good frames still go through
/// (or, after a reset, a new session's do).
#[test]
fn hostile_descriptor_chains_are_counted_or_reset_never_fatal() {
    require_testpmd();
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path(), CONFIG);
    let mut pmd = Testpmd::start(
        &[(d.socket("a"), MAC_A, MAC_B), (d.socket("b"), MAC_B, MAC_A)],
        &[],
        "paired",
        "descs",
    );
    pmd.run("set fwd rxonly", None);
    pmd.run("start", None);
    const NEXT: u16 = VRING_DESC_F_NEXT;
    const INDIRECT: u16 = VRING_DESC_F_INDIRECT;
    // A frame with its virtio-net header at 0x8_0000, an indirect table
    // at 0x9_0000.
    let frame_at = 0x8_0000u64;
    let table_at = 0x9_0000u64;
    let flen = 12 + 60;
    let cases: Vec<(&str, Vec<(u16, Desc)>)> = vec![
        (
            "a chain that loops on itself",
            vec![(200, (frame_at, 16, NEXT, 200))],
        ),
        (
            "a two-descriptor loop",
            vec![
                (200, (frame_at, 16, NEXT, 201)),
                (201, (frame_at, 16, NEXT, 200)),
            ],
        ),
        (
            "an address outside guest memory",
            vec![(200, (1 << 40, flen, 0, 0))],
        ),
        (
            "an address + length past the end of memory",
            vec![(200, (GUEST_MEM - 16, flen, 0, 0))],
        ),
        ("a 4 GiB length", vec![(200, (frame_at, u32::MAX, 0, 0))]),
        ("a zero length", vec![(200, (frame_at, 0, 0, 0))]),
        (
            "a next index past the table",
            vec![(200, (frame_at, 16, NEXT, 999))],
        ),
        (
            "an indirect table outside memory",
            vec![(200, (1 << 40, 64, INDIRECT, 0))],
        ),
        (
            "an indirect table of 17 bytes",
            vec![(200, (table_at, 17, INDIRECT, 0))],
        ),
        (
            "an indirect table inside an indirect table",
            vec![(200, (table_at, 32, INDIRECT, 0))],
        ),
    ];
    let mut sent = 0u64;
    let mut from_h = 0u64;
    let mut report = Vec::new();
    let mut g = GoodFrontend::connect(&d.socket("h")).expect("guest on h");
    let counters = |d: &Daemon| d.port("h").vhost.unwrap_or_default();
    for (what, descs) in cases {
        let before = counters(&d);
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&eth_frame([0xff; 6], MAC_H));
        g.poke(frame_at, &frame);
        // The indirect table: entry 0 points at a nested indirect table
        // (only read by the nesting case), entry 1 at the frame.
        let mut table = Vec::new();
        for (addr, len, flags, next) in [(table_at, 32u32, INDIRECT, 1u16), (frame_at, flen, 0, 0)]
        {
            table.extend_from_slice(&addr.to_le_bytes());
            table.extend_from_slice(&len.to_le_bytes());
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&next.to_le_bytes());
        }
        g.poke(table_at, &table);
        let used = g.post_raw_tx(&descs, &[200], Duration::from_secs(2));
        d.assert_alive(what);

        pmd.run("stop", Some("Done."));
        pmd.run("start tx_first 4", None);
        sent += 128;
        pmd.wait_stats(
            &format!("a<->b after {what}"),
            &[sent + from_h, sent + from_h],
            &[sent, sent],
        );
        let after = counters(&d);
        let delta: Vec<String> = after
            .iter()
            .filter(|(k, v)| before.get(*k).copied().unwrap_or(0) != **v)
            .map(|(k, v)| format!("{k} +{}", v - before.get(k).copied().unwrap_or(0)))
            .collect();
        let reset = after.get("resets") != before.get("resets");
        let counted = after.get("rx_bad_chain") != before.get("rx_bad_chain");
        assert!(
            reset || counted,
            "{what}: neither counted nor reset (used: {used}): {delta:?}\n{}",
            d.log_tail()
        );
        // The guest (or a new session, after a reset) still gets a good
        // frame through.
        if reset {
            wait_until(Duration::from_secs(5), || {
                !d.port("h").vhost.unwrap_or_default().is_empty()
            });
            g = GoodFrontend::connect(&d.socket("h")).expect("guest on h again");
        }
        g.send_frames(&[eth_frame([0xff; 6], MAC_H)])
            .unwrap_or_else(|e| panic!("after {what}: {e}\n{}", d.log_tail()));
        from_h += 1;
        pmd.wait_stats(
            &format!("h's good frame after {what}"),
            &[sent + from_h, sent + from_h],
            &[sent, sent],
        );
        report.push(format!("{what:<48} -> used {used}; {}", delta.join(", ")));
    }
    pmd.run("stop", Some("Done."));
    pmd.quit();
    drop(g);
    assert!(d.alive(), "daemon died\n{}", d.log_tail());
    println!("{}", report.join("\n"));
}

/// The other direction: a guest's RX ring (where the switch writes) offers
/// buffers that are read-only, outside memory, looping, 4 GiB long or
/// behind a bad indirect table. A broadcast from another guest (`x`) must
/// reach `a` and `b` exactly once each, while `h`'s bad buffers are
/// counted (`tx_bad_chain`) or its port reset, never written out of
/// bounds, never a crash.
#[test]
fn hostile_rx_buffers_are_counted_or_reset_never_fatal() {
    require_testpmd();
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path(), CONFIG);
    let mut pmd = Testpmd::start(
        &[(d.socket("a"), MAC_A, MAC_B), (d.socket("b"), MAC_B, MAC_A)],
        &[],
        "paired",
        "rxdescs",
    );
    pmd.run("set fwd rxonly", None);
    pmd.run("start", None);
    let mut x = GoodFrontend::connect(&d.socket("x")).expect("guest on x");
    const NEXT: u16 = VRING_DESC_F_NEXT;
    const INDIRECT: u16 = VRING_DESC_F_INDIRECT;
    const WRITE: u16 = 2;
    let buf = 0x8_0000u64;
    let table_at = 0x9_0000u64;
    let cases: Vec<(&str, Vec<(u16, Desc)>)> = vec![
        ("a read-only buffer", vec![(10, (buf, 2048, 0, 0))]),
        (
            "a buffer outside guest memory",
            vec![(10, (1 << 40, 2048, WRITE, 0))],
        ),
        (
            "a buffer across the end of memory",
            vec![(10, (GUEST_MEM - 64, 2048, WRITE, 0))],
        ),
        ("a 4 GiB buffer", vec![(10, (buf, u32::MAX, WRITE, 0))]),
        (
            "a looping chain of 16-byte buffers",
            vec![(10, (buf, 16, WRITE | NEXT, 10))],
        ),
        (
            "an indirect table outside memory",
            vec![(10, (1 << 40, 64, INDIRECT, 0))],
        ),
        (
            "a nested indirect table",
            vec![(10, (table_at, 16, INDIRECT, 0))],
        ),
    ];
    let mut from_x = 0u64;
    let mut report = Vec::new();
    // Connected, and both rings running (the RX ring is set up before the
    // TX ring, and a TX frame was used): a frame to an 802.1D group,
    // which the switch reads and drops.
    let ready = |d: &Daemon| {
        let mut g = GoodFrontend::connect(&d.socket("h")).expect("guest on h");
        g.send_frames(&[eth_frame([0x01, 0x80, 0xc2, 0, 0, 0], MAC_H)])
            .unwrap_or_else(|e| panic!("guest on h: {e}\n{}", d.log_tail()));
        g
    };
    let mut g = ready(&d);
    for (what, descs) in cases {
        let before = d.port("h").vhost.unwrap_or_default();
        let mut table = (table_at).to_le_bytes().to_vec();
        table.extend_from_slice(&16u32.to_le_bytes());
        table.extend_from_slice(&INDIRECT.to_le_bytes());
        table.extend_from_slice(&0u16.to_le_bytes());
        g.poke(table_at, &table);
        g.post_raw_rx(&descs, &[10]);
        // One broadcast from x: a, b and (if its buffers were good) h.
        x.send_frames(&[eth_frame([0xff; 6], [0x02, 0, 0, 0, 0x0d, 1])])
            .unwrap_or_else(|e| panic!("x after {what}: {e}\n{}", d.log_tail()));
        from_x += 1;
        d.assert_alive(what);
        pmd.wait_stats(
            &format!("x's broadcast with h offering {what}"),
            &[from_x, from_x],
            &[0, 0],
        );
        let counted = wait_until(Duration::from_secs(3), || {
            let after = d.port("h").vhost.unwrap_or_default();
            after.get("tx_bad_chain") != before.get("tx_bad_chain")
                || after.get("resets") != before.get("resets")
        });
        let after = d.port("h").vhost.unwrap_or_default();
        let delta: Vec<String> = after
            .iter()
            .filter(|(k, v)| before.get(*k).copied().unwrap_or(0) != **v)
            .map(|(k, v)| format!("{k} +{}", v - before.get(k).copied().unwrap_or(0)))
            .collect();
        assert!(
            counted,
            "{what}: neither counted nor reset: {delta:?}\n{}",
            d.log_tail()
        );
        if after.get("resets") != before.get("resets") {
            g = ready(&d);
        }
        report.push(format!(
            "{what:<40} -> {} (rx used {})",
            delta.join(", "),
            g.rx_used()
        ));
    }
    pmd.run("stop", Some("Done."));
    pmd.quit();
    drop((g, x));
    assert!(d.alive(), "daemon died\n{}", d.log_tail());
    println!("{}", report.join("\n"));
}
