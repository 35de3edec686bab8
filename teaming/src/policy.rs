//! The load-balancing policies and what each asks of the physical switch.

use std::fmt;
use std::str::FromStr;

/// How a team spreads guest traffic over its members.
///
/// The first four are VMware's ("route based on ..."); `L4Hash` is the
/// Linux bonding `layer3+4` idea as an extra.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TeamPolicy {
    /// Route based on originating virtual port ID: each guest port is pinned
    /// to one member (port `p` lands on active slot `p % slots` while its
    /// member is up). Each guest MAC appears on one physical switch port, so
    /// the physical switch needs **no configuration**.
    PortId,
    /// Route based on IP hash: IPv4 or IPv6 source + destination address
    /// (symmetric: both directions of a pair hash alike); non-IP frames fall
    /// back to the source + destination MAC hash. One guest MAC is seen on
    /// several links, so the physical switch **must** bundle the members in a
    /// static EtherChannel / static 802.3ad (mode "on", no LACP), or it will
    /// see MAC flaps. Use no standby members and no beacon probing with it.
    IpHash,
    /// Route based on source MAC hash: each guest MAC sticks to one member.
    /// No physical switch configuration needed.
    SrcMac,
    /// Use explicit failover order: all traffic on the first usable member
    /// of the active list, then of the standby list. No load balancing and no
    /// physical switch configuration.
    ExplicitFailover,
    /// 5-tuple hash (protocol, addresses, ports) for TCP and UDP over IPv4
    /// and IPv6; other IP traffic (and IPv4 fragments) falls back to the IP
    /// hash, non-IP to the MAC hash. Needs an EtherChannel like `IpHash`.
    L4Hash,
}

impl TeamPolicy {
    /// Every policy, in the order of the docs.
    pub const ALL: [TeamPolicy; 5] = [
        TeamPolicy::PortId,
        TeamPolicy::IpHash,
        TeamPolicy::SrcMac,
        TeamPolicy::ExplicitFailover,
        TeamPolicy::L4Hash,
    ];

    /// Whether one guest MAC is sent on several members at once, so the
    /// physical switch must treat the members as one aggregated link
    /// (EtherChannel). True for `IpHash` and `L4Hash`.
    pub const fn is_aggregated(self) -> bool {
        matches!(self, TeamPolicy::IpHash | TeamPolicy::L4Hash)
    }

    /// Whether the member choice depends on the frame's contents (so the
    /// fast path must parse headers).
    pub const fn reads_frame(self) -> bool {
        matches!(
            self,
            TeamPolicy::IpHash | TeamPolicy::L4Hash | TeamPolicy::SrcMac
        )
    }

    /// What the physical switch ports facing the members need, in one line
    /// (for `vswitchctl team show` and the docs).
    pub const fn switch_requirement(self) -> &'static str {
        if self.is_aggregated() {
            "static EtherChannel / 802.3ad mode on over all members"
        } else {
            "none (independent access or trunk ports)"
        }
    }
}

impl fmt::Display for TeamPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TeamPolicy::PortId => "port-id",
            TeamPolicy::IpHash => "ip-hash",
            TeamPolicy::SrcMac => "src-mac",
            TeamPolicy::ExplicitFailover => "explicit-failover",
            TeamPolicy::L4Hash => "l4-hash",
        })
    }
}

/// A policy name that is not one of [`TeamPolicy`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Unknown team policy {0:?} (expected port-id, ip-hash, src-mac, explicit-failover or l4-hash)"
)]
pub struct UnknownPolicy(pub String);

impl FromStr for TeamPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TeamPolicy::ALL
            .into_iter()
            .find(|p| p.to_string() == s)
            .ok_or_else(|| UnknownPolicy(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in TeamPolicy::ALL {
            assert_eq!(p.to_string().parse::<TeamPolicy>(), Ok(p));
        }
        assert!("round-robin".parse::<TeamPolicy>().is_err());
    }

    #[test]
    fn aggregation() {
        let aggregated: Vec<_> = TeamPolicy::ALL
            .into_iter()
            .filter(|p| p.is_aggregated())
            .collect();
        assert_eq!(aggregated, [TeamPolicy::IpHash, TeamPolicy::L4Hash]);
    }
}
