//! Receive-side rules: which frames arriving on a member reach the guests.
//!
//! Never forwarding uplink to uplink is the dataplane's flood rule; these
//! are the two team-specific checks that come before it.

use crate::{MacAddr, MemberIndex, Role, TeamPolicy};

/// Kind of destination address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// One station (also what a runt shorter than 6 bytes counts as).
    Unicast,
    /// A group address other than broadcast.
    Multicast,
    /// ff:ff:ff:ff:ff:ff.
    Broadcast,
}

impl FrameKind {
    /// Kind of the destination MAC `dst`.
    #[inline]
    pub fn of_dst(dst: &MacAddr) -> FrameKind {
        if dst.is_broadcast() {
            FrameKind::Broadcast
        } else if dst.is_multicast() {
            FrameKind::Multicast
        } else {
            FrameKind::Unicast
        }
    }

    /// Kind of the frame's destination MAC.
    #[inline]
    pub fn of_frame(frame: &[u8]) -> FrameKind {
        match MacAddr::from_bytes(frame) {
            Some(dst) => FrameKind::of_dst(&dst),
            None => FrameKind::Unicast,
        }
    }
}

/// Whether a frame of `kind` that arrived on `member` (with `role`) goes on
/// to the guests.
///
/// - Unused members deliver nothing: they are not part of the team.
/// - Unicast is accepted on every other member: during a failover the
///   physical switch may still send a guest's frames to its old member.
/// - Broadcast and multicast: with the aggregated policies (`ip-hash`,
///   `l4-hash`) the EtherChannel already delivers each flooded frame on
///   exactly one member, so every member accepts. With the others
///   (`port-id`, `src-mac`, `explicit-failover`) the physical switch floods
///   a copy to *every* member, so only `designated` accepts and guests see
///   each broadcast once. [`Team`](crate::Team) designates the first member
///   in configured order (active list, then standby list) that currently
///   carries traffic; for explicit failover that is the member in use.
#[inline]
pub fn accept_on_member(
    policy: TeamPolicy,
    role: Role,
    member: MemberIndex,
    kind: FrameKind,
    designated: Option<MemberIndex>,
) -> bool {
    if role == Role::Unused {
        return false;
    }
    kind == FrameKind::Unicast || policy.is_aggregated() || designated == Some(member)
}

/// Whether a frame arriving on an uplink with source `src_mac` is one of our
/// own guests' frames coming back (a reflection from the physical network,
/// e.g. a broadcast flooded out of member 1 and back in on member 2). Such
/// frames are dropped: delivering them would make the MAC table learn a
/// local guest on the uplink. The dataplane can equally ask its MAC table
/// whether `src_mac` is learned on a local guest port; the rule is the
/// same. (A guest that migrated away must be removed from the local set,
/// or its frames from its new host are dropped too.)
pub fn is_reflection(src_mac: &MacAddr, local_guest_macs: &[MacAddr]) -> bool {
    local_guest_macs.contains(src_mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M0: MemberIndex = MemberIndex(0);
    const M1: MemberIndex = MemberIndex(1);

    #[test]
    fn frame_kinds() {
        assert_eq!(FrameKind::of_dst(&MacAddr([0xff; 6])), FrameKind::Broadcast);
        assert_eq!(
            FrameKind::of_dst(&MacAddr([0x01, 0, 0x5e, 0, 0, 1])),
            FrameKind::Multicast
        );
        assert_eq!(
            FrameKind::of_dst(&MacAddr([0x33, 0x33, 0, 0, 0, 1])),
            FrameKind::Multicast
        );
        assert_eq!(
            FrameKind::of_dst(&MacAddr([0x52, 0x54, 0, 0, 0, 1])),
            FrameKind::Unicast
        );
        assert_eq!(FrameKind::of_frame(&[0xff; 3]), FrameKind::Unicast);
        assert_eq!(FrameKind::of_frame(&[0xff; 60]), FrameKind::Broadcast);
    }

    #[test]
    fn accept_table() {
        use FrameKind::*;
        use TeamPolicy::*;
        // (policy, role, member, kind, designated) -> accept
        let cases = [
            (PortId, Role::Active, M0, Broadcast, Some(M0), true),
            (PortId, Role::Active, M1, Broadcast, Some(M0), false),
            (PortId, Role::Active, M1, Multicast, Some(M0), false),
            (PortId, Role::Active, M1, Unicast, Some(M0), true),
            (SrcMac, Role::Active, M1, Broadcast, Some(M0), false),
            (
                ExplicitFailover,
                Role::Standby,
                M1,
                Broadcast,
                Some(M1),
                true,
            ),
            (
                ExplicitFailover,
                Role::Active,
                M0,
                Broadcast,
                Some(M1),
                false,
            ),
            (PortId, Role::Active, M0, Broadcast, None, false),
            (IpHash, Role::Active, M1, Broadcast, Some(M0), true),
            (L4Hash, Role::Standby, M1, Multicast, None, true),
            (IpHash, Role::Unused, M1, Unicast, Some(M0), false),
            (PortId, Role::Unused, M0, Broadcast, Some(M0), false),
        ];
        for (policy, role, member, kind, designated, want) in cases {
            assert_eq!(
                accept_on_member(policy, role, member, kind, designated),
                want,
                "{policy} {role} {member} {kind:?} designated {designated:?}"
            );
        }
    }

    #[test]
    fn reflections() {
        let local = [
            MacAddr([0x52, 0x54, 0, 0, 0, 1]),
            MacAddr([0x52, 0x54, 0, 0, 0, 2]),
        ];
        assert!(is_reflection(&MacAddr([0x52, 0x54, 0, 0, 0, 2]), &local));
        assert!(!is_reflection(&MacAddr([0x52, 0x54, 0, 0, 0, 3]), &local));
        assert!(!is_reflection(&MacAddr([0x52, 0x54, 0, 0, 0, 1]), &[]));
    }
}
