//! From the YAML model to the dataplane's specs. `config` types stop here:
//! the dataplane never sees them, so the file format can change without
//! touching the fast path.

use std::collections::BTreeMap;

use dataplane::snapshot::MAX_PORTS;
use dataplane::{MacAddr, MacTableSpec, PortId, PortRole, PortSpec, SecurityPolicy, SwitchSpec};

/// Stable port IDs by name: a port keeps its ID across reloads, so
/// counters and port-ID teaming do not reshuffle.
#[derive(Debug, Default, Clone)]
pub struct PortIds {
    by_name: BTreeMap<String, PortId>,
}

/// Why a configuration cannot be turned into dataplane specs.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// More ports than the fast path's arrays hold.
    #[error("switch {switch}: more than {MAX_PORTS} ports")]
    TooManyPorts {
        /// Switch name.
        switch: String,
    },
}

impl PortIds {
    /// The ID of `name`, allocating the lowest free one the first time.
    pub fn get_or_assign(&mut self, name: &str) -> Option<PortId> {
        if let Some(id) = self.by_name.get(name) {
            return Some(*id);
        }
        let used: std::collections::BTreeSet<u16> = self.by_name.values().map(|p| p.0).collect();
        let free = (0..MAX_PORTS as u16).find(|i| !used.contains(i))?;
        self.by_name.insert(name.to_string(), PortId(free));
        Some(PortId(free))
    }

    /// The ID of a known port.
    pub fn get(&self, name: &str) -> Option<PortId> {
        self.by_name.get(name).copied()
    }
}

/// The dataplane's form of a configured VLAN mode.
pub fn vlan_mode(m: &config::VlanMode) -> dataplane::VlanMode {
    match m {
        config::VlanMode::Access(v) => dataplane::VlanMode::Access(v.get()),
        config::VlanMode::Trunk { allowed, native } => {
            let ranges: Vec<(u16, u16)> =
                allowed.ranges().map(|(a, b)| (a.get(), b.get())).collect();
            dataplane::VlanMode::Trunk {
                allowed: dataplane::VlanSet::from_ranges(&ranges),
                native: native.map(|v| v.get()),
            }
        }
        config::VlanMode::GuestTagging => dataplane::VlanMode::GuestTagging {
            native: m.native().map(config::VlanId::get),
        },
    }
}

fn security(s: &config::SecurityPolicy) -> SecurityPolicy {
    SecurityPolicy {
        promiscuous: s.promiscuous.accepts(),
        mac_changes: s.mac_changes.accepts(),
        forged_transmits: s.forged_transmits.accepts(),
    }
}

/// The dataplane spec of one configured switch. Ports and uplinks get
/// stable IDs from `ids`.
pub fn switch_spec(sw: &config::Switch, ids: &mut PortIds) -> Result<SwitchSpec, TranslateError> {
    let too_many = || TranslateError::TooManyPorts {
        switch: sw.name.clone(),
    };
    let mut ports = Vec::new();
    for p in &sw.ports {
        let id = ids.get_or_assign(&p.name).ok_or_else(too_many)?;
        ports.push(PortSpec {
            id,
            name: p.name.clone(),
            role: match p.kind {
                config::PortKind::Internal => PortRole::Internal,
                config::PortKind::VhostUser { .. } => PortRole::Guest,
            },
            vlan: vlan_mode(&p.vlan),
            security: security(&p.security),
            mac: p.mac.map(|m| MacAddr(m.0)),
        });
    }
    // Uplinks carry many hosts' MACs: no per-MAC policy applies.
    let uplink_security = SecurityPolicy {
        promiscuous: false,
        mac_changes: true,
        forged_transmits: true,
    };
    // An uplink in a team is not a port of its own: the team is.
    for u in sw.uplinks.iter().filter(|u| sw.team_of(&u.name).is_none()) {
        let id = ids.get_or_assign(&u.name).ok_or_else(too_many)?;
        ports.push(PortSpec {
            id,
            name: u.name.clone(),
            role: PortRole::Uplink,
            vlan: vlan_mode(&u.vlan),
            security: uplink_security,
            mac: None,
        });
    }
    for t in &sw.teams {
        let id = ids.get_or_assign(&t.name).ok_or_else(too_many)?;
        ports.push(PortSpec {
            id,
            name: t.name.clone(),
            role: PortRole::Uplink,
            vlan: vlan_mode(&t.vlan),
            security: uplink_security,
            mac: None,
        });
    }
    Ok(SwitchSpec {
        ports,
        mtu: usize::from(sw.mtu),
        mac_table: MacTableSpec {
            max_entries: sw.mac_table.max_entries as usize,
            per_port_limit: sw.mac_table.per_port_limit,
            aging_secs: sw.mac_table.aging_seconds,
        },
        static_macs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
switches:
  - name: sw0
    mtu: 9000
    port-groups:
      - name: web
        vlan: 10
      - name: vgt
        vlan: all
        security: { forged-transmits: accept }
      - name: trunk
        vlan: { trunk: [10, 20-22], native: 5 }
    ports:
      - name: vm0
        port-group: web
        mac: 52:54:00:00:00:01
      - name: vm1
        port-group: vgt
    uplinks:
      - name: eth0
        port-group: trunk
"#;

    #[test]
    fn translates_ports_vlans_and_security() {
        let cfg = config::parse_str(YAML, "t.yaml").expect("valid yaml");
        let mut ids = PortIds::default();
        let spec = switch_spec(&cfg.switches[0], &mut ids).expect("translates");
        assert_eq!(spec.mtu, 9000);
        let vm0 = &spec.ports[0];
        assert_eq!((vm0.id, vm0.role), (PortId(0), PortRole::Guest));
        assert_eq!(vm0.vlan, dataplane::VlanMode::Access(10));
        assert_eq!(vm0.mac, Some(MacAddr([0x52, 0x54, 0, 0, 0, 1])));
        assert!(!vm0.security.forged_transmits);
        let vm1 = &spec.ports[1];
        assert_eq!(
            vm1.vlan,
            dataplane::VlanMode::GuestTagging { native: Some(1) }
        );
        assert!(vm1.security.forged_transmits);
        let eth0 = &spec.ports[2];
        assert_eq!(eth0.role, PortRole::Uplink);
        match &eth0.vlan {
            dataplane::VlanMode::Trunk { allowed, native } => {
                // The config carries the native VLAN in the allowed set.
                assert_eq!(allowed.to_ranges_string(), "5,10,20-22");
                assert_eq!(*native, Some(5));
            }
            other => panic!("uplink should be a trunk, got {other:?}"),
        }
        // The spec is valid for the dataplane.
        dataplane::snapshot::Snapshot::build(spec, 1).expect("dataplane accepts it");
    }

    #[test]
    fn ids_are_stable_across_reloads() {
        let mut ids = PortIds::default();
        assert_eq!(ids.get_or_assign("a"), Some(PortId(0)));
        assert_eq!(ids.get_or_assign("b"), Some(PortId(1)));
        assert_eq!(ids.get_or_assign("a"), Some(PortId(0)));
        assert_eq!(ids.get("b"), Some(PortId(1)));
    }

    #[test]
    fn default_config_translates() {
        let cfg = config::default_config(std::path::Path::new("/run/vswitch")).expect("valid");
        let mut ids = PortIds::default();
        let spec = switch_spec(&cfg.switches[0], &mut ids).expect("translates");
        let names: Vec<&str> = spec.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["vhost0", "vhost1"]);
        assert!(
            spec.ports
                .iter()
                .all(|p| p.vlan == dataplane::VlanMode::Access(1))
        );
    }
}
