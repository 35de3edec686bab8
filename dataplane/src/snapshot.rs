//! What the fast path knows about the switch's configuration: an immutable
//! snapshot built from a [`SwitchSpec`] and swapped atomically.
//!
//! `vswitch` translates the YAML model into a [`SwitchSpec`]; config types
//! never reach the dataplane. Building the snapshot validates the spec and
//! precomputes per-VLAN flood lists, so the per-packet code only indexes.

use wire::MacAddr;

use crate::mac_table::{MacTableSpec, mac_key};
use crate::port::{PortId, PortRole};
use crate::vlan::{VLAN_MAX, VlanMode};

/// Highest port ID + 1. Port IDs index arrays on the fast path.
pub const MAX_PORTS: usize = 1024;

/// VMware's port security policy. `false` means "reject".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// Receive every frame of the port's VLANs, not just its own.
    pub promiscuous: bool,
    /// Let the guest use another MAC than its assigned one for receiving:
    /// when false, only the assigned MAC is learned on the port and
    /// flooded unicast for other MACs is not delivered to it.
    pub mac_changes: bool,
    /// Let the guest send with another source MAC than its assigned one.
    pub forged_transmits: bool,
}

impl Default for SecurityPolicy {
    /// All three rejected, as on a VMware distributed switch.
    fn default() -> Self {
        SecurityPolicy {
            promiscuous: false,
            mac_changes: false,
            forged_transmits: false,
        }
    }
}

/// One port as the dataplane needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Stable ID.
    pub id: PortId,
    /// Name for logs and counters.
    pub name: String,
    /// Guest, uplink or internal. Uplinks should be trunks.
    pub role: PortRole,
    /// VLAN membership.
    pub vlan: VlanMode,
    /// Security policy; checked against `mac` when set.
    pub security: SecurityPolicy,
    /// The MAC assigned to the guest's NIC, when known. It is installed as a
    /// static entry in the port's untagged VLAN, so the switch never floods
    /// to reach it and nobody else can claim it.
    pub mac: Option<MacAddr>,
}

/// A static (VLAN, MAC) -> port entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticMac {
    /// VLAN.
    pub vid: u16,
    /// Address.
    pub mac: MacAddr,
    /// Port.
    pub port: PortId,
}

/// Everything the dataplane is told about one switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchSpec {
    /// The ports.
    pub ports: Vec<PortSpec>,
    /// Largest L3 payload (bytes after the Ethernet header and outer tag).
    pub mtu: usize,
    /// MAC table limits and ageing.
    pub mac_table: MacTableSpec,
    /// Static entries.
    pub static_macs: Vec<StaticMac>,
}

impl Default for SwitchSpec {
    fn default() -> Self {
        SwitchSpec {
            ports: Vec::new(),
            mtu: 1500,
            mac_table: MacTableSpec::default(),
            static_macs: Vec::new(),
        }
    }
}

/// Why a spec cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A port ID does not fit the fast path's arrays.
    #[error("port {name}: ID {id} is out of range (0-{max})", max = MAX_PORTS - 1)]
    PortIdOutOfRange {
        /// Port name.
        name: String,
        /// Its ID.
        id: u16,
    },
    /// Two ports share an ID.
    #[error("ports {first} and {second} share ID {id}")]
    DuplicatePortId {
        /// First port.
        first: String,
        /// Second port.
        second: String,
        /// The ID.
        id: u16,
    },
    /// A VLAN ID outside 1-4094.
    #[error("port {name}: {vid} is not a VLAN ID (1-4094)")]
    BadVlan {
        /// Port name.
        name: String,
        /// The bad ID.
        vid: u16,
    },
    /// A static entry names an unknown port or a bad VLAN.
    #[error("static MAC {mac} on VLAN {vid}: {why}")]
    BadStatic {
        /// Address.
        mac: MacAddr,
        /// VLAN.
        vid: u16,
        /// What is wrong.
        why: &'static str,
    },
    /// MTU out of range.
    #[error("MTU {0} is out of range (68-65000)")]
    BadMtu(usize),
}

/// A port with the facts the fast path reads.
#[derive(Debug)]
pub(crate) struct PortState {
    pub(crate) spec: PortSpec,
    pub(crate) is_uplink: bool,
}

/// Members of one VLAN.
#[derive(Debug, Default, Clone)]
pub(crate) struct VlanMembers {
    /// Every member port with its uplink flag, in port-ID order.
    pub(crate) ports: Vec<(PortId, bool)>,
    /// Members with promiscuous mode on.
    pub(crate) promiscuous: Vec<(PortId, bool)>,
    /// Some member sends this VLAN untagged (access or native).
    pub(crate) untagged_egress: bool,
}

/// The immutable configuration a PMD forwards with.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) generation: u64,
    pub(crate) ports: Vec<Option<PortState>>,
    pub(crate) vlans: Vec<VlanMembers>,
    pub(crate) mtu: usize,
    pub(crate) mac_table: MacTableSpec,
    pub(crate) statics: Vec<(u64, PortId)>,
    spec: SwitchSpec,
}

fn check_vid(name: &str, vid: u16) -> Result<(), SpecError> {
    if (1..=VLAN_MAX).contains(&vid) {
        Ok(())
    } else {
        Err(SpecError::BadVlan {
            name: name.to_string(),
            vid,
        })
    }
}

impl Snapshot {
    /// Validates `spec` and precomputes the fast-path tables.
    pub fn build(spec: SwitchSpec, generation: u64) -> Result<Snapshot, SpecError> {
        if !(68..=65000).contains(&spec.mtu) {
            return Err(SpecError::BadMtu(spec.mtu));
        }
        let mut ports: Vec<Option<PortState>> = (0..MAX_PORTS).map(|_| None).collect();
        for p in &spec.ports {
            let idx = usize::from(p.id.0);
            if idx >= MAX_PORTS {
                return Err(SpecError::PortIdOutOfRange {
                    name: p.name.clone(),
                    id: p.id.0,
                });
            }
            match &p.vlan {
                VlanMode::Access(v) => check_vid(&p.name, *v)?,
                VlanMode::Trunk { native, .. } | VlanMode::GuestTagging { native } => {
                    if let Some(n) = native {
                        check_vid(&p.name, *n)?;
                    }
                }
            }
            if let Some(existing) = &ports[idx] {
                return Err(SpecError::DuplicatePortId {
                    first: existing.spec.name.clone(),
                    second: p.name.clone(),
                    id: p.id.0,
                });
            }
            ports[idx] = Some(PortState {
                spec: p.clone(),
                is_uplink: p.role == PortRole::Uplink,
            });
        }
        let mut vlans = vec![VlanMembers::default(); 4096];
        for st in ports.iter().flatten() {
            let members = st.spec.vlan.members();
            for vid in members.iter() {
                let m = &mut vlans[usize::from(vid)];
                m.ports.push((st.spec.id, st.is_uplink));
                if st.spec.vlan.egress(vid) == Some(crate::vlan::Egress::Untagged) {
                    m.untagged_egress = true;
                }
                if st.spec.security.promiscuous {
                    m.promiscuous.push((st.spec.id, st.is_uplink));
                }
            }
        }
        let mut statics = Vec::new();
        for st in ports.iter().flatten() {
            if let Some(mac) = st.spec.mac {
                let untagged = match &st.spec.vlan {
                    VlanMode::Access(v) => Some(*v),
                    VlanMode::Trunk { native, .. } | VlanMode::GuestTagging { native } => *native,
                };
                if let Some(vid) = untagged {
                    statics.push((mac_key(vid, mac), st.spec.id));
                }
            }
        }
        for s in &spec.static_macs {
            let bad = |why| SpecError::BadStatic {
                mac: s.mac,
                vid: s.vid,
                why,
            };
            if !(1..=VLAN_MAX).contains(&s.vid) {
                return Err(bad("not a VLAN ID (1-4094)"));
            }
            if s.mac.is_multicast() {
                return Err(bad("a multicast address cannot be a static entry"));
            }
            match ports.get(usize::from(s.port.0)).and_then(Option::as_ref) {
                None => return Err(bad("no such port")),
                Some(st) if !st.spec.vlan.is_member(s.vid) => {
                    return Err(bad("the port is not in that VLAN"));
                }
                Some(_) => statics.push((mac_key(s.vid, s.mac), s.port)),
            }
        }
        Ok(Snapshot {
            generation,
            ports,
            vlans,
            mtu: spec.mtu,
            mac_table: spec.mac_table,
            statics,
            spec,
        })
    }

    /// The spec this snapshot was built from.
    pub fn spec(&self) -> &SwitchSpec {
        &self.spec
    }

    /// Its generation number (1 for the first, +1 per update).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    #[inline]
    pub(crate) fn port(&self, id: PortId) -> Option<&PortState> {
        self.ports.get(usize::from(id.0)).and_then(Option::as_ref)
    }

    /// The spec of a port.
    pub fn port_spec(&self, id: PortId) -> Option<&PortSpec> {
        self.port(id).map(|p| &p.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::guest as port;
    use crate::vlan::VlanSet;

    #[test]
    fn rejects_bad_specs() {
        let dup = SwitchSpec {
            ports: vec![port(1, VlanMode::Access(1)), port(1, VlanMode::Access(2))],
            ..Default::default()
        };
        assert!(matches!(
            Snapshot::build(dup, 1),
            Err(SpecError::DuplicatePortId { .. })
        ));
        let vlan0 = SwitchSpec {
            ports: vec![port(1, VlanMode::Access(0))],
            ..Default::default()
        };
        assert_eq!(
            Snapshot::build(vlan0, 1).err().map(|e| e.to_string()),
            Some("port p1: 0 is not a VLAN ID (1-4094)".to_string())
        );
        let far = SwitchSpec {
            ports: vec![port(5000, VlanMode::Access(1))],
            ..Default::default()
        };
        assert!(Snapshot::build(far, 1).is_err());
        let st = SwitchSpec {
            ports: vec![port(1, VlanMode::Access(10))],
            static_macs: vec![StaticMac {
                vid: 20,
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                port: PortId(1),
            }],
            ..Default::default()
        };
        assert!(matches!(
            Snapshot::build(st, 1),
            Err(SpecError::BadStatic { .. })
        ));
    }

    #[test]
    fn flood_lists_follow_membership() {
        let mut up = port(
            9,
            VlanMode::Trunk {
                allowed: VlanSet::from_ranges(&[(10, 20)]),
                native: None,
            },
        );
        up.role = PortRole::Uplink;
        let spec = SwitchSpec {
            ports: vec![
                port(1, VlanMode::Access(10)),
                port(2, VlanMode::Access(30)),
                up,
            ],
            ..Default::default()
        };
        let s = Snapshot::build(spec, 1).expect("valid");
        assert_eq!(
            s.vlans[10].ports,
            vec![(PortId(1), false), (PortId(9), true)]
        );
        assert_eq!(s.vlans[30].ports, vec![(PortId(2), false)]);
        assert_eq!(s.vlans[15].ports, vec![(PortId(9), true)]);
    }
}
