//! Uplink teams: load-balancing policies, failure detection and failover.
//!
//! Pure logic: no I/O, no threads, no clock. Time comes in as a
//! [`Timestamp`] parameter, frames come in as byte slices and go out as
//! values ("send these beacons", "announce this guest on that member"), so
//! every behaviour is testable without root. The dataplane and `vswitchd`
//! do the sending.
//!
//! # Policies ([`TeamPolicy`])
//!
//! | policy | member chosen by | physical switch needs |
//! |---|---|---|
//! | `port-id` | originating guest port: each guest pinned to one member | nothing |
//! | `src-mac` | source MAC hash: each guest MAC pinned to one member | nothing |
//! | `explicit-failover` | first usable member in order, no balancing | nothing |
//! | `ip-hash` | IPv4/IPv6 source + destination hash; non-IP: MAC hash | static EtherChannel (802.3ad mode on) |
//! | `l4-hash` | TCP/UDP 5-tuple; other IP: IP hash; non-IP: MAC hash | static EtherChannel |
//!
//! VMware's IP hash needs an EtherChannel because one guest MAC leaves on
//! several links: without one the physical switch sees the MAC flap
//! between ports. The same holds for `l4-hash`. Do not combine them with
//! standby members or beacon probing ([`Team::new`] refuses the latter).
//!
//! # Stable assignment
//!
//! Every policy maps a frame to one of [`BUCKETS`] buckets; a bucket maps
//! to a slot (one per active member) and a slot to its holder. When a
//! member fails only its buckets move, and with failback they come back;
//! see [`Team`] for the slot rules and `tests/stability.rs` for the
//! property tests that hold them to it.
//!
//! # Failure detection
//!
//! - **Link state**: [`Team::set_link`] with carrier events (netlink or
//!   sysfs, read by `vswitchd`).
//! - **Beacon probing**: [`BeaconMonitor`], driven by [`Team::tick`] and
//!   [`Team::on_beacon`]. Each member broadcasts a [`Beacon`] every
//!   interval (1 s); a member that hears no other member, or is heard by
//!   none, for `miss_limit` intervals (3) while two other members still
//!   hear each other is failed. With two members nobody can tell which
//!   side failed: both become *suspect* and keep forwarding on link state,
//!   as VMware warns (use three or more).
//!
//! # Notify switches
//!
//! Every change returns the [`Move`]s it caused; [`Team::announcements`]
//! turns them into "announce guest G on member M", and [`rarp_frame`] /
//! [`garp_frame`] build the frames (QEMU's RARP layout; a gratuitous ARP
//! when the IPv4 address is known).
//!
//! # Receive side
//!
//! [`accept_on_member`] / [`Selector::accept`]: under the non-aggregated
//! policies only the designated member (the first member in configured
//! order that carries traffic) passes broadcast and multicast to guests,
//! so they never see duplicates; [`is_reflection`] drops our own guests'
//! frames coming back in. Never forwarding uplink to uplink is the
//! dataplane's flood rule.
//!
//! # Example
//!
//! ```
//! use teaming::*;
//!
//! let t = Timestamp::from_secs;
//! let spec = TeamSpec::new(TeamPolicy::PortId, ["eth0", "eth1"]).with_standby(["eth2"]);
//! let mut team = Team::new(spec, t(0)).expect("valid team");
//! for i in 0..3 {
//!     team.set_link(MemberIndex(i), true, t(0)).expect("member exists");
//! }
//! let guest = GuestAddr { port: GuestPort(4), mac: MacAddr([0x52, 0x54, 0, 0, 0, 4]), vlan: None, ipv4: None };
//! assert_eq!(team.member_name(team.select(guest.port, &[]).expect("eth0 is up")), Some("eth0"));
//!
//! // eth0 loses carrier: the standby takes over its slot, guest 4 moves.
//! let moves = team.set_link(MemberIndex(0), false, t(12)).expect("member exists");
//! let plan = team.announcements(&moves, &[guest]);
//! assert_eq!(team.member_name(plan[0].member), Some("eth2"));
//! let rarp = plan[0].frames(); // send these out of eth2
//! assert_eq!(rarp[0].len(), 60);
//! assert_eq!(
//!     team.explain_guest(guest.port, &guest.mac).to_string(),
//!     "guest port 4 (52:54:00:00:00:04) -> eth2 (port-id: bucket 4 -> slot 0 of 2, \
//!      home eth0 link down since t=12s, standby eth2 stands in); last moved t=12s"
//! );
//! ```
//!
//! # Fast path
//!
//! [`Selector`] is a `Copy` snapshot (a 256-entry table) the PMD holds:
//! [`Selector::select`] is O(1), allocation-free and panic-free on any
//! input. [`parse_flow_key`] (from the `wire` crate) documents exactly what
//! is parsed.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod beacon;
mod explain;
mod flow;
mod notify;
mod policy;
mod rx;
mod selector;
mod team;
mod time;

use std::fmt;

pub use beacon::{
    BEACON_ETHERTYPE, BEACON_MAGIC, BEACON_VERSION, Beacon, BeaconConfig, BeaconError,
    BeaconIgnored, BeaconMonitor, BeaconRx, BeaconTick, BeaconVerdict,
};
pub use explain::{Condition, Explanation, MemberNote, Reason, Subject};
pub use flow::{HashBasis, bucket_for, port_bucket, src_mac_bucket};
pub use notify::{
    Announcement, BufferTooSmall, GuestAddr, MIN_FRAME_LEN, Vlan, frame_len, garp_frame,
    rarp_frame, write_garp, write_rarp,
};
pub use policy::{TeamPolicy, UnknownPolicy};
pub use rx::{FrameKind, accept_on_member, is_reflection};
pub use selector::Selector;
pub use team::{MemberStatus, Move, Role, Team, TeamError, TeamSpec, Tick};
pub use time::Timestamp;
/// The wire types of the crate's API (the `wire` crate's): the flow key
/// parser is [`wire::parse_flow_key`].
pub use wire::{FlowKey, IpPair, MacAddr, parse_flow_key};

/// Number of hash buckets every policy maps frames to.
pub const BUCKETS: usize = 256;
/// Most members a team can have.
pub const MAX_MEMBERS: usize = 32;

/// Index of a member in its team: active members first, then standby, then
/// unused, each in configured order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberIndex(pub u8);

impl MemberIndex {
    /// As a `usize`.
    #[inline]
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for MemberIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member {}", self.0)
    }
}

/// A guest port: the dataplane's port ID, the "originating virtual port"
/// of the `port-id` policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestPort(pub u16);

/// One of the [`BUCKETS`] hash buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket(pub u8);

/// Runs every parser of untrusted bytes in this crate on `data`: the flow
/// key, every policy's bucket, the beacon parser, the receive rules, and
/// `explain` on a small team. For a fuzz target
/// (`fuzz_target!(|data: &[u8]| teaming::fuzz_frame(data))`); it must never
/// panic.
pub fn fuzz_frame(data: &[u8]) {
    let key = parse_flow_key(data);
    let port = GuestPort(key.ports.map_or(0, |p| p.0));
    for policy in TeamPolicy::ALL {
        let basis = HashBasis::of(policy, port, &key);
        assert_eq!(
            basis.bucket(),
            bucket_for(policy, port, data),
            "fast path and explain agree"
        );
        let _ = basis.to_string();
    }
    let _ = Beacon::parse(data);
    let _ = FrameKind::of_frame(data);
    let spec = TeamSpec::new(TeamPolicy::L4Hash, ["a", "b"]);
    if let Ok(mut team) = Team::new(spec, Timestamp::ZERO) {
        let _ = team.set_link(MemberIndex(0), true, Timestamp::ZERO);
        let _ = team.select(port, data);
        let _ = team.selector().accept(MemberIndex(1), data);
        let _ = team.explain_frame(port, data).to_string();
        let _ = team.on_beacon(MemberIndex(1), data, Timestamp::ZERO);
    }
}
