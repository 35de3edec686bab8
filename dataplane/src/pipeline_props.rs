//! Property tests of the forwarding pipeline: for random port/VLAN
//! configurations and random frames, a frame never leaves on its ingress
//! port, never crosses VLANs, never goes uplink to uplink, is never
//! duplicated on a port, keeps its payload, and is either delivered or
//! counted as exactly one drop with a reason.

use proptest::prelude::*;

use wire::{EthernetHeader, MacAddr, TPID_8021AD, TPID_8021Q, tci_vid};

use crate::packet::Packet;
use crate::port::{PortId, PortRole};
use crate::snapshot::{PortSpec, SecurityPolicy, SwitchSpec};
use crate::testing::{Harness, frame, mac};
use crate::vlan::{VlanMode, VlanSet};

fn vlan_mode() -> impl Strategy<Value = VlanMode> {
    prop_oneof![
        (1u16..=3).prop_map(VlanMode::Access),
        (
            proptest::collection::vec(1u16..=3, 0..3),
            proptest::option::of(1u16..=3)
        )
            .prop_map(|(vids, native)| {
                let mut allowed = VlanSet::empty();
                for v in vids {
                    allowed.insert(v);
                }
                VlanMode::Trunk { allowed, native }
            }),
        proptest::option::of(1u16..=3).prop_map(|native| VlanMode::GuestTagging { native }),
    ]
}

fn port_spec(id: u16) -> impl Strategy<Value = PortSpec> {
    (
        vlan_mode(),
        any::<bool>(),
        any::<[bool; 3]>(),
        proptest::option::of(0u64..6),
    )
        .prop_map(move |(vlan, is_uplink, sec, m)| PortSpec {
            id: PortId(id),
            name: format!("p{id}"),
            role: if is_uplink {
                PortRole::Uplink
            } else {
                PortRole::Guest
            },
            vlan,
            security: SecurityPolicy {
                promiscuous: sec[0],
                mac_changes: sec[1],
                forged_transmits: sec[2],
            },
            mac: m.map(mac),
        })
}

fn switch_spec() -> impl Strategy<Value = SwitchSpec> {
    (2usize..7).prop_flat_map(|n| {
        (0..n)
            .map(|i| port_spec(i as u16 + 1))
            .collect::<Vec<_>>()
            .prop_map(|ports| SwitchSpec {
                ports,
                ..Default::default()
            })
    })
}

#[derive(Debug, Clone)]
struct Input {
    port_index: usize,
    dst: u64,
    src: u64,
    tags: Vec<(u16, u16)>,
}

fn tag() -> impl Strategy<Value = (u16, u16)> {
    (
        prop_oneof![8 => Just(TPID_8021Q), 1 => Just(TPID_8021AD)],
        0u16..=4,
        0u16..8,
    )
        .prop_map(|(tpid, vid, pcp)| (tpid, (pcp << 13) | vid))
}

fn input() -> impl Strategy<Value = Input> {
    (
        0usize..8,
        0u64..9,
        0u64..7,
        proptest::collection::vec(tag(), 0..3),
    )
        .prop_map(|(port_index, dst, src, tags)| Input {
            port_index,
            dst,
            src,
            tags,
        })
}

fn addr(n: u64) -> MacAddr {
    match n {
        7 => MacAddr::BROADCAST,
        8 => "01:00:5e:00:00:fb".parse().unwrap_or(MacAddr::BROADCAST),
        n => mac(n),
    }
}

/// The VLAN a frame belongs to as seen on a port: an independent model
/// (tag VID, or the untagged VLAN of the port for untagged and priority
/// tagged frames).
fn vlan_seen(mode: &VlanMode, data: &[u8]) -> Option<u16> {
    let h = EthernetHeader::parse(data)?;
    let untagged = match mode {
        VlanMode::Access(v) => Some(*v),
        VlanMode::Trunk { native, .. } | VlanMode::GuestTagging { native } => *native,
    };
    match h.tci.map(tci_vid) {
        None | Some(0) => untagged,
        Some(v) => Some(v),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn forwarding_invariants(spec in switch_spec(), inputs in proptest::collection::vec(input(), 1..40)) {
        let ports = spec.ports.clone();
        let mut h = Harness::new(spec);
        for (seq, inp) in inputs.iter().enumerate() {
            let ingress = &ports[inp.port_index % ports.len()];
            let id = ingress.id.0;
            let marker = (seq as u32).to_be_bytes();
            let f = frame(addr(inp.dst), addr(inp.src), &inp.tags, &marker);
            let drops_before: u64 = ports.iter().map(|p| h.stats(p.id.0).total_drops()).sum();
            h.send(id, &f);
            let out = h.recv_everywhere();
            let drops_after: u64 = ports.iter().map(|p| h.stats(p.id.0).total_drops()).sum();
            let mut delivered = 0;
            for (port, frames) in &out {
                if frames.is_empty() { continue; }
                delivered += 1;
                let egress = ports.iter().find(|p| p.id.0 == *port).expect("known port");
                prop_assert_ne!(*port, id, "left on its ingress port");
                prop_assert!(!(ingress.role == PortRole::Uplink && egress.role == PortRole::Uplink),
                    "uplink {} to uplink {}", id, port);
                prop_assert_eq!(frames.len(), 1, "duplicated on port {}", port);
                let got = &frames[0];
                let hdr = 12 + 2 + 4 * inp.tags.len();
                let payload_in = &f[hdr..];
                prop_assert!(got.ends_with(payload_in), "payload changed");
                prop_assert_eq!(&got[..12], &f[..12], "addresses changed");
                prop_assert_eq!(vlan_seen(&egress.vlan, got), vlan_seen(&ingress.vlan, &f),
                    "crossed VLANs: in {:?} out {:?}", &f[12..hdr], &got[12..got.len() - payload_in.len()]);
            }
            if delivered == 0 {
                prop_assert_eq!(drops_after, drops_before + 1, "undelivered frame must be one counted drop");
            } else {
                prop_assert_eq!(drops_after, drops_before, "delivered frame must not count a drop");
            }
        }
    }
}

/// One burst: an ingress port and frames drawn from three header
/// variants (so the same headers repeat), each with a payload length.
#[derive(Debug, Clone)]
struct Burst {
    port_index: usize,
    variants: [Input; 3],
    frames: Vec<(usize, usize)>,
}

fn burst() -> impl Strategy<Value = Burst> {
    (
        0usize..8,
        [input(), input(), input()],
        proptest::collection::vec(
            (
                0usize..3,
                prop_oneof![4 => 0usize..200, 1 => 1480usize..1520],
            ),
            1..32,
        ),
    )
        .prop_map(|(port_index, variants, frames)| Burst {
            port_index,
            variants,
            frames,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Frames forwarded in one burst (where a frame with the previous
    /// frame's headers reuses its decision) leave exactly as they leave
    /// one per burst, with the same drops counted.
    #[test]
    fn a_burst_forwards_like_frames_one_by_one(spec in switch_spec(), bursts in proptest::collection::vec(burst(), 1..12)) {
        let ports = spec.ports.clone();
        let mut one_by_one = Harness::new(spec.clone());
        let mut together = Harness::new(spec);
        for (b, burst) in bursts.iter().enumerate() {
            let id = ports[burst.port_index % ports.len()].id.0;
            for (k, &(v, len)) in burst.frames.iter().enumerate() {
                let inp = &burst.variants[v];
                let mut payload = vec![0u8; len.max(8)];
                payload[..4].copy_from_slice(&(b as u32).to_be_bytes());
                payload[4..8].copy_from_slice(&(k as u32).to_be_bytes());
                let f = frame(addr(inp.dst), addr(inp.src), &inp.tags, &payload);
                one_by_one.send(id, &f);
                let peer = together.peers.get_mut(&id).expect("port");
                prop_assert!(peer.send(0, Packet::from_frame(&f)).is_ok());
            }
            together.pmd.poll_once(together.now);
            prop_assert_eq!(together.recv_everywhere(), one_by_one.recv_everywhere(), "burst {}", b);
            for p in &ports {
                prop_assert_eq!(together.stats(p.id.0), one_by_one.stats(p.id.0), "port {} counters", p.id.0);
            }
        }
    }
}
