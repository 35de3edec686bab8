//! Notify switches: which guests to announce on which member after
//! buckets moved or the team was reconfigured.

use crate::flow::{port_bucket, src_mac_bucket};
use crate::notify::{Announcement, GuestAddr};
use crate::{BUCKETS, Bucket, GuestPort, MacAddr, MemberIndex, TeamPolicy};

use super::{Move, Team};

impl Team {
    pub(super) fn guest_bucket(&self, port: GuestPort, mac: &MacAddr) -> Bucket {
        match self.policy {
            TeamPolicy::PortId => port_bucket(port),
            TeamPolicy::SrcMac => src_mac_bucket(mac),
            _ => Bucket(0),
        }
    }

    /// The member a guest's MAC is seen on by the physical switch: its
    /// member under `port-id`, `src-mac` and `explicit-failover`. Under the
    /// aggregated policies the guest uses every member and the switch sees
    /// one port-channel, so any member will do: the designated receiver.
    /// For announcing a guest that just (re)connected (migration assist).
    pub fn member_for_guest(&self, port: GuestPort, mac: &MacAddr) -> Option<MemberIndex> {
        if self.policy.is_aggregated() {
            self.selector.designated_receiver()
        } else {
            self.selector
                .member_for_bucket(self.guest_bucket(port, mac))
        }
    }

    /// The notify-switches plan for `moves`: each guest in `guests` whose
    /// bucket moved to a member, with that member. Empty under the
    /// aggregated policies: moves inside an EtherChannel need no
    /// relearning, the switch sees one port. Guests whose bucket lost every
    /// member are not announced (there is nowhere to send from).
    pub fn announcements(&self, moves: &[Move], guests: &[GuestAddr]) -> Vec<Announcement> {
        if self.policy.is_aggregated() {
            return Vec::new();
        }
        let mut moved_to = [None; BUCKETS];
        for mv in moves {
            moved_to[usize::from(mv.bucket.0)] = mv.to;
        }
        guests
            .iter()
            .filter_map(|g| {
                let b = self.guest_bucket(g.port, &g.mac);
                moved_to[usize::from(b.0)].map(|member| Announcement { member, guest: *g })
            })
            .collect()
    }

    /// The notify-switches plan after a reconfiguration from `old` to
    /// this team ([`reconfigured`](Team::reconfigured)): each guest in
    /// `guests` whose member, by name, is not the one it had, with its new
    /// member; every guest with a member if `old` used an aggregated
    /// policy (the physical switch saw one port-channel). Empty under the
    /// aggregated policies, as [`announcements`](Team::announcements).
    pub fn announcements_since(&self, old: &Team, guests: &[GuestAddr]) -> Vec<Announcement> {
        if self.policy.is_aggregated() {
            return Vec::new();
        }
        guests
            .iter()
            .filter_map(|g| {
                let member = self.member_for_guest(g.port, &g.mac)?;
                let was = old
                    .member_for_guest(g.port, &g.mac)
                    .and_then(|m| old.member_name(m));
                let moved = old.policy.is_aggregated() || was != self.member_name(member);
                moved.then_some(Announcement { member, guest: *g })
            })
            .collect()
    }
}
