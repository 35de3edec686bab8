//! The read-only views of a team: [`MemberStatus`] and the team's
//! `Display` (`vswitchctl team show`), and `explain` (which member a
//! guest's or a frame's traffic uses, and why).

use std::fmt;

use crate::beacon::BeaconVerdict;
use crate::explain::{Condition, Explanation, MemberNote, Reason, Subject};
use crate::flow::HashBasis;
use crate::{
    BUCKETS, Bucket, GuestPort, MacAddr, MemberIndex, TeamPolicy, Timestamp, parse_flow_key,
};

use super::{Role, Team, idx};

/// A member as `vswitchctl team show` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// Index.
    pub index: MemberIndex,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Link (carrier) state.
    pub link_up: bool,
    /// Time of the last link change (or of team creation).
    pub link_since: Timestamp,
    /// Beacon verdict and since when, if the member is probed.
    pub beacon: Option<(BeaconVerdict, Timestamp)>,
    /// Whether it may carry traffic.
    pub usable: bool,
    /// The slot it holds (balancing policies).
    pub slot: Option<usize>,
    /// How many of the 256 buckets it carries.
    pub buckets: usize,
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = if self.link_up { "up" } else { "down" };
        write!(
            f,
            "{} ({}): link {link} since {}",
            self.name, self.role, self.link_since
        )?;
        if let Some((v, since)) = self.beacon {
            write!(f, ", beacon {v} since {since}")?;
        }
        write!(f, ", carries {}/{BUCKETS} buckets", self.buckets)?;
        match self.slot {
            Some(s) => write!(f, " (slot {s})"),
            None => Ok(()),
        }
    }
}

impl Team {
    /// The state of `member`.
    pub fn status(&self, member: MemberIndex) -> Option<MemberStatus> {
        let i = member.get();
        let m = self.members.get(i)?;
        let table = self.selector.table();
        Some(MemberStatus {
            index: member,
            name: m.name.clone(),
            role: m.role,
            link_up: m.link_up,
            link_since: m.link_since,
            beacon: self.beacons.as_ref().and_then(|b| b.verdict(member)),
            usable: self.usable(i),
            slot: self.holders.iter().position(|h| *h == Some(member)),
            buckets: table.iter().filter(|&&t| usize::from(t) == i).count(),
        })
    }

    /// Every member's state, in member order.
    pub fn members(&self) -> impl Iterator<Item = MemberStatus> + '_ {
        (0..self.members.len()).filter_map(|i| self.status(idx(i)))
    }

    // ---- explain -------------------------------------------------------

    /// Which member a guest's traffic uses and why. Under `port-id`,
    /// `src-mac` and `explicit-failover` that is one member; under the
    /// aggregated policies it depends on the flow (use
    /// [`explain_frame`](Team::explain_frame)).
    pub fn explain_guest(&self, port: GuestPort, mac: &MacAddr) -> Explanation {
        let subject = Subject::Guest { port, mac: *mac };
        if self.policy.is_aggregated() {
            return Explanation {
                subject,
                policy: self.policy,
                bucket: None,
                member: None,
                reason: Reason::PerFlow,
                last_move: None,
            };
        }
        self.explain_bucket(subject, self.guest_bucket(port, mac))
    }

    /// Which member a frame sent by guest `port` leaves on, and why.
    pub fn explain_frame(&self, port: GuestPort, frame: &[u8]) -> Explanation {
        let basis = HashBasis::of(self.policy, port, &parse_flow_key(frame));
        self.explain_bucket(Subject::Frame { port, basis }, basis.bucket())
    }

    fn note(&self, i: usize) -> MemberNote {
        let m = &self.members[i];
        let beacon = self.beacons.as_ref().and_then(|b| b.verdict(idx(i)));
        let (condition, since) = if !m.link_up {
            (Condition::LinkDown, m.link_since)
        } else if let Some((BeaconVerdict::Failed, t)) = beacon {
            (Condition::BeaconFailed, t)
        } else {
            let since = beacon.map_or(m.link_since, |(_, t)| t.max(m.link_since));
            (Condition::Up, since)
        };
        MemberNote {
            name: m.name.clone(),
            condition,
            since,
        }
    }

    fn explain_bucket(&self, subject: Subject, bucket: Bucket) -> Explanation {
        let b = usize::from(bucket.0);
        let member = self
            .selector
            .member_for_bucket(bucket)
            .map(|m| (m, self.members[m.get()].name.clone()));
        let reason = match member {
            None => Reason::NoUsableMember {
                members: (0..self.members.len())
                    .filter(|&i| self.members[i].role != Role::Unused)
                    .map(|i| self.note(i))
                    .collect(),
            },
            Some((m, _)) if self.policy == TeamPolicy::ExplicitFailover => Reason::FailoverOrder {
                ahead: (0..m.get()).map(|i| self.note(i)).collect(),
            },
            Some((m, _)) => {
                let route = self.route(b);
                let slots = self.holders.len();
                if route.via == Some(route.home) && m.get() == route.home {
                    Reason::Home {
                        slot: route.home,
                        slots,
                    }
                } else if route.via == Some(route.home) {
                    Reason::StandIn {
                        slot: route.home,
                        slots,
                        home: self.note(route.home),
                        holder_role: self.members[m.get()].role,
                    }
                } else {
                    Reason::Spread {
                        slot: route.home,
                        slots,
                        home: self.note(route.home),
                        via_slot: route.via.unwrap_or(route.home),
                    }
                }
            }
        };
        Explanation {
            subject,
            policy: self.policy,
            bucket: Some(bucket),
            member,
            reason,
            last_move: self.last_move[b],
        }
    }
}

impl fmt::Display for Team {
    /// `vswitchctl team show`: the policy and settings, then one line per
    /// member.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {} (physical switch: {}), failback {}",
            self.policy,
            self.policy.switch_requirement(),
            if self.failback { "on" } else { "off" }
        )?;
        match &self.beacons {
            Some(b) => {
                let c = b.config();
                writeln!(
                    f,
                    ", beacon probing every {:?}, failed after {} missed",
                    c.interval, c.miss_limit
                )?;
            }
            None => writeln!(f, ", link state only")?,
        }
        for m in self.members() {
            writeln!(f, "  {m}")?;
        }
        Ok(())
    }
}
