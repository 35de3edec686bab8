//! Test helpers shared by the team supervisor's unit tests: a fake
//! kernel, a team configuration, a runtime and MAC table rows.

use std::collections::BTreeMap;

use dataplane::PortId;
use dataplane::mac_table::MacTableRow;
use dataplane::port::team::TeamShared;
use teaming::{Team, Timestamp};

use super::{TeamIo, TeamRuntime, team_spec};

#[derive(Default)]
pub(super) struct FakeIo {
    pub(super) links: BTreeMap<String, bool>,
    pub(super) sent: Vec<(String, Vec<u8>)>,
}

impl TeamIo for FakeIo {
    fn link_up(&mut self, name: &str) -> Option<bool> {
        self.links.get(name).copied()
    }
    fn send(&mut self, name: &str, frame: &[u8]) -> std::io::Result<()> {
        self.sent.push((name.to_string(), frame.to_vec()));
        Ok(())
    }
}

pub(super) fn cfg(policy: config::TeamPolicy, notify: bool, failback: bool) -> config::Team {
    config::Team {
        name: "bond0".into(),
        policy,
        active: vec!["eth0".into(), "eth1".into()],
        standby: vec![],
        unused: vec![],
        failback,
        failure_detection: config::FailureDetection::Link,
        notify_switches: notify,
        port_group: None,
        vlan: config::VlanMode::uplink_default(),
    }
}

pub(super) fn runtime(c: &config::Team) -> TeamRuntime {
    let team = Team::new(team_spec("sw0", c), Timestamp::ZERO).expect("valid");
    let members: Vec<String> = c.members().map(str::to_string).collect();
    let (shared, beacons) = TeamShared::new(&c.name, members.clone(), *team.selector());
    TeamRuntime::new(
        "sw0",
        c,
        PortId(9),
        team,
        shared,
        beacons,
        vec![true; members.len()],
        vec![dataplane::MacAddr([2, 0, 0, 0, 0, 1]); members.len()],
        dataplane::VlanMode::Trunk {
            allowed: dataplane::VlanSet::from_ranges(&[(1, 4094)]),
            native: Some(1),
        },
    )
}

pub(super) fn row(vid: u16, last: u8, port: u16) -> MacTableRow {
    MacTableRow {
        vid,
        mac: dataplane::MacAddr([0x52, 0x54, 0, 0, 0, last]),
        port: PortId(port),
        is_static: false,
        age_secs: 0,
        ipv4: None,
    }
}
