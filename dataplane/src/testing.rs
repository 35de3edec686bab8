//! Test and bench helpers: frame builders and a harness that drives one
//! PMD by hand over memory ports, deterministically (time is a parameter).

use std::collections::BTreeMap;

use wire::MacAddr;

use crate::Packet;
use crate::pmd::{IdlePolicy, Pmd, PmdConfig};
use crate::port::{MemPortPeer, PortId, PortRole};
use crate::snapshot::{PortSpec, SecurityPolicy, SwitchSpec};
use crate::stats::PortCountersSnapshot;
use crate::switch::Switch;
use crate::vlan::VlanMode;

/// A locally administered unicast MAC numbered `n`.
pub fn mac(n: u64) -> MacAddr {
    MacAddr::from_u64(0x0200_0000_0000 | (n & 0xffff_ffff))
}

/// An Ethernet frame: `dst`, `src`, the given (TPID, TCI) tags, IPv4
/// EtherType, then `payload` (padded with zeros to a 60-byte minimum).
pub fn frame(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(64 + payload.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for &(tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// A guest port spec with default security.
pub fn guest(id: u16, vlan: VlanMode) -> PortSpec {
    PortSpec {
        id: PortId(id),
        name: format!("p{id}"),
        role: PortRole::Guest,
        vlan,
        security: SecurityPolicy::default(),
        mac: None,
    }
}

/// An uplink port spec (a trunk).
pub fn uplink(id: u16, vlan: VlanMode) -> PortSpec {
    PortSpec {
        role: PortRole::Uplink,
        name: format!("up{id}"),
        ..guest(id, vlan)
    }
}

/// One switch, one PMD driven by hand, a memory port per spec port.
#[derive(Debug)]
pub struct Harness {
    /// The switch (control-plane handle).
    pub switch: Switch,
    /// Its only PMD.
    pub pmd: Pmd,
    /// Peer ends by port ID.
    pub peers: BTreeMap<u16, MemPortPeer>,
    /// Switch time in seconds.
    pub now: u32,
}

impl Harness {
    /// A harness for `spec` with memory ports of depth 1024.
    pub fn new(spec: SwitchSpec) -> Harness {
        Self::with_config(
            spec,
            PmdConfig {
                idle: IdlePolicy::Busy,
                ..PmdConfig::default()
            },
        )
    }

    /// A harness with a specific PMD config.
    pub fn with_config(spec: SwitchSpec, cfg: PmdConfig) -> Harness {
        let ids: Vec<u16> = spec.ports.iter().map(|p| p.id.0).collect();
        let (switch, mut pmds) = match Switch::build(spec, &[cfg]) {
            Ok(v) => v,
            Err(e) => panic!("harness spec must be valid: {e}"),
        };
        let mut pmd = pmds.remove(0);
        let mut peers = BTreeMap::new();
        for id in ids {
            match switch.attach_mem_port(PortId(id), 1024) {
                Ok(peer) => {
                    peers.insert(id, peer);
                }
                Err(e) => panic!("attach port {id}: {e}"),
            }
        }
        pmd.poll_once(0);
        Harness {
            switch,
            pmd,
            peers,
            now: 0,
        }
    }

    /// Sends one frame into `port` and runs the PMD until it is forwarded.
    pub fn send(&mut self, port: u16, f: &[u8]) {
        let peer = self.peers.get_mut(&port).expect("harness port exists");
        assert!(peer.send(0, Packet::from_frame(f)).is_ok(), "ring full");
        self.pmd.poll_once(self.now);
    }

    /// Frames the switch sent out of `port` since the last call.
    pub fn recv(&mut self, port: u16) -> Vec<Vec<u8>> {
        let peer = self.peers.get_mut(&port).expect("harness port exists");
        let mut out = Vec::new();
        peer.recv_all(&mut out);
        out.iter().map(|p| p.data().to_vec()).collect()
    }

    /// Packets the switch sent out of `port` since the last call, with
    /// their metadata.
    pub fn recv_packets(&mut self, port: u16) -> Vec<Packet> {
        let peer = self.peers.get_mut(&port).expect("harness port exists");
        let mut out = Vec::new();
        peer.recv_all(&mut out);
        out
    }

    /// Frames waiting on every port, by port.
    pub fn recv_everywhere(&mut self) -> BTreeMap<u16, Vec<Vec<u8>>> {
        let ids: Vec<u16> = self.peers.keys().copied().collect();
        ids.into_iter().map(|id| (id, self.recv(id))).collect()
    }

    /// Counters of a port.
    pub fn stats(&self, port: u16) -> PortCountersSnapshot {
        self.switch.port_stats(PortId(port))
    }

    /// Moves switch time forward and polls once.
    pub fn advance(&mut self, secs: u32) {
        self.now += secs;
        self.pmd.poll_once(self.now);
    }

    /// Publishes a new spec and polls once so the PMD picks it up.
    pub fn update(&mut self, spec: SwitchSpec) {
        if let Err(e) = self.switch.update(spec) {
            panic!("update must be valid: {e}");
        }
        self.pmd.poll_once(self.now);
    }
}

/// Fuzz entry point for frame parsing and forwarding (`fuzz/`, and the
/// corpus replay test): `data` is a list of frames, each a port byte
/// (0-3), a length byte and that many bytes, sent into a switch with an
/// access-10, an access-20, a trunk (10 and 20, native 1) and a
/// guest-tagging port. Panics when a forwarding invariant breaks:
/// - a frame never leaves through the port it came in on;
/// - a frame leaves an access port untagged, and only from its VLAN:
///   nothing entering on access 10 reaches access 20 or vice versa;
/// - every frame taken in is forwarded or counted as dropped.
pub fn fuzz_frames(data: &[u8]) {
    use crate::vlan::VlanSet;
    const TPID_8021Q: [u8; 2] = [0x81, 0x00];
    let trunk = VlanMode::Trunk {
        allowed: VlanSet::from_ranges(&[(10, 10), (20, 20)]),
        native: Some(1),
    };
    let spec = SwitchSpec {
        ports: vec![
            guest(0, VlanMode::Access(10)),
            guest(1, VlanMode::Access(20)),
            uplink(2, trunk),
            guest(3, VlanMode::GuestTagging { native: None }),
        ],
        ..SwitchSpec::default()
    };
    let mut h = Harness::new(spec);
    let mut rest = data;
    while let [port, len, tail @ ..] = rest {
        let port = u16::from(*port % 4);
        let n = usize::from(*len).min(tail.len());
        let (frame, next) = tail.split_at(n);
        rest = next;
        h.send(port, frame);
        let out = h.recv_everywhere();
        assert!(out[&port].is_empty(), "frame hairpinned to port {port}");
        for access in [0u16, 1] {
            for f in &out[&access] {
                assert!(f.len() >= 14, "runt frame out of port {access}");
                assert_ne!(
                    f[12..14],
                    TPID_8021Q,
                    "tagged frame out of access port {access}"
                );
            }
        }
        if port == 0 {
            assert!(out[&1].is_empty(), "VLAN 10 frame reached access 20");
        }
        if port == 1 {
            assert!(out[&0].is_empty(), "VLAN 20 frame reached access 10");
        }
    }
    for port in 0..4 {
        let s = h.stats(port);
        assert!(s.rx_packets >= s.total_drops(), "port {port}: {s:?}");
    }
}
