//! Team supervision in the daemon: the control-plane half of a team.
//!
//! Three things are called team-something; this module is the daemon's
//! part. The `teaming` crate is the logic (the [`teaming::Team`] state
//! machine, beacons, announcements), [`dataplane::port::team`] the fast
//! path's team port, and this module runs the one on behalf of the other.
//!
//! Each configured team is one port of its switch (a
//! [`dataplane::port::team::TeamPort`] per PMD). Its [`TeamRuntime`] owns
//! the [`teaming::Team`] state machine and, every [`POLL_INTERVAL`] on the
//! switch's supervisor thread ([`TeamSupervisor`]):
//!
//! 1. reads each member's link state (`IFF_UP` and `IFF_RUNNING`; a missing
//!    interface counts as down) and feeds changes to the team;
//! 2. hands the beacons the PMDs took off the wire to the beacon monitor,
//!    and on its clock sends each member's beacon;
//! 3. when the member choice changed, publishes the new selector to the
//!    PMDs (they switch between bursts) and, with `notify-switches`, sends
//!    a RARP (and a GARP when the IPv4 address is known) for every guest
//!    MAC whose traffic moved, out of its new member, so the physical
//!    switches relearn at once instead of when the guest next talks.
//!
//! Time is a parameter ([`teaming::Timestamp`] since the daemon started),
//! the kernel sits behind [`TeamIo`], so the logic is tested without root.
//!
//! - `spec.rs`: the configured team as a [`teaming::TeamSpec`].
//! - `runtime.rs`: [`TeamRuntime`], one team's state: links, beacons,
//!   publishing the member choice.
//! - `notify.rs`: the guests a team announces, and the RARP/GARP frames.
//! - `reconfigure.rs`: a reload's new settings applied to a running team.
//! - `show.rs`: `team show`.
//! - `explain.rs`: the frame `team explain` asks about.
//! - `supervisor.rs`: one turn of supervision, and the thread that runs it.

use std::collections::BTreeMap;
use std::time::Duration;

mod explain;
mod notify;
mod reconfigure;
mod runtime;
mod show;
mod spec;
mod supervisor;
#[cfg(test)]
mod testing;

pub use explain::flow_frame;
pub use runtime::TeamRuntime;
pub use spec::{beacon_team_id, policy, team_spec};
pub use supervisor::{TeamSupervisor, supervise};

/// How often link state is read and beacons are handled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Events kept per team for `team show`.
pub const EVENTS_KEPT: usize = 32;

/// What a team supervisor needs from the kernel.
pub trait TeamIo: Send {
    /// Carrier of interface `name`: `None` if it does not exist.
    fn link_up(&mut self, name: &str) -> Option<bool>;
    /// Sends one frame out of interface `name`.
    fn send(&mut self, name: &str, frame: &[u8]) -> std::io::Result<()>;
}

/// The kernel: `SIOCGIFFLAGS` for link state, an AF_PACKET socket per
/// interface (opened on first use) for sending.
#[derive(Debug)]
pub struct KernelIo {
    probe: dataplane::port::netdev::LinkProbe,
    senders: BTreeMap<String, dataplane::port::netdev::FrameSender>,
}

impl KernelIo {
    /// Opens the probe socket.
    pub fn new() -> std::io::Result<KernelIo> {
        Ok(KernelIo {
            probe: dataplane::port::netdev::LinkProbe::new()?,
            senders: BTreeMap::new(),
        })
    }
}

impl TeamIo for KernelIo {
    fn link_up(&mut self, name: &str) -> Option<bool> {
        self.probe.link_up(name)
    }

    fn send(&mut self, name: &str, frame: &[u8]) -> std::io::Result<()> {
        if !self.senders.contains_key(name) {
            let s = dataplane::port::netdev::FrameSender::open(name)?;
            self.senders.insert(name.to_string(), s);
        }
        let res = match self.senders.get(name) {
            Some(s) => s.send(frame),
            None => Ok(()),
        };
        if res.is_err() {
            // The interface may have been re-created: reopen next time.
            self.senders.remove(name);
        }
        res
    }
}

/// A frame for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Member interface.
    pub member: String,
    /// The frame.
    pub frame: Vec<u8>,
}
