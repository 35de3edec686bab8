//! A configured team as the `teaming` crate's [`TeamSpec`].

use teaming::{BeaconConfig, TeamSpec};

/// The translation of a configured policy.
pub fn policy(p: config::TeamPolicy) -> teaming::TeamPolicy {
    match p {
        config::TeamPolicy::PortId => teaming::TeamPolicy::PortId,
        config::TeamPolicy::IpHash => teaming::TeamPolicy::IpHash,
        config::TeamPolicy::SrcMac => teaming::TeamPolicy::SrcMac,
        config::TeamPolicy::ExplicitFailover => teaming::TeamPolicy::ExplicitFailover,
        config::TeamPolicy::L4Hash => teaming::TeamPolicy::L4Hash,
    }
}

/// A beacon team ID unique on the layer-2 domain: FNV-1a of this host's
/// machine ID (or host name) and the team's switch and name.
pub fn beacon_team_id(switch: &str, team: &str) -> u64 {
    let host = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in host
        .trim()
        .bytes()
        .chain([0])
        .chain(switch.bytes())
        .chain([0])
        .chain(team.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The teaming spec of a configured team.
pub fn team_spec(switch: &str, t: &config::Team) -> TeamSpec {
    let mut spec = TeamSpec::new(policy(t.policy), t.active.iter().cloned())
        .with_standby(t.standby.iter().cloned())
        .with_unused(t.unused.iter().cloned())
        .with_failback(t.failback);
    if t.failure_detection == config::FailureDetection::Beacon {
        spec = spec.with_beacon(BeaconConfig::new(beacon_team_id(switch, &t.name)));
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacon_team_ids_differ_per_team() {
        assert_ne!(beacon_team_id("sw0", "a"), beacon_team_id("sw0", "b"));
        assert_ne!(beacon_team_id("sw0", "ab"), beacon_team_id("sw0a", "b"));
    }
}
