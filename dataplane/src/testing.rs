//! Test and bench helpers: frame builders and a harness that drives one
//! PMD by hand over memory ports, deterministically (time is a parameter).

use std::collections::BTreeMap;

use crate::Packet;
use crate::pmd::{IdlePolicy, Pmd, PmdConfig};
use crate::port::{MemPortPeer, PortId, PortRole};
use crate::snapshot::{PortSpec, SecurityPolicy, SwitchSpec};
use crate::stats::PortCountersSnapshot;
use crate::switch::Switch;
use crate::vlan::VlanMode;
use crate::wire::MacAddr;

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
