//! `vswitchctl team explain`: which member a guest or a frame uses, and why,
//! in engineer words.

use std::fmt;

use crate::flow::HashBasis;
use crate::{Bucket, GuestPort, MacAddr, MemberIndex, Role, TeamPolicy, Timestamp};

/// What was asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A guest (port and MAC).
    Guest {
        /// Guest port.
        port: GuestPort,
        /// Guest MAC.
        mac: MacAddr,
    },
    /// A frame sent by a guest, with what the policy hashed of it.
    Frame {
        /// Sending guest port.
        port: GuestPort,
        /// The hash input.
        basis: HashBasis,
    },
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Guest { port, mac } => write!(f, "guest port {} ({mac})", port.0),
            Subject::Frame {
                port,
                basis: HashBasis::GuestPort(_) | HashBasis::FailoverOrder,
            } => write!(f, "guest port {}", port.0),
            Subject::Frame { port, basis } => write!(f, "guest port {}, {basis}", port.0),
        }
    }
}

/// A member's condition, as far as carrying traffic goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// No carrier.
    LinkDown,
    /// Link up, but beacon probing judged it failed.
    BeaconFailed,
    /// Usable.
    Up,
}

/// A member named in an explanation, with its condition and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberNote {
    /// Member name.
    pub name: String,
    /// Condition.
    pub condition: Condition,
    /// Since when.
    pub since: Timestamp,
}

impl fmt::Display for MemberNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.condition {
            Condition::LinkDown => "link down",
            Condition::BeaconFailed => "beacon failed",
            Condition::Up => "up",
        };
        write!(f, "{} {what} since {}", self.name, self.since)
    }
}

/// Why a bucket is on its member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// On its home slot's own active member.
    Home {
        /// Home slot.
        slot: usize,
        /// Number of slots (active members).
        slots: usize,
    },
    /// Its home slot is held by another member standing in for the home
    /// member (which is down, or up again with failback off).
    StandIn {
        /// Home slot.
        slot: usize,
        /// Number of slots.
        slots: usize,
        /// The slot's own member.
        home: MemberNote,
        /// Role of the member standing in.
        holder_role: Role,
    },
    /// Its home slot has no holder (no member was free to stand in), so the
    /// bucket takes its next choice of slot.
    Spread {
        /// Home slot.
        slot: usize,
        /// Number of slots.
        slots: usize,
        /// The slot's own member.
        home: MemberNote,
        /// The slot used instead.
        via_slot: usize,
    },
    /// `explicit-failover`: the members ahead of the chosen one in failover
    /// order.
    FailoverOrder {
        /// Members ahead in order (empty: it is the first).
        ahead: Vec<MemberNote>,
    },
    /// Nothing is usable.
    NoUsableMember {
        /// Every active and standby member.
        members: Vec<MemberNote>,
    },
    /// Aggregated policy asked about a guest: the member depends on the flow.
    PerFlow,
}

/// The answer to `vswitchctl team explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// What was asked about.
    pub subject: Subject,
    /// The team's policy.
    pub policy: TeamPolicy,
    /// The bucket (none for [`Reason::PerFlow`]).
    pub bucket: Option<Bucket>,
    /// The member chosen, with its name; `None`: dropped.
    pub member: Option<(MemberIndex, String)>,
    /// Why.
    pub reason: Reason,
    /// When the bucket last changed member.
    pub last_move: Option<Timestamp>,
}

fn list(f: &mut fmt::Formatter<'_>, notes: &[MemberNote]) -> fmt::Result {
    for (i, n) in notes.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for Explanation {
    /// For example `guest port 7 (52:54:00:00:00:07) -> eth2 (port-id: bucket
    /// 7 -> slot 1 of 2, home eth1 link down since t=12s, standby eth2
    /// stands in); last moved t=12s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let member = match (&self.member, &self.reason) {
            (Some((_, name)), _) => name.as_str(),
            (None, Reason::PerFlow) => "several members",
            (None, _) => "no member",
        };
        write!(f, "{} -> {member} ({}: ", self.subject, self.policy)?;
        if let Subject::Frame { basis, .. } = &self.subject {
            match (self.policy, basis) {
                (TeamPolicy::IpHash | TeamPolicy::L4Hash, HashBasis::MacPair { .. }) => {
                    f.write_str("non-IP, MAC hash; ")?
                }
                (TeamPolicy::L4Hash, HashBasis::Ip(_)) => {
                    f.write_str("no TCP/UDP ports, IP hash; ")?
                }
                _ => {}
            }
        }
        let bucket = self.bucket.map(|b| b.0).unwrap_or_default();
        let by_slot = self.policy != TeamPolicy::ExplicitFailover;
        match &self.reason {
            Reason::Home { slot, slots } => {
                write!(f, "bucket {bucket} -> slot {slot} of {slots}, home member")?
            }
            Reason::StandIn {
                slot,
                slots,
                home,
                holder_role,
            } => {
                write!(f, "bucket {bucket} -> slot {slot} of {slots}, home {home}")?;
                if home.condition == Condition::Up {
                    f.write_str(" but failback is off")?;
                }
                write!(f, ", {holder_role} {member} stands in")?;
            }
            Reason::Spread {
                slot,
                slots,
                home,
                via_slot,
            } => {
                write!(f, "bucket {bucket} -> slot {slot} of {slots}, home {home}")?;
                if home.condition == Condition::Up {
                    f.write_str(" but failback is off")?;
                }
                write!(
                    f,
                    " and no member free to stand in; next choice slot {via_slot}"
                )?;
            }
            Reason::FailoverOrder { ahead } => {
                if ahead.is_empty() {
                    f.write_str("first in failover order")?;
                } else {
                    list(f, ahead)?;
                    if ahead.iter().any(|n| n.condition == Condition::Up) {
                        f.write_str("; failback is off, so it stays")?;
                    } else {
                        f.write_str("; next in failover order")?;
                    }
                }
            }
            Reason::NoUsableMember { members } => {
                if by_slot {
                    write!(f, "bucket {bucket}; ")?;
                }
                f.write_str("no usable member: ")?;
                list(f, members)?;
            }
            Reason::PerFlow => write!(
                f,
                "per flow, each {} hashes to one of 256 buckets; explain a frame",
                if self.policy == TeamPolicy::IpHash {
                    "IP pair"
                } else {
                    "5-tuple"
                }
            )?,
        }
        f.write_str(")")?;
        if let Some(t) = self.last_move {
            write!(f, "; last moved {t}")?;
        }
        Ok(())
    }
}
