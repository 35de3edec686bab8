//! Shared pieces of the benches: a circulating-frames rig over memory
//! ports driven by one hand-run PMD (the way `dpdk-testpmd` loops frames
//! with `macswap`).
#![allow(missing_docs)]

use dataplane::testing::{frame, mac};
use dataplane::{
    IdlePolicy, MacTableSpec, Packet, Pmd, PmdConfig, PortId, PortSpec, SecurityPolicy, Switch,
    SwitchSpec, VlanMode, VlanSet,
};

/// How the two sides of each port pair are configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tagging {
    /// Both sides access ports of VLAN 10: no tag work.
    Untagged,
    /// Side A access VLAN 10, side B a trunk carrying VLAN 10 tagged:
    /// A->B pushes a tag, B->A pops it.
    PushPop,
}

/// Frames circulating between port pairs through one PMD.
#[derive(Debug)]
pub struct Rig {
    pub switch: Switch,
    pub pmd: Pmd,
    peers: Vec<dataplane::port::MemPortPeer>,
    inflight: Vec<Vec<Packet>>,
    scratch: Vec<Packet>,
    pub frames_per_round: usize,
}

/// Swaps destination and source MAC in place (testpmd's macswap).
#[inline]
pub fn macswap(p: &mut Packet) {
    let d = p.data_mut();
    for i in 0..6 {
        d.swap(i, i + 6);
    }
}

/// A guest port that lets frames with any source MAC through (the rig
/// circulates many MACs per port).
fn port(id: u16, vlan: VlanMode) -> PortSpec {
    PortSpec {
        security: SecurityPolicy {
            forged_transmits: true,
            mac_changes: true,
            promiscuous: false,
        },
        ..dataplane::testing::guest(id, vlan)
    }
}

impl Rig {
    /// `ports` ports (even), `macs` learned MACs spread over them,
    /// `burst` frames circulating per port.
    pub fn new(ports: u16, macs: u64, tagging: Tagging, burst: usize) -> Rig {
        assert!(ports >= 2 && ports.is_multiple_of(2));
        let pairs = ports / 2;
        let trunk = VlanMode::Trunk {
            allowed: VlanSet::from_ranges(&[(10, 10)]),
            native: None,
        };
        let specs = (0..ports)
            .map(|i| {
                let side_b = i >= pairs;
                let vlan = match (tagging, side_b) {
                    (Tagging::PushPop, true) => trunk.clone(),
                    _ => VlanMode::Access(10),
                };
                port(i, vlan)
            })
            .collect();
        let spec = SwitchSpec {
            ports: specs,
            mac_table: MacTableSpec {
                max_entries: (macs as usize) * 2 + 1024,
                per_port_limit: u32::MAX,
                aging_secs: 300,
            },
            ..Default::default()
        };
        let cfg = PmdConfig {
            idle: IdlePolicy::Busy,
            burst,
            pool_size: 4096,
            ..PmdConfig::default()
        };
        let (switch, mut pmds) = Switch::build(spec, &[cfg]).expect("valid bench spec");
        let mut pmd = pmds.remove(0);
        let mut peers: Vec<_> = (0..ports)
            .map(|i| switch.attach_mem_port(PortId(i), 4096).expect("attach"))
            .collect();
        pmd.poll_once(0);

        // Learn `macs` addresses: MAC k lives on port k % ports.
        let tag_for = |p: u16| -> Vec<(u16, u16)> {
            if tagging == Tagging::PushPop && p >= pairs {
                vec![(0x8100, 10)]
            } else {
                vec![]
            }
        };
        let mut batch = Vec::new();
        let mut k = 0u64;
        while k < macs {
            for p in 0..ports {
                batch.clear();
                for _ in 0..32 {
                    if k >= macs {
                        break;
                    }
                    // Learned on port (k % ports); sent to a MAC on the same
                    // port so learning frames do not flood the rig.
                    let owner = (k % u64::from(ports)) as u16;
                    if owner == p {
                        batch.push(Packet::from_frame(&frame(
                            mac(k),
                            mac(k),
                            &tag_for(p),
                            &[0u8; 46],
                        )));
                        k += 1;
                    }
                }
                peers[usize::from(p)].send_burst(0, &mut batch);
            }
            pmd.poll_once(0);
            let mut sink = Vec::new();
            for peer in &mut peers {
                peer.recv_all(&mut sink);
            }
        }
        assert!(pmd.mac_table().len() as u64 >= macs, "rig learned all MACs");

        // Circulating frames: for pair i, `burst` flows from A_i to B_i,
        // each between two learned MACs spread across the table.
        let mut inflight: Vec<Vec<Packet>> = (0..ports).map(|_| Vec::new()).collect();
        // MAC k lives on port k % ports, so port p owns p, p + ports, ...
        let per_port = (macs / u64::from(ports)).max(1);
        let stride = (per_port / (burst as u64 + 1)).max(1);
        for i in 0..pairs {
            let a = i;
            let b = i + pairs;
            for f in 0..burst as u64 {
                // A MAC that lives on port a and one that lives on port b,
                // spread across the table.
                let ka = (f * stride) % per_port;
                let kb = (f * stride + stride / 2 + 1) % per_port;
                let ma = u64::from(a) + u64::from(ports) * ka;
                let mb = u64::from(b) + u64::from(ports) * kb;
                inflight[usize::from(a)].push(Packet::from_frame(&frame(
                    mac(mb),
                    mac(ma),
                    &tag_for(a),
                    &[0u8; 46],
                )));
            }
        }
        Rig {
            switch,
            pmd,
            peers,
            inflight,
            scratch: Vec::with_capacity(burst * 4),
            frames_per_round: usize::from(pairs) * burst,
        }
    }

    /// One round: inject every in-flight frame, run one PMD poll, collect
    /// what came out (macswapped, ready to go back). Returns frames out.
    #[inline]
    pub fn round(&mut self) -> usize {
        for (peer, frames) in self.peers.iter_mut().zip(self.inflight.iter_mut()) {
            peer.send_burst(0, frames);
        }
        self.pmd.poll_once(0);
        let mut out = 0;
        for (peer, frames) in self.peers.iter_mut().zip(self.inflight.iter_mut()) {
            self.scratch.clear();
            out += peer.recv_all(&mut self.scratch);
            for mut p in self.scratch.drain(..) {
                macswap(&mut p);
                frames.push(p);
            }
        }
        out
    }
}
