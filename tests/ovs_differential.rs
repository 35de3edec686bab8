//! Differential test against Open vSwitch: the same crafted frames through
//! `vswitchd` and through Open vSwitch's NORMAL action (userspace datapath,
//! internal ports), on the same VLAN plan, compared frame by frame.
//!
//! - [`PLAN`] is the VLAN plan, written once and rendered both as the YAML
//!   a user writes ([`vswitchd_yaml`]) and as `ovs-vsctl` arguments
//!   ([`ovs_port_settings`]). Every port is an internal port: a TAP device.
//! - Each switch runs alone in its own network namespace (same TAP names,
//!   IPv6 off, no addresses, so the kernel sends nothing on the TAPs).
//! - The frames ([`frames`]) are crafted systematically: every sender port
//!   times tag encodings, destinations, sources and sizes. Each carries a
//!   unique marker; captures without one are ignored.
//! - Injection: an AF_PACKET socket bound to the sender's TAP (what it
//!   sends enters the switch). Capture: the same sockets on the other TAPs.
//!   The kernel's receive path strips one VLAN tag into metadata, so the
//!   tag is rebuilt from `PACKET_AUXDATA` before comparing.
//! - Per frame, the sorted list of (egress port, exact bytes) must be equal,
//!   or the difference must be explained by one entry of [`DELIBERATE`]
//!   (the one table of deliberate differences, mirrored in README.md). A
//!   difference no entry explains fails the test, and so does an entry
//!   that explains nothing (the table cannot rot).
//!
//! Needs root, iproute2 and Open vSwitch (`scripts/install-deps.sh`); skips
//! without Open vSwitch.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Netns, Vswitchd, find_in_path, run, serial, wait_until};

// ---------------------------------------------------------------------------
// The VLAN plan
// ---------------------------------------------------------------------------

/// A port's VLAN rule, as both switches can express it.
#[derive(Clone, Copy, Debug)]
enum Vlan {
    /// `vlan: N` / OVS `tag=N vlan_mode=access`.
    Access(u16),
    /// `vlan: { trunk: [...], native: N }` / OVS `trunks=... [tag=N
    /// vlan_mode=native-untagged | vlan_mode=trunk]`.
    Trunk {
        allowed: &'static [u16],
        native: Option<u16>,
    },
    /// `vlan: all` / OVS `tag=1 vlan_mode=native-untagged` (no trunks list:
    /// every VLAN).
    All,
}

impl Vlan {
    /// The VLAN untagged (and priority-tagged) frames join.
    fn native(self) -> Option<u16> {
        match self {
            Vlan::Access(v) => Some(v),
            Vlan::Trunk { native, .. } => native,
            Vlan::All => Some(1),
        }
    }

    /// True if the port carries `vid` (tagged or not).
    fn carries(self, vid: u16) -> bool {
        self.native() == Some(vid)
            || match self {
                Vlan::Access(_) => false,
                Vlan::Trunk { allowed, .. } => allowed.contains(&vid),
                Vlan::All => (1..=4094).contains(&vid),
            }
    }
}

struct PlanPort {
    name: &'static str,
    group: &'static str,
    vlan: Vlan,
    /// `mac:` in the YAML: the guest's assigned MAC (VMware port security).
    /// Set on two access ports to exercise port security; the others leave
    /// it out, and then vswitchd neither filters their sources nor their
    /// unknown-unicast floods.
    assigned_mac: bool,
}

/// The plan: an access VLAN 1 port, two access VLAN 10 ports, an access
/// VLAN 20 port, a trunk with a native VLAN not in its list, a trunk
/// without a native VLAN, and a guest-tagging port.
const PLAN: &[PlanPort] = &[
    PlanPort {
        name: "a1",
        group: "vlan1",
        vlan: Vlan::Access(1),
        assigned_mac: false,
    },
    PlanPort {
        name: "a10a",
        group: "vlan10",
        vlan: Vlan::Access(10),
        assigned_mac: true,
    },
    PlanPort {
        name: "a10b",
        group: "vlan10",
        vlan: Vlan::Access(10),
        assigned_mac: false,
    },
    PlanPort {
        name: "a20",
        group: "vlan20",
        vlan: Vlan::Access(20),
        assigned_mac: true,
    },
    PlanPort {
        name: "tn",
        group: "trunk-native",
        vlan: Vlan::Trunk {
            allowed: &[10, 30],
            native: Some(20),
        },
        assigned_mac: false,
    },
    PlanPort {
        name: "tk",
        group: "trunk",
        vlan: Vlan::Trunk {
            allowed: &[10, 20],
            native: None,
        },
        assigned_mac: false,
    },
    PlanPort {
        name: "vgt",
        group: "guest-tagging",
        vlan: Vlan::All,
        assigned_mac: false,
    },
];

/// The VLANs the frames use (learning covers each port in each of them).
const PLAN_VLANS: [u16; 4] = [1, 10, 20, 30];

/// The host MAC behind port `i` (its `mac:` when it has one).
fn host_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, 0x10 + i as u8]
}

/// A source MAC port `i` forges (a MAC nobody else uses).
fn forged_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0xff, 0x10 + i as u8]
}

const UNKNOWN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0xee];
const BROADCAST: [u8; 6] = [0xff; 6];

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The plan as the YAML a user writes.
fn vswitchd_yaml() -> String {
    let mut y = String::from("switches:\n  - name: sw0\n    port-groups:\n");
    let mut seen = Vec::new();
    for p in PLAN {
        if seen.contains(&p.group) {
            continue;
        }
        seen.push(p.group);
        let vlan = match p.vlan {
            Vlan::Access(v) => v.to_string(),
            Vlan::Trunk { allowed, native } => {
                let list = allowed
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                match native {
                    Some(n) => format!("{{ trunk: [{list}], native: {n} }}"),
                    None => format!("{{ trunk: [{list}] }}"),
                }
            }
            Vlan::All => "all".into(),
        };
        y += &format!("      - name: {}\n        vlan: {vlan}\n", p.group);
    }
    y += "    ports:\n";
    for (i, p) in PLAN.iter().enumerate() {
        y += &format!(
            "      - name: {}\n        type: internal\n        port-group: {}\n",
            p.name, p.group
        );
        if p.assigned_mac {
            y += &format!("        mac: {}\n", mac_str(host_mac(i)));
        }
    }
    y
}

/// The plan as OVS `Port` column settings.
fn ovs_port_settings(v: Vlan) -> Vec<String> {
    let list = |a: &[u16]| a.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    match v {
        Vlan::Access(t) => vec![format!("tag={t}"), "vlan_mode=access".into()],
        Vlan::Trunk {
            allowed,
            native: Some(n),
        } => vec![
            format!("tag={n}"),
            format!("trunks={}", list(allowed)),
            "vlan_mode=native-untagged".into(),
        ],
        Vlan::Trunk {
            allowed,
            native: None,
        } => vec![
            format!("trunks={}", list(allowed)),
            "vlan_mode=trunk".into(),
        ],
        Vlan::All => vec!["tag=1".into(), "vlan_mode=native-untagged".into()],
    }
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

const TPID_Q: u16 = 0x8100;
const TPID_AD: u16 = 0x88a8;
const MARKER: &[u8; 7] = b"VSWDIFF";

/// Tags on a crafted frame, outermost first: (TPID, TCI).
type Tags = Vec<(u16, u16)>;

fn tci(pcp: u16, dei: bool, vid: u16) -> u16 {
    (pcp << 13) | (u16::from(dei) << 12) | vid
}

/// One crafted frame.
#[derive(Clone, Debug)]
struct Frame {
    id: u32,
    from: usize,
    what: String,
    dst: [u8; 6],
    src: [u8; 6],
    tags: Tags,
    bytes: Vec<u8>,
}

impl Frame {
    fn double_tagged(&self) -> bool {
        self.tags.len() >= 2
    }
    fn outer_dei(&self) -> bool {
        self.tags.first().is_some_and(|&(_, t)| t & 0x1000 != 0)
    }
}

/// The tag encodings every sender tries: (label, tags).
fn encodings() -> Vec<(String, Tags)> {
    let mut e: Vec<(String, Tags)> = vec![
        ("untagged".into(), vec![]),
        ("prio pcp5".into(), vec![(TPID_Q, tci(5, false, 0))]),
        ("prio pcp3 dei".into(), vec![(TPID_Q, tci(3, true, 0))]),
    ];
    for vid in [1, 10, 20, 30, 40, 4095] {
        e.push((format!("vid{vid} pcp3"), vec![(TPID_Q, tci(3, false, vid))]));
    }
    e.push(("vid10 pcp6 dei".into(), vec![(TPID_Q, tci(6, true, 10))]));
    e.push(("vid20 dei".into(), vec![(TPID_Q, tci(0, true, 20))]));
    e.push(("802.1ad vid10".into(), vec![(TPID_AD, tci(0, false, 10))]));
    e.push((
        "q10 in q20".into(),
        vec![(TPID_Q, tci(0, false, 20)), (TPID_Q, tci(0, false, 10))],
    ));
    e.push((
        "q20 in q10".into(),
        vec![(TPID_Q, tci(0, false, 10)), (TPID_Q, tci(0, false, 20))],
    ));
    e.push((
        "q10 in q30".into(),
        vec![(TPID_Q, tci(0, false, 30)), (TPID_Q, tci(0, false, 10))],
    ));
    e.push((
        "q20 in prio".into(),
        vec![(TPID_Q, tci(0, false, 0)), (TPID_Q, tci(0, false, 20))],
    ));
    e.push((
        "q10 in ad20".into(),
        vec![(TPID_AD, tci(0, false, 20)), (TPID_Q, tci(0, false, 10))],
    ));
    e
}

/// The VLAN port `from` puts a frame with these tags in, by the plan (used
/// only to pick a learned destination, never as an expectation).
fn ingress_vlan(from: usize, tags: &Tags) -> Option<u16> {
    let v = PLAN[from].vlan;
    match tags.first() {
        None => v.native(),
        Some(&(TPID_Q, t)) if t & 0xfff == 0 => v.native(),
        Some(&(TPID_Q, t)) if !matches!(v, Vlan::Access(_)) && v.carries(t & 0xfff) => {
            Some(t & 0xfff)
        }
        _ => None,
    }
}

/// A learned destination for a frame of `from` in `vlan`: the host of the
/// next port (cyclically) in that VLAN, or of the next port at all.
fn learned_dst(from: usize, vlan: Option<u16>) -> [u8; 6] {
    let n = PLAN.len();
    let next = (1..n).map(|k| (from + k) % n);
    let pick = match vlan {
        Some(v) => next.clone().find(|&j| PLAN[j].vlan.carries(v)),
        None => None,
    };
    host_mac(pick.unwrap_or((from + 1) % n))
}

fn build(id: u32, dst: [u8; 6], src: [u8; 6], tags: &Tags, ethertype: u16, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len.max(64));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for &(tpid, t) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&t.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    let l3 = f.len();
    match ethertype {
        0x0800 => {
            // IPv4, protocol 253 (experimentation), 0.0.0.0 -> 224.0.0.251.
            let total = (len.max(l3 + 20 + 11) - l3) as u16;
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[8] = 1;
            h[9] = 253;
            h[16..20].copy_from_slice(&[224, 0, 0, 251]);
            let mut sum = 0u32;
            for w in h.chunks(2) {
                sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            h[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            f.extend_from_slice(&h);
        }
        0x86dd => {
            // IPv6, next header 253, :: -> ff02::1.
            let plen = (len.max(l3 + 40 + 11) - l3 - 40) as u16;
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&plen.to_be_bytes());
            h[6] = 253;
            h[7] = 1;
            h[24] = 0xff;
            h[25] = 0x02;
            h[39] = 1;
            f.extend_from_slice(&h);
        }
        _ => {}
    }
    f.extend_from_slice(MARKER);
    f.extend_from_slice(&id.to_be_bytes());
    // Pad with a pattern (not zeros) so truncation would show.
    let mut k = 0u8;
    while f.len() < len {
        f.push(k);
        k = k.wrapping_add(1);
    }
    f
}

/// The marker's id in a captured frame, if it is one of ours.
fn marker_id(f: &[u8]) -> Option<u32> {
    let at = f.windows(MARKER.len()).position(|w| w == MARKER)? + MARKER.len();
    let b = f.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Every frame, in sending order: learning first, then the rest.
fn frames() -> Vec<Frame> {
    let mut out = Vec::new();
    let push =
        |out: &mut Vec<Frame>, from: usize, what: String, dst, src, tags: Tags, ethertype, len| {
            let id = out.len() as u32;
            let bytes = build(id, dst, src, &tags, ethertype, len);
            out.push(Frame {
                id,
                from,
                what,
                dst,
                src,
                tags,
                bytes,
            });
        };
    // Learning: each port's host in each plan VLAN the port carries, as a
    // broadcast, in port order (the same in both runs).
    for (i, p) in PLAN.iter().enumerate() {
        for v in PLAN_VLANS {
            if !p.vlan.carries(v) {
                continue;
            }
            let tags = if p.vlan.native() == Some(v) {
                vec![]
            } else {
                vec![(TPID_Q, tci(0, false, v))]
            };
            push(
                &mut out,
                i,
                format!("learning vlan {v}"),
                BROADCAST,
                host_mac(i),
                tags,
                0x88b5,
                60,
            );
        }
    }
    assert!(out.len() > PLAN.len());
    for (i, _) in PLAN.iter().enumerate() {
        let me = host_mac(i);
        // Tag encodings x {learned unicast, unknown unicast, broadcast}.
        for (label, tags) in encodings() {
            let learned = learned_dst(i, ingress_vlan(i, &tags));
            for (dlabel, dst) in [
                ("learned", learned),
                ("unknown", UNKNOWN_MAC),
                ("broadcast", BROADCAST),
            ] {
                let len = 60 + 4 * tags.len();
                push(
                    &mut out,
                    i,
                    format!("{label} to {dlabel}"),
                    dst,
                    me,
                    tags.clone(),
                    0x88b5,
                    len,
                );
            }
        }
        // Multicast and reserved groups, untagged and tagged VLAN 10.
        let groups: [(&str, [u8; 6], u16); 7] = [
            ("ipv4 mcast", [0x01, 0, 0x5e, 0, 0, 0xfb], 0x0800),
            ("ipv6 mcast", [0x33, 0x33, 0, 0, 0, 1], 0x86dd),
            ("stp 01:80:c2:00:00:00", [0x01, 0x80, 0xc2, 0, 0, 0], 0x0026),
            (
                "802.1x 01:80:c2:00:00:03",
                [0x01, 0x80, 0xc2, 0, 0, 3],
                0x888e,
            ),
            (
                "lldp 01:80:c2:00:00:0e",
                [0x01, 0x80, 0xc2, 0, 0, 0x0e],
                0x88cc,
            ),
            (
                "cdp 01:00:0c:cc:cc:cc",
                [0x01, 0, 0x0c, 0xcc, 0xcc, 0xcc],
                0x2000,
            ),
            (
                "pvst 01:00:0c:cc:cc:cd",
                [0x01, 0, 0x0c, 0xcc, 0xcc, 0xcd],
                0x010b,
            ),
        ];
        for (glabel, dst, et) in groups {
            for (tlabel, tags) in [
                ("untagged", vec![]),
                ("vid10", vec![(TPID_Q, tci(0, false, 10))]),
            ] {
                let len = 60 + 4 * tags.len();
                push(
                    &mut out,
                    i,
                    format!("{glabel} {tlabel}"),
                    dst,
                    me,
                    tags,
                    et,
                    len,
                );
            }
        }
        // Sources: multicast, zero, forged (another MAC than the host's).
        let mut msrc = me;
        msrc[0] |= 1;
        for (slabel, src, dst) in [
            ("multicast source", msrc, BROADCAST),
            ("zero source", [0; 6], BROADCAST),
            ("forged source", forged_mac(i), BROADCAST),
            (
                "forged source to learned",
                forged_mac(i),
                learned_dst(i, PLAN[i].vlan.native()),
            ),
        ] {
            push(&mut out, i, slabel.into(), dst, src, vec![], 0x88b5, 60);
        }
        // Sizes: 1514 B untagged and tagged VLAN 10 (1518 with the tag),
        // and a 60 B tagged frame (56 B once untagged).
        push(
            &mut out,
            i,
            "1514 B untagged".into(),
            BROADCAST,
            me,
            vec![],
            0x88b5,
            1514,
        );
        let t10 = vec![(TPID_Q, tci(0, false, 10))];
        push(
            &mut out,
            i,
            "1514 B + vid10 tag".into(),
            BROADCAST,
            me,
            t10.clone(),
            0x88b5,
            1518,
        );
        push(
            &mut out,
            i,
            "60 B with vid10 tag".into(),
            BROADCAST,
            me,
            t10,
            0x88b5,
            60,
        );
    }
    out
}

// ---------------------------------------------------------------------------
// Deliberate differences: the one table (mirrored in README.md)
// ---------------------------------------------------------------------------

/// What one switch emitted for one frame: sorted (egress port, bytes).
type Out = Vec<(usize, Vec<u8>)>;

/// One deliberate difference. `to_vswitchd` turns what OVS emitted for a
/// frame the rule `applies` to into what the rule says vswitchd emits; the
/// test requires, for every frame, vswitchd's output to equal OVS's output
/// with the applicable rules applied in table order (so a rule is also a
/// prediction: vswitchd forwarding a frame the way OVS does where a rule
/// says otherwise fails too).
struct Deliberate {
    name: &'static str,
    applies: fn(&Frame) -> bool,
    to_vswitchd: fn(&Frame, Out) -> Out,
    vswitchd: &'static str,
    ovs: &'static str,
    why: &'static str,
}

fn nothing(_: &Frame, _: Out) -> Out {
    Vec::new()
}

/// True if frames of `vid` leave some port of the plan untagged.
fn leaves_untagged(vid: u16) -> bool {
    PLAN.iter().any(|p| p.vlan.native() == Some(vid))
}

/// The table of deliberate differences (README.md, "Compared with Open
/// vSwitch, frame by frame", lists the same).
const DELIBERATE: &[Deliberate] = &[
    Deliberate {
        name: "s-tag-on-trunk",
        applies: |f| {
            f.tags.first().is_some_and(|&(tpid, _)| tpid == TPID_AD)
                && !matches!(PLAN[f.from].vlan, Vlan::Access(_))
        },
        to_vswitchd: nothing,
        vswitchd: "drops a frame whose outer tag is 802.1ad (TPID 0x88a8) on a trunk or guest-tagging port (vlan_bad_tpid); access ports drop it as tagged, like OVS",
        ovs: "takes the S-tag's VID as the frame's VLAN and forwards it, keeping TPID 0x88a8 on tagged egress and stripping it on access ports",
        why: "an S-tag is not a customer VLAN: a guest or trunk speaks 802.1Q, and an S-tag passed on as a C-VLAN would mix provider and customer tagging",
    },
    Deliberate {
        name: "double-tag",
        applies: |f| {
            f.double_tagged() && ingress_vlan(f.from, &f.tags).is_some_and(leaves_untagged)
        },
        to_vswitchd: nothing,
        vswitchd: "drops a frame with a second VLAN tag behind the outer one when its VLAN leaves untagged on any port (vlan_double_tagged)",
        ovs: "forwards it; where the outer tag is stripped (access port, native VLAN) the inner tag is what the next switch sees",
        why: "VLAN hopping: the inner tag would steer the frame into another VLAN one hop later",
    },
    Deliberate {
        name: "invalid-source",
        applies: |f| f.src[0] & 1 == 1 || f.src == [0; 6],
        to_vswitchd: nothing,
        vswitchd: "drops frames whose source MAC is multicast or all zeros (invalid_src_mac)",
        ovs: "forwards them (it only declines to learn the source)",
        why: "no station sends from a group or zero address; such frames are spoofed or broken",
    },
    Deliberate {
        name: "forged-transmit",
        applies: |f| PLAN[f.from].assigned_mac && f.src != host_mac(f.from),
        to_vswitchd: nothing,
        vswitchd: "a port with a `mac:` drops frames whose source is another MAC (forged-transmits: reject, the default)",
        ovs: "forwards them and learns the new source",
        why: "VMware port security: a guest may only send as its assigned MAC",
    },
    Deliberate {
        name: "promiscuous-reject",
        applies: |f| f.dst[0] & 1 == 0,
        to_vswitchd: |f, o| {
            o.into_iter()
                .filter(|(p, _)| !PLAN[*p].assigned_mac || host_mac(*p) == f.dst)
                .collect()
        },
        vswitchd: "does not flood unknown unicast to a port with a `mac:` other than the destination (promiscuous: reject, the default)",
        ovs: "floods unknown unicast to every port of the VLAN",
        why: "VMware port security: a guest receives only frames for its MAC, broadcast and multicast",
    },
    Deliberate {
        name: "dei-kept",
        applies: Frame::outer_dei,
        to_vswitchd: |_, o| {
            o.into_iter()
                .map(|(p, mut b)| {
                    if b.len() > 14
                        && matches!(u16::from_be_bytes([b[12], b[13]]), TPID_Q | TPID_AD)
                    {
                        b[14] |= 0x10;
                    }
                    (p, b)
                })
                .collect()
        },
        vswitchd: "keeps the DEI bit of a tagged or priority-tagged frame in every egress tag",
        ovs: "keeps the frame's tag as it is where it needs no change, but a tag it rewrites or pushes (after stripping it for an access port, or for a priority-tagged frame) has DEI cleared",
        why: "DEI is the frame's drop eligibility (802.1Q); PCP and DEI pass through unchanged, whatever order the egress ports come in",
    },
];

/// OVS's output for `f` with the deliberate rules applied, and the rules
/// that changed it.
fn expected_from_ovs(f: &Frame, ovs: &Out) -> (Out, Vec<&'static str>) {
    let mut cur = ovs.clone();
    let mut used = Vec::new();
    for d in DELIBERATE {
        if (d.applies)(f) {
            let mut next = (d.to_vswitchd)(f, cur.clone());
            next.sort();
            if next != cur {
                used.push(d.name);
                cur = next;
            }
        }
    }
    (cur, used)
}

// ---------------------------------------------------------------------------
// Network namespaces, TAP sockets
// ---------------------------------------------------------------------------

/// An AF_PACKET socket bound to one TAP, with PACKET_AUXDATA on.
struct Tap {
    fd: OwnedFd,
}

const ETH_P_ALL: u16 = 0x0003;

impl Tap {
    /// Opens the socket in the calling thread's network namespace.
    fn open(dev: &str) -> std::io::Result<Tap> {
        let ifindex = nix::net::if_::if_nametoindex(dev)?;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ALL.to_be()),
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        for (opt, must) in [
            (libc::PACKET_AUXDATA, true),
            (libc::PACKET_IGNORE_OUTGOING, false),
        ] {
            let one: libc::c_int = 1;
            // SAFETY: `one` is a c_int that outlives the call; the length is its size.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    opt,
                    (&raw const one).cast(),
                    std::mem::size_of::<libc::c_int>() as u32,
                )
            };
            if rc < 0 && must {
                return Err(std::io::Error::last_os_error());
            }
        }
        let tap = Tap { fd };
        while tap.recv().is_some() {}
        Ok(tap)
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: the buffer is valid for `frame.len()` bytes during the call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send on a TAP: {}",
            std::io::Error::last_os_error()
        );
    }

    /// One frame the switch wrote to this TAP, with the VLAN tag the
    /// kernel moved into metadata put back; None when nothing is queued.
    fn recv(&self) -> Option<Vec<u8>> {
        loop {
            let mut buf = vec![0u8; 65536];
            // u64 storage keeps the control buffer aligned for cmsghdr.
            let mut ctrl = [0u64; 16];
            // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: msghdr is plain old data; all-zero is a valid value.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = (&raw mut from).cast();
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &raw mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = ctrl.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&ctrl);
            // SAFETY: every pointer in `msg` refers to a live local buffer of
            // the length given, for the duration of the call.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return None;
            }
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            buf.truncate(n as usize);
            let ctrl: Vec<u8> = ctrl.iter().flat_map(|w| w.to_ne_bytes()).collect();
            let vlan = auxdata_vlan(&ctrl[..msg.msg_controllen.min(ctrl.len())]);
            if let Some((tpid, t)) = vlan
                && buf.len() >= 12
            {
                let mut tag = tpid.to_be_bytes().to_vec();
                tag.extend_from_slice(&t.to_be_bytes());
                buf.splice(12..12, tag);
            }
            return Some(buf);
        }
    }
}

/// The VLAN tag (TPID, TCI) the kernel moved out of a received frame,
/// from the control messages of its `recvmsg`: parsed as bytes (Linux
/// layout: a `cmsghdr` of length, level and type, 8-byte aligned, then
/// `tpacket_auxdata`: status, len, snaplen, mac, net, vlan_tci, vlan_tpid).
fn auxdata_vlan(ctrl: &[u8]) -> Option<(u16, u16)> {
    const HDR: usize = std::mem::size_of::<libc::cmsghdr>();
    let u32_at = |b: &[u8], k: usize| {
        b.get(k..k + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
    };
    let u16_at = |b: &[u8], k: usize| b.get(k..k + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]));
    let mut off = 0;
    while off + HDR <= ctrl.len() {
        let len_bytes = ctrl.get(off..off + std::mem::size_of::<usize>())?;
        let len = usize::from_ne_bytes(len_bytes.try_into().ok()?);
        let at = off + std::mem::size_of::<usize>();
        let (level, kind) = (u32_at(ctrl, at)?, u32_at(ctrl, at + 4)?);
        if len < HDR {
            return None;
        }
        if level as i32 == libc::SOL_PACKET && kind as i32 == libc::PACKET_AUXDATA {
            let aux = ctrl.get(off + HDR..off + len)?;
            let status = u32_at(aux, 0)?;
            if status & libc::TP_STATUS_VLAN_VALID == 0 {
                return None;
            }
            let tci = u16_at(aux, 16)?;
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                u16_at(aux, 18)?
            } else {
                TPID_Q
            };
            return Some((tpid, tci));
        }
        off += len.div_ceil(8) * 8;
    }
    None
}

/// Opens a socket on each TAP of `ns` (from a thread that joins the
/// namespace; a socket stays in the namespace it was made in).
fn open_taps(ns: &Netns) -> Vec<Tap> {
    let path = format!("/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let f = File::open(&path).expect("netns file");
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        PLAN.iter()
            .map(|p| Tap::open(p.name).unwrap_or_else(|e| panic!("socket on {}: {e}", p.name)))
            .collect()
    })
    .join()
    .expect("tap thread")
}

// ---------------------------------------------------------------------------
// Open vSwitch
// ---------------------------------------------------------------------------

/// A private Open vSwitch (plain userspace `ovs-vswitchd`, not DPDK) with
/// its database, sockets, pidfiles and logs in a temporary directory,
/// running in `ns`.
struct Ovs {
    dir: tempfile::TempDir,
    db: Option<Child>,
    vs: Option<Child>,
}

struct OvsTools {
    vswitchd: PathBuf,
}

fn ovs_tools() -> Option<OvsTools> {
    for t in ["ovsdb-tool", "ovsdb-server", "ovs-vsctl"] {
        find_in_path(t)?;
    }
    if !Path::new(OVS_SCHEMA).is_file() {
        return None;
    }
    // The plain binary: /usr/sbin/ovs-vswitchd may be an alternative
    // pointing at the DPDK build.
    let plain = Path::new("/usr/lib/openvswitch-switch/ovs-vswitchd");
    let vswitchd = if plain.is_file() {
        plain.to_path_buf()
    } else {
        find_in_path("ovs-vswitchd")?
    };
    Some(OvsTools { vswitchd })
}

const OVS_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

impl Ovs {
    fn start(ns: &Netns, tools: &OvsTools) -> Ovs {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_path_buf();
        let ds = d.display().to_string();
        run(
            "ovsdb-tool",
            &["create", &format!("{ds}/conf.db"), OVS_SCHEMA],
        );
        let mut ovs = Ovs {
            dir,
            db: None,
            vs: None,
        };
        ovs.db = Some(
            ovs.command("ovsdb-server")
                .args([
                    format!("{ds}/conf.db"),
                    format!("--remote=punix:{ds}/db.sock"),
                    format!("--pidfile={ds}/ovsdb-server.pid"),
                    format!("--log-file={ds}/ovsdb-server.log"),
                    "--no-chdir".into(),
                    "-vconsole:off".into(),
                ])
                .spawn()
                .expect("ovsdb-server starts"),
        );
        assert!(
            wait_until(Duration::from_secs(10), || d.join("db.sock").exists()),
            "ovsdb-server did not come up"
        );
        ovs.vsctl(&["--no-wait", "init"]);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .arg(&tools.vswitchd)
            .args([
                format!("unix:{ds}/db.sock"),
                format!("--pidfile={ds}/ovs-vswitchd.pid"),
                format!("--log-file={ds}/ovs-vswitchd.log"),
                "--no-chdir".into(),
                "-vconsole:off".into(),
            ]);
        ovs.env(&mut cmd);
        ovs.vs = Some(cmd.spawn().expect("ovs-vswitchd starts"));
        let mut args: Vec<String> = [
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
        ]
        .map(String::from)
        .to_vec();
        for p in PLAN {
            args.extend(["--", "add-port", "br0", p.name].map(String::from));
            args.extend(ovs_port_settings(p.vlan));
            args.extend(["--", "set", "Interface", p.name, "type=internal"].map(String::from));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ovs.vsctl(&refs);
        ovs
    }

    fn env(&self, cmd: &mut Command) {
        let d = self.dir.path();
        for k in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            cmd.env(k, d);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }

    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        self.env(&mut c);
        c
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let out = self
            .command("ovs-vsctl")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .arg(format!("--db=unix:{}/db.sock", self.dir.path().display()))
            .arg("--timeout=30")
            .args(args)
            .output()
            .expect("ovs-vsctl runs");
        assert!(
            out.status.success(),
            "ovs-vsctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ovs-vswitchd.log")).unwrap_or_default()
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for mut c in [self.vs.take(), self.db.take()].into_iter().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Running the frames
// ---------------------------------------------------------------------------

/// Brings the plan's TAPs up and opens the sockets.
fn ready_taps(ns: &Netns) -> Vec<Tap> {
    for p in PLAN {
        assert!(
            wait_until(Duration::from_secs(10), || ns.has_link(p.name)),
            "TAP {} never appeared in {}",
            p.name,
            ns.name
        );
        ns.link_up(p.name);
    }
    open_taps(ns)
}

/// How long a frame may take through a switch before the next is sent
/// (late ones still count: frames are matched by marker, not by time).
const QUIET: Duration = Duration::from_millis(6);

/// Sends every frame from its port, one at a time, and collects what each
/// port saw, by marker. Learning frames are followed by a pause so both
/// switches (OVS revalidates its flow cache asynchronously) have settled.
fn drive(taps: &[Tap], frames: &[Frame], n_learning: usize) -> Vec<Out> {
    let mut got: Vec<Out> = vec![Vec::new(); frames.len()];
    let collect = |got: &mut Vec<Out>| {
        let mut any = false;
        for (p, t) in taps.iter().enumerate() {
            while let Some(f) = t.recv() {
                any = true;
                if let Some(id) = marker_id(&f)
                    && let Some(slot) = got.get_mut(id as usize)
                {
                    slot.push((p, f));
                }
            }
        }
        any
    };
    for (k, f) in frames.iter().enumerate() {
        taps[f.from].send(&f.bytes);
        let mut quiet_since = Instant::now();
        let start = Instant::now();
        while quiet_since.elapsed() < QUIET && start.elapsed() < Duration::from_millis(200) {
            if collect(&mut got) {
                quiet_since = Instant::now();
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        if k + 1 == n_learning {
            std::thread::sleep(Duration::from_millis(500));
            collect(&mut got);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    collect(&mut got);
    for o in &mut got {
        o.sort();
    }
    got
}

fn learning_count(frames: &[Frame]) -> usize {
    frames
        .iter()
        .take_while(|f| f.what.starts_with("learning"))
        .count()
}

fn run_vswitchd(frames: &[Frame]) -> Vec<Out> {
    let ns = Netns::new("vs");
    let mut d = Vswitchd::start_in_netns(&ns.name, &vswitchd_yaml());
    let taps = ready_taps(&ns);
    let got = drive(&taps, frames, learning_count(frames));
    drop(taps);
    d.stop();
    got
}

fn run_ovs(frames: &[Frame], tools: &OvsTools) -> Vec<Out> {
    let ns = Netns::new("ovs");
    let ovs = Ovs::start(&ns, tools);
    let taps = ready_taps(&ns);
    let got = drive(&taps, frames, learning_count(frames));
    drop(taps);
    drop(ovs);
    got
}

fn show(o: &Out) -> String {
    if o.is_empty() {
        return "nothing".into();
    }
    o.iter()
        .map(|(p, b)| {
            let hex: String = b
                .iter()
                .take(22)
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join("");
            format!("{}[{}B {}..]", PLAN[*p].name, b.len(), hex)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn same_frames_as_open_vswitch() {
    let _g = serial();
    let Some(tools) = ovs_tools() else {
        eprintln!(
            "skipping: Open vSwitch (ovsdb-tool, ovsdb-server, ovs-vsctl, ovs-vswitchd) not installed; run scripts/install-deps.sh"
        );
        return;
    };
    assert!(
        find_in_path("ip").is_some(),
        "needs iproute2; run scripts/install-deps.sh"
    );
    let t0 = Instant::now();
    let frames = frames();
    assert!(frames.len() >= 150, "{} frames", frames.len());
    let vs = run_vswitchd(&frames);
    let ovs = run_ovs(&frames, &tools);

    let mut identical = 0;
    let mut explained = 0;
    let mut by_entry: BTreeMap<&str, usize> = DELIBERATE.iter().map(|d| (d.name, 0)).collect();
    let mut unexplained = Vec::new();
    for f in &frames {
        let (a, b) = (&vs[f.id as usize], &ovs[f.id as usize]);
        let (expected, used) = expected_from_ovs(f, b);
        if *a == expected {
            if a == b {
                identical += 1;
            } else {
                explained += 1;
                for u in used {
                    *by_entry.entry(u).or_default() += 1;
                }
            }
            continue;
        }
        unexplained.push(format!(
            "frame {} from {} ({}): dst {} src {}\n    vswitchd: {}\n    ovs:      {}\n    ovs with the rules applied ({used:?}): {}",
            f.id,
            PLAN[f.from].name,
            f.what,
            mac_str(f.dst),
            mac_str(f.src),
            show(a),
            show(b),
            show(&expected)
        ));
    }
    // Sanity: the switches forwarded something (a dead switch would make
    // every frame "identical" with the other if both were dead).
    let forwarded = |o: &[Out]| o.iter().filter(|x| !x.is_empty()).count();
    let per_entry = by_entry
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "differential: {} frames, {identical} identical, {explained} deliberate differences (by entry, a frame may need two: {per_entry}), {} unexplained; forwarded by vswitchd {}, by OVS {}; {:.1} s",
        frames.len(),
        unexplained.len(),
        forwarded(&vs),
        forwarded(&ovs),
        t0.elapsed().as_secs_f64()
    );
    for d in DELIBERATE {
        println!(
            "  {}: vswitchd {}; OVS {}; why: {}",
            d.name, d.vswitchd, d.ovs, d.why
        );
    }
    assert!(
        unexplained.is_empty(),
        "{} differences not in the table of deliberate differences:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    assert!(
        forwarded(&vs) > frames.len() / 5 && forwarded(&ovs) > frames.len() / 5,
        "too few frames forwarded: vswitchd {}, OVS {}",
        forwarded(&vs),
        forwarded(&ovs)
    );
    let unused: Vec<_> = by_entry
        .iter()
        .filter(|(_, v)| **v == 0)
        .map(|(k, _)| *k)
        .collect();
    assert!(
        unused.is_empty(),
        "deliberate differences no frame showed (remove them or add frames): {unused:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
}
