//! Shared by the hardening suites (hostile.rs, bounds.rs, security.rs;
//! testpmd.rs uses its testpmd driver):
//! `vswitchd` as a process with its config, log and counters; DPDK
//! `dpdk-testpmd` with virtio-user ports as a well-behaved frontend with
//! exact frame counts; and a raw vhost-user client that writes the wire
//! format by hand (QEMU's docs/interop/vhost-user.rst: a 12-byte header
//! `request u32, flags u32 (version 1), size u32`, then the body; fds ride
//! along as SCM_RIGHTS), both for hostile messages and for a minimal
//! well-behaved frontend that sends frames from a memfd "guest".

use std::fs::File;
use std::io::{BufRead, BufReader, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use vswitch::protocol::{PortStats, Request, StatsReply};

use super::{Deadline, strip_ansi, wait_until};

/// testpmd and stdbuf must be installed (scripts/install-deps.sh).
pub fn require_testpmd() {
    assert!(
        super::find_in_path("dpdk-testpmd").is_some() && super::find_in_path("stdbuf").is_some(),
        "dpdk-testpmd or stdbuf missing: run scripts/install-deps.sh (Debian dpdk-dev)"
    );
}

/// A running `vswitchd` (adaptive idle) with its own runtime directory,
/// config and log; killed when dropped.
pub struct Daemon {
    child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Writes `yaml` to DIR/vswitch.yaml and starts the daemon on it.
    pub fn start(dir: &Path, yaml: &str) -> Daemon {
        let config = dir.join("vswitch.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let log = dir.join("vswitchd.log");
        let out = File::create(&log).expect("daemon log");
        let child = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--config")
            .arg(&config)
            .arg("--runtime-dir")
            .arg(dir)
            .args(["--idle", "adaptive"])
            .env("VSWITCH_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .expect("vswitchd starts");
        let d = Daemon {
            child,
            dir: dir.to_path_buf(),
            log,
        };
        let ok = wait_until(Duration::from_secs(20), || {
            d.log().contains("vswitchd: running")
        });
        assert!(ok, "vswitchd did not start:\n{}", d.log_tail());
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Panics, with the exit status and the log, if the daemon is gone.
    pub fn assert_alive(&mut self, after: &str) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("vswitchd died after {after}: {st:?}\n{}", self.log_tail());
        }
    }

    /// The whole log, colours removed.
    pub fn log(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// The last 40 lines of the log.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!("--- vswitchd log ---\n{}", lines[from..].join("\n"))
    }

    pub fn socket(&self, port: &str) -> PathBuf {
        self.dir.join(format!("{port}.sock"))
    }

    /// Every port's counters (through the control socket).
    pub fn stats(&self) -> Vec<PortStats> {
        let v = vswitch::client::request(&self.dir.join("vswitchd.sock"), &Request::Stats)
            .unwrap_or_else(|e| panic!("stats: {e}\n{}", self.log_tail()));
        let r: StatsReply = serde_json::from_value(v).expect("stats reply");
        r.switches.into_iter().flat_map(|s| s.ports).collect()
    }

    /// One port's counters.
    pub fn port(&self, name: &str) -> PortStats {
        self.stats()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no port {name} in stats"))
    }

    /// Open file descriptors of the process.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident set size, KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------
// dpdk-testpmd

/// One port's `show port stats all` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PmdPortStats {
    pub rx: u64,
    pub rx_missed: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub tx: u64,
    pub tx_errors: u64,
    pub tx_bytes: u64,
}

/// The number after `key` in `line` (`RX-packets: 128   RX-missed: 0`).
pub fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    line[at..].split_whitespace().next()?.parse().ok()
}

/// Forwards every line of `r` into `tx`, prefixed, until EOF.
pub fn pump(r: impl Read + Send + 'static, tx: Sender<String>, prefix: &'static str) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            // testpmd's prompt pads lines with spaces.
            if tx.send(format!("{prefix}{}", line.trim_end())).is_err() {
                break;
            }
        }
    });
}

/// How a [`Testpmd`] starts, beyond its ports.
#[derive(Debug, Clone, Copy)]
pub struct TestpmdOptions {
    /// Queue pairs on every virtio-user port (and as many rx/tx queues in
    /// testpmd: each forwards as its own stream).
    pub queues: usize,
    /// The whole test's budget: every wait of the driver ends by it.
    pub deadline: Deadline,
}

impl Default for TestpmdOptions {
    fn default() -> Self {
        TestpmdOptions {
            queues: 1,
            deadline: Deadline::none(),
        }
    }
}

/// Interactive testpmd (`-i`) with virtio-user ports (no hugepages),
/// commands on stdin, output read line by line (through `stdbuf -oL`:
/// testpmd's stdout is block-buffered on a pipe); killed when dropped. On
/// a failure it panics with the end of its transcript and writes the whole
/// transcript to a file in the temporary directory.
pub struct Testpmd {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    transcript: Vec<String>,
    nports: usize,
    prefix: String,
    deadline: Deadline,
}

/// How long frames may take to cross the switch before a test gives up.
pub const ARRIVAL: Duration = Duration::from_secs(20);
/// How long [`Testpmd::wait_stats`] keeps watching after the expected
/// frames arrived, to catch late duplicates.
pub const SETTLE: Duration = Duration::from_millis(300);

impl Testpmd {
    /// `ports`: (socket, own MAC, peer MAC: destination of what it sends).
    /// `extra_vdevs` come first (e.g. a pcap port), then the virtio-user ones.
    pub fn start(
        ports: &[(PathBuf, &str, &str)],
        extra_vdevs: &[String],
        topology: &str,
        tag: &str,
    ) -> Testpmd {
        Self::start_with(ports, extra_vdevs, topology, tag, TestpmdOptions::default())
    }

    /// [`Testpmd::start`] with `options` (queue pairs, a test deadline).
    pub fn start_with(
        ports: &[(PathBuf, &str, &str)],
        extra_vdevs: &[String],
        topology: &str,
        tag: &str,
        options: TestpmdOptions,
    ) -> Testpmd {
        let queues = options.queues;
        let mut vdevs = extra_vdevs.to_vec();
        for (i, (sock, mac, _)) in ports.iter().enumerate() {
            let mut vdev = format!("net_virtio_user{i},path={},mac={mac}", sock.display());
            if queues > 1 {
                vdev.push_str(&format!(",queues={queues}"));
            }
            vdevs.push(vdev);
        }
        let skip = extra_vdevs.len();
        let mut args: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, _, peer))| format!("--eth-peer={},{peer}", i + skip))
            .collect();
        if queues > 1 {
            args.push(format!("--rxq={queues}"));
            args.push(format!("--txq={queues}"));
        }
        Self::spawn(&vdevs, &args, topology, tag, options.deadline)
    }

    /// testpmd on exactly these `--vdev`s (port ids in this order), with
    /// extra testpmd arguments.
    pub fn start_vdevs(vdevs: &[String], args: &[String], topology: &str, tag: &str) -> Testpmd {
        Self::spawn(vdevs, args, topology, tag, Deadline::none())
    }

    fn spawn(
        vdevs: &[String],
        args: &[String],
        topology: &str,
        tag: &str,
        deadline: Deadline,
    ) -> Testpmd {
        let prefix = format!("vswitch-test-{}-{tag}", std::process::id());
        let mut cmd = Command::new("stdbuf");
        cmd.args([
            "-oL",
            "-eL",
            "dpdk-testpmd",
            "-l",
            "0,1",
            "--main-lcore",
            "0",
        ])
        .args([
            "--no-pci",
            "--no-huge",
            "-m",
            "512",
            "--file-prefix",
            &prefix,
        ])
        .args(["--log-level", "lib.eal:notice"]);
        for v in vdevs {
            cmd.arg("--vdev").arg(v);
        }
        cmd.args(["--", "-i", "--nb-cores=1", "--total-num-mbufs=16384"])
            .arg(format!("--port-topology={topology}"))
            .args(args);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dpdk-testpmd starts");
        let (tx, lines) = channel();
        pump(child.stdout.take().expect("stdout"), tx.clone(), "");
        pump(child.stderr.take().expect("stderr"), tx, "stderr: ");
        let stdin = child.stdin.take().expect("stdin");
        let mut t = Testpmd {
            child,
            stdin,
            lines,
            transcript: Vec::new(),
            nports: vdevs.len(),
            prefix,
            deadline,
        };
        // Ports configured, vhost-user set up, links up: then the prompt.
        let until = deadline.within(Duration::from_secs(60));
        t.expect_line(until, |l| l.contains("Checking link statuses"));
        t.expect_line(until, |l| l.trim() == "Done");
        t
    }

    /// Panics with `what` and the last 80 lines of the transcript (the
    /// whole of it goes to a file, named on stderr).
    pub fn fail(&self, what: &str) -> ! {
        let full = std::env::temp_dir().join(format!("{}.transcript", self.prefix));
        let _ = std::fs::write(&full, self.transcript.join("\n"));
        eprintln!("full testpmd transcript: {}", full.display());
        let from = self.transcript.len().saturating_sub(80);
        panic!(
            "{what}\n--- testpmd transcript (last 80 lines) ---\n{}",
            self.transcript[from..].join("\n")
        );
    }

    fn next_line(&mut self, until: Instant) -> Option<String> {
        let left = until.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(l) => {
                self.transcript.push(l.clone());
                Some(l)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => self.fail("dpdk-testpmd exited"),
        }
    }

    fn expect_line(&mut self, until: Instant, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.next_line(until) {
                Some(l) if pred(&l) => return l,
                Some(_) => {}
                None => self.fail("timed out waiting for testpmd"),
            }
        }
    }

    /// Writes `cmd` to testpmd's stdin (and the transcript).
    fn send(&mut self, cmd: &str) {
        self.transcript.push(format!("> {cmd}"));
        if let Err(e) = writeln!(self.stdin, "{cmd}").and_then(|()| self.stdin.flush()) {
            self.fail(&format!("writing `{cmd}` to testpmd: {e}"));
        }
    }

    /// Sends `cmd` and waits until testpmd has run it (its echo after the
    /// prompt), then for `done` if given.
    pub fn run(&mut self, cmd: &str, done: Option<&str>) {
        self.send(cmd);
        let until = self.deadline.within(Duration::from_secs(30));
        self.expect_line(until, |l| l.starts_with("testpmd>") && l.ends_with(cmd));
        if let Some(done) = done {
            self.expect_line(until, |l| l.contains(done));
        }
    }

    pub fn stats(&mut self) -> Vec<PmdPortStats> {
        self.run("show port stats all", None);
        let until = self.deadline.within(Duration::from_secs(30));
        let mut out = Vec::with_capacity(self.nports);
        for port in 0..self.nports {
            let header = format!("NIC statistics for port {port} ");
            self.expect_line(until, |l| l.contains(&header));
            let rx = self.expect_line(until, |l| l.contains("RX-packets:"));
            let rx_err = self.expect_line(until, |l| l.contains("RX-errors:"));
            let tx = self.expect_line(until, |l| l.contains("TX-packets:"));
            let s = (|| {
                Some(PmdPortStats {
                    rx: field(&rx, "RX-packets:")?,
                    rx_missed: field(&rx, "RX-missed:")?,
                    rx_bytes: field(&rx, "RX-bytes:")?,
                    rx_errors: field(&rx_err, "RX-errors:")?,
                    tx: field(&tx, "TX-packets:")?,
                    tx_errors: field(&tx, "TX-errors:")?,
                    tx_bytes: field(&tx, "TX-bytes:")?,
                })
            })();
            match s {
                Some(s) => out.push(s),
                None => self.fail("cannot parse `show port stats all`"),
            }
        }
        out
    }

    /// Polls the port counters until every port has received `rx` and sent
    /// `tx` frames (failing at once if any count goes past its expectation,
    /// or after [`ARRIVAL`]), then watches for [`SETTLE`] that nothing more
    /// arrives.
    pub fn wait_stats(&mut self, what: &str, rx: &[u64], tx: &[u64]) -> Vec<PmdPortStats> {
        let until = self.deadline.within(ARRIVAL);
        let counts = |s: &[PmdPortStats]| -> (Vec<u64>, Vec<u64>) {
            (
                s.iter().map(|p| p.rx).collect(),
                s.iter().map(|p| p.tx).collect(),
            )
        };
        let over = |got: &[u64], want: &[u64]| got.iter().zip(want).any(|(g, w)| g > w);
        loop {
            let s = self.stats();
            let (got_rx, got_tx) = counts(&s);
            if over(&got_rx, rx) || over(&got_tx, tx) {
                self.fail(&format!(
                    "{what}: more frames than expected: received {got_rx:?} (expected {rx:?}), sent {got_tx:?} (expected {tx:?})"
                ));
            }
            if got_rx == rx && got_tx == tx {
                break;
            }
            if Instant::now() >= until {
                self.fail(&format!(
                    "{what}: frames missing after {ARRIVAL:?}: received {got_rx:?} (expected {rx:?}), sent {got_tx:?} (expected {tx:?})"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(SETTLE);
        let s = self.stats();
        let (got_rx, got_tx) = counts(&s);
        if got_rx != rx || got_tx != tx {
            self.fail(&format!(
                "{what}: counters moved after the expected frames arrived (duplicates or strays): received {got_rx:?} (expected {rx:?}), sent {got_tx:?} (expected {tx:?})"
            ));
        }
        s
    }

    /// Drains the output (so testpmd never blocks on a full pipe) until it
    /// exits or `timeout` passes; true if it exited.
    fn drain_until_exit(&mut self, timeout: Duration) -> bool {
        let until = self.deadline.within(timeout);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < until {
            let _ = self.lines.recv_timeout(Duration::from_millis(50));
        }
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends `quit` (a testpmd already gone is fine) and gives it 20 s to
    /// exit; if it is still running, the drop kills it.
    pub fn quit(mut self) {
        self.transcript.push("> quit".into());
        let _ = writeln!(self.stdin, "quit").and_then(|()| self.stdin.flush());
        self.drain_until_exit(Duration::from_secs(20));
    }

    /// Sends `quit` and fails the test unless testpmd exits within 30 s.
    pub fn quit_and_expect_exit(mut self) {
        self.send("quit");
        if !self.drain_until_exit(Duration::from_secs(30)) {
            let pid = self.child.id();
            self.fail(&format!("dpdk-testpmd (pid {pid}) did not exit"));
        }
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        // Kill, reap, then remove EAL's runtime directory for this prefix.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(Path::new("/var/run/dpdk").join(&self.prefix));
    }
}

// ---------------------------------------------------------------------
// vhost-user on the wire

/// Request codes (vhost-user.rst, "Front-end message types").
pub mod req {
    pub const GET_FEATURES: u32 = 1;
    pub const SET_FEATURES: u32 = 2;
    pub const SET_OWNER: u32 = 3;
    pub const RESET_OWNER: u32 = 4;
    pub const SET_MEM_TABLE: u32 = 5;
    pub const SET_VRING_NUM: u32 = 8;
    pub const SET_VRING_ADDR: u32 = 9;
    pub const SET_VRING_BASE: u32 = 10;
    pub const GET_VRING_BASE: u32 = 11;
    pub const SET_VRING_KICK: u32 = 12;
    pub const SET_VRING_CALL: u32 = 13;
    pub const GET_PROTOCOL_FEATURES: u32 = 15;
    pub const SET_PROTOCOL_FEATURES: u32 = 16;
    pub const GET_QUEUE_NUM: u32 = 17;
    pub const SET_VRING_ENABLE: u32 = 18;
}

/// Header flags: version 1.
pub const VERSION_1: u32 = 0x1;
/// VIRTIO_F_VERSION_1.
pub const F_VERSION_1: u64 = 1 << 32;

/// A header (request, flags, size) followed by `body`.
pub fn message(request: u32, flags: u32, size: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + body.len());
    m.extend_from_slice(&request.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&size.to_le_bytes());
    m.extend_from_slice(body);
    m
}

/// A well-formed request.
pub fn msg(request: u32, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(body.len()).expect("small body");
    message(request, VERSION_1, size, body)
}

pub fn u64_body(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// struct vhost_vring_state.
pub fn state(index: u32, num: u32) -> Vec<u8> {
    let mut b = index.to_le_bytes().to_vec();
    b.extend_from_slice(&num.to_le_bytes());
    b
}

/// struct vhost_vring_addr: index, flags, desc, used, avail, log (user
/// addresses).
pub fn vring_addr(index: u32, desc: u64, used: u64, avail: u64) -> Vec<u8> {
    let mut b = index.to_le_bytes().to_vec();
    b.extend_from_slice(&0u32.to_le_bytes());
    for v in [desc, used, avail, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

/// One region of a memory table: (guest physical address, size, user
/// address, mmap offset).
pub type Region = (u64, u64, u64, u64);

/// struct VhostUserMemory with `regions`.
pub fn mem_table(regions: &[Region]) -> Vec<u8> {
    let n = u32::try_from(regions.len()).expect("few regions");
    let mut b = n.to_le_bytes().to_vec();
    b.extend_from_slice(&0u32.to_le_bytes());
    for &(gpa, size, va, off) in regions {
        for v in [gpa, size, va, off] {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    b
}

/// A raw client connection.
pub struct Raw {
    pub s: UnixStream,
}

impl Raw {
    /// Connects, retrying for up to 5 s (the port may be re-listening).
    pub fn connect(path: &Path) -> Raw {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match UnixStream::connect(path) {
                Ok(s) => {
                    s.set_write_timeout(Some(Duration::from_secs(5)))
                        .expect("write timeout");
                    return Raw { s };
                }
                Err(e) if Instant::now() > until => panic!("connect {}: {e}", path.display()),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Writes `bytes` with `fds` attached (SCM_RIGHTS).
    pub fn send_with(&self, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        let iov = [IoSlice::new(bytes)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        let n = sendmsg::<()>(
            self.s.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(std::io::Error::from)?;
        if n < bytes.len() {
            (&self.s).write_all(&bytes[n..])?;
        }
        Ok(())
    }

    pub fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.send_with(bytes, &[])
    }

    /// Reads one reply (header + body) within `timeout`.
    pub fn reply(&self, timeout: Duration) -> std::io::Result<(u32, Vec<u8>)> {
        self.s.set_read_timeout(Some(timeout))?;
        let mut h = [0u8; 12];
        (&self.s).read_exact(&mut h)?;
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let size = word(8) as usize;
        if size > 4096 {
            return Err(std::io::Error::other(format!("reply of {size} bytes")));
        }
        let mut body = vec![0u8; size];
        (&self.s).read_exact(&mut body)?;
        Ok((word(0), body))
    }

    /// Waits for the daemon to close the connection (discarding anything
    /// it sends); true if it did within `timeout`.
    pub fn closed_by_peer(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut buf = [0u8; 256];
        while Instant::now() < until {
            let _ = self.s.set_read_timeout(Some(Duration::from_millis(50)));
            match (&self.s).read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => {}
            }
        }
        false
    }
}

/// A memfd of `size` bytes.
pub fn memfd(size: u64) -> File {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let fd = memfd_create(c"vswitch-test-guest", MFdFlags::MFD_CLOEXEC).expect("memfd_create");
    let f = File::from(fd);
    f.set_len(size).expect("size memfd");
    f
}

/// A non-blocking eventfd.
pub fn eventfd() -> nix::sys::eventfd::EventFd {
    use nix::sys::eventfd::{EfdFlags, EventFd};
    EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
        .expect("eventfd")
}

/// Guest memory size of [`GoodFrontend`].
pub const GUEST_MEM: u64 = 1 << 20;
/// Where the fake frontend says the guest memory is mapped.
pub const FRONTEND_VA: u64 = 0x7f00_0000_0000;
/// Ring size of [`GoodFrontend`].
pub const QSIZE: u16 = 256;

/// desc, avail, used of vring `q` (guest physical).
pub fn ring_gpa(q: u64) -> (u64, u64, u64) {
    let base = 0x1_0000 * q;
    (base, base + 0x1000, base + 0x2000)
}

/// The messages of a correct set-up of ring `q` (size QSIZE, base 0,
/// addresses per [`ring_gpa`]), without the kick.
pub fn ring_setup(q: u32) -> Vec<Vec<u8>> {
    let (d, a, u) = ring_gpa(u64::from(q));
    vec![
        msg(req::SET_VRING_NUM, &state(q, u32::from(QSIZE))),
        msg(
            req::SET_VRING_ADDR,
            &vring_addr(q, FRONTEND_VA + d, FRONTEND_VA + u, FRONTEND_VA + a),
        ),
        msg(req::SET_VRING_BASE, &state(q, 0)),
    ]
}

/// A minimal, correct vhost-user frontend and virtio-net driver written on
/// the raw wire: VERSION_1 only (no protocol features: rings start on
/// their kick), 1 MiB of memfd guest memory, two rings of 256. It sends
/// frames on its TX ring (vring 1) and does not post RX buffers.
pub struct GoodFrontend {
    pub raw: Raw,
    pub mem: File,
    kicks: [nix::sys::eventfd::EventFd; 2],
    calls: [std::os::fd::OwnedFd; 2],
    tx_next: u16,
    rx_next: u16,
}

impl GoodFrontend {
    /// Connects and sets up both rings; Err if the daemon refuses any of it.
    pub fn connect(path: &Path) -> Result<GoodFrontend, String> {
        Self::on(Raw::connect(path), [eventfd().into(), eventfd().into()])
    }

    /// The same on an open connection, with these call fds (a correct
    /// frontend sends eventfds).
    pub fn on(raw: Raw, calls: [std::os::fd::OwnedFd; 2]) -> Result<GoodFrontend, String> {
        let mem = memfd(GUEST_MEM);
        let g = GoodFrontend {
            raw,
            mem,
            kicks: [eventfd(), eventfd()],
            calls,
            tx_next: 0,
            rx_next: 0,
        };
        g.handshake().map_err(|e| format!("handshake: {e}"))?;
        Ok(g)
    }

    fn handshake(&self) -> std::io::Result<()> {
        let r = &self.raw;
        r.send(&msg(req::SET_OWNER, &[]))?;
        r.send(&msg(req::GET_FEATURES, &[]))?;
        let (code, body) = r.reply(Duration::from_secs(5))?;
        if code != req::GET_FEATURES || body.len() != 8 {
            return Err(std::io::Error::other("bad GET_FEATURES reply"));
        }
        let offered = u64::from_le_bytes(body.try_into().expect("8 bytes"));
        if offered & F_VERSION_1 == 0 {
            return Err(std::io::Error::other("no VERSION_1"));
        }
        r.send(&msg(req::SET_FEATURES, &u64_body(F_VERSION_1)))?;
        r.send_with(
            &msg(
                req::SET_MEM_TABLE,
                &mem_table(&[(0, GUEST_MEM, FRONTEND_VA, 0)]),
            ),
            &[self.mem.as_raw_fd()],
        )?;
        for q in 0..2u32 {
            for m in ring_setup(q) {
                r.send(&m)?;
            }
            let i = q as usize;
            r.send_with(
                &msg(req::SET_VRING_CALL, &u64_body(u64::from(q))),
                &[self.calls[i].as_raw_fd()],
            )?;
            r.send_with(
                &msg(req::SET_VRING_KICK, &u64_body(u64::from(q))),
                &[self.kicks[i].as_raw_fd()],
            )?;
        }
        Ok(())
    }

    fn write(&self, gpa: u64, bytes: &[u8]) {
        self.mem
            .write_all_at(bytes, gpa)
            .expect("write guest memory");
    }

    fn read_u16(&self, gpa: u64) -> u16 {
        let mut b = [0u8; 2];
        self.mem
            .read_exact_at(&mut b, gpa)
            .expect("read guest memory");
        u16::from_le_bytes(b)
    }

    /// Puts `frames` on the TX ring (one descriptor each: a 12-byte
    /// virtio-net header, then the frame), kicks, and waits until the
    /// switch has used them all.
    pub fn send_frames(&mut self, frames: &[Vec<u8>]) -> Result<(), String> {
        self.send_frames_within(frames, Duration::from_secs(10))
    }

    /// [`Self::send_frames`], giving up after `timeout`.
    pub fn send_frames_within(
        &mut self,
        frames: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<(), String> {
        let (desc, avail, used) = ring_gpa(1);
        let start = self.tx_next;
        for f in frames {
            let slot = self.tx_next % QSIZE;
            let buf = 0x4_0000 + 2048 * u64::from(slot);
            let mut data = vec![0u8; 12];
            data.extend_from_slice(f);
            self.write(buf, &data);
            let mut d = buf.to_le_bytes().to_vec();
            d.extend_from_slice(&(data.len() as u32).to_le_bytes());
            d.extend_from_slice(&0u16.to_le_bytes()); // flags
            d.extend_from_slice(&0u16.to_le_bytes()); // next
            self.write(desc + 16 * u64::from(slot), &d);
            self.write(avail + 4 + 2 * u64::from(slot), &slot.to_le_bytes());
            self.tx_next = self.tx_next.wrapping_add(1);
        }
        self.write(avail + 2, &self.tx_next.to_le_bytes());
        let want = self.tx_next;
        let until = Instant::now() + timeout;
        loop {
            let _ = self.kicks[1].write(1);
            if self.read_u16(used + 2) == want {
                return Ok(());
            }
            if Instant::now() > until {
                return Err(format!(
                    "switch used {} of {} frames",
                    self.read_u16(used + 2).wrapping_sub(start),
                    frames.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A split-ring descriptor: (guest address, length, flags, next).
pub type Desc = (u64, u32, u16, u16);
/// Descriptor flags.
pub const VRING_DESC_F_NEXT: u16 = 1;
pub const VRING_DESC_F_INDIRECT: u16 = 4;

impl GoodFrontend {
    /// Writes `descs` into the TX ring's descriptor table at their index,
    /// puts `heads` on the avail ring, kicks, and waits up to `timeout` for
    /// the switch to use them all; false if it did not.
    pub fn post_raw_tx(&mut self, descs: &[(u16, Desc)], heads: &[u16], timeout: Duration) -> bool {
        let (desc, avail, used) = ring_gpa(1);
        for &(i, (addr, len, flags, next)) in descs {
            let mut d = addr.to_le_bytes().to_vec();
            d.extend_from_slice(&len.to_le_bytes());
            d.extend_from_slice(&flags.to_le_bytes());
            d.extend_from_slice(&next.to_le_bytes());
            self.write(desc + 16 * u64::from(i % QSIZE), &d);
        }
        for &h in heads {
            let slot = self.tx_next % QSIZE;
            self.write(avail + 4 + 2 * u64::from(slot), &h.to_le_bytes());
            self.tx_next = self.tx_next.wrapping_add(1);
        }
        self.write(avail + 2, &self.tx_next.to_le_bytes());
        let want = self.tx_next;
        let until = Instant::now() + timeout;
        loop {
            let _ = self.kicks[1].write(1);
            if self.read_u16(used + 2) == want {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Writes `descs` into the RX ring's (vring 0) descriptor table and
    /// offers `heads` to the switch; returns the RX used index to wait on.
    pub fn post_raw_rx(&mut self, descs: &[(u16, Desc)], heads: &[u16]) -> u16 {
        let (desc, avail, _) = ring_gpa(0);
        for &(i, (addr, len, flags, next)) in descs {
            let mut d = addr.to_le_bytes().to_vec();
            d.extend_from_slice(&len.to_le_bytes());
            d.extend_from_slice(&flags.to_le_bytes());
            d.extend_from_slice(&next.to_le_bytes());
            self.write(desc + 16 * u64::from(i % QSIZE), &d);
        }
        for &h in heads {
            let slot = self.rx_next % QSIZE;
            self.write(avail + 4 + 2 * u64::from(slot), &h.to_le_bytes());
            self.rx_next = self.rx_next.wrapping_add(1);
        }
        self.write(avail + 2, &self.rx_next.to_le_bytes());
        self.rx_next
    }

    /// The RX ring's used index.
    pub fn rx_used(&self) -> u16 {
        self.read_u16(ring_gpa(0).2 + 2)
    }

    /// Writes raw bytes into guest memory (indirect tables, frames).
    pub fn poke(&self, gpa: u64, bytes: &[u8]) {
        self.write(gpa, bytes);
    }
}

/// A 60-byte Ethernet frame (IPv4 ethertype, zero payload).
pub fn eth_frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, p) in s.split(':').enumerate() {
        m[i] = u8::from_str_radix(p, 16).expect("hex");
    }
    m
}

/// Writes `frames` as a classic pcap file (Ethernet link type), the input
/// of a DPDK `net_pcap` port (`rx_pcap=FILE`).
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for f in frames {
        let len = u32::try_from(f.len()).expect("frame length");
        for v in [0u32, 0, len, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// A 60-byte (before tags) frame with 802.1Q/802.1ad `tags` (TPID, VID)
/// after the source MAC, outermost first.
pub fn tagged_frame(dst: [u8; 6], src: [u8; 6], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60 + 4 * tags.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.resize(60 + 4 * tags.len(), 0);
    f
}
