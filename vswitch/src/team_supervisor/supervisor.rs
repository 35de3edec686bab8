//! One turn of supervision for a team, and the thread that runs the turns
//! for the teams of one switch.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use dataplane::mac_table::MacTableRow;
use dataplane::{MacReader, PortId};
use teaming::Timestamp;

use super::{Outgoing, POLL_INTERVAL, TeamIo, TeamRuntime};

/// One turn of supervision for one team: links, beacons, publish, notify.
/// Returns the frames to send. `rows` is called only when guests must be
/// announced.
pub fn supervise(
    rt: &mut TeamRuntime,
    io: &mut dyn TeamIo,
    rows: &mut dyn FnMut() -> Vec<MacTableRow>,
    uplinks: &BTreeSet<PortId>,
    now: Timestamp,
) -> Vec<Outgoing> {
    let mut out = std::mem::take(&mut rt.pending);
    let links: Vec<Option<bool>> = rt.members.iter().map(|n| io.link_up(n)).collect();
    let mut moves = rt.set_links(&links, now);
    rt.take_beacons(now);
    let (beacons, more) = rt.tick(now);
    out.extend(beacons);
    moves.extend(more);
    if rt.selector_changed() || !moves.is_empty() {
        rt.publish(&moves, now);
        if rt.notify && !moves.is_empty() {
            let guests = rt.guests(&rows(), uplinks);
            out.extend(rt.announcements(&moves, &guests));
        }
    }
    out
}

/// The thread that supervises the teams of one switch. Stops when dropped.
#[derive(Debug)]
pub struct TeamSupervisor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    teams: Vec<Arc<Mutex<TeamRuntime>>>,
}

impl TeamSupervisor {
    /// Starts supervising `teams` of a switch whose MAC table `mac` reads;
    /// `uplinks` are the switch's uplink and team port IDs; `epoch` is the
    /// daemon's clock origin.
    pub fn start(
        switch: &str,
        teams: Vec<TeamRuntime>,
        mut io: Box<dyn TeamIo>,
        mac: MacReader,
        uplinks: BTreeSet<PortId>,
        epoch: Instant,
    ) -> std::io::Result<TeamSupervisor> {
        let teams: Vec<Arc<Mutex<TeamRuntime>>> =
            teams.into_iter().map(|t| Arc::new(Mutex::new(t))).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (t2, s2) = (teams.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("teams-{switch}"))
            .spawn(move || {
                let mut failed_sends = 0u64;
                while !s2.load(Ordering::Relaxed) {
                    let now = Timestamp::from_duration(epoch.elapsed());
                    for t in &t2 {
                        let mut rows = || {
                            mac.rows().unwrap_or_else(|e| {
                                tracing::warn!("teams: cannot read the MAC table: {e}");
                                Vec::new()
                            })
                        };
                        let out = {
                            let mut rt = t.lock().unwrap_or_else(PoisonError::into_inner);
                            supervise(&mut rt, io.as_mut(), &mut rows, &uplinks, now)
                        };
                        for o in out {
                            if let Err(e) = io.send(&o.member, &o.frame) {
                                failed_sends += 1;
                                if failed_sends.is_power_of_two() {
                                    tracing::warn!(member = %o.member, "teams: cannot send a control frame ({failed_sends} failures so far): {e}");
                                }
                            }
                        }
                    }
                    std::thread::sleep(POLL_INTERVAL);
                }
            })?;
        Ok(TeamSupervisor {
            stop,
            thread: Some(thread),
            teams,
        })
    }

    /// The supervised teams.
    pub fn teams(&self) -> &[Arc<Mutex<TeamRuntime>>] {
        &self.teams
    }
}

impl Drop for TeamSupervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dataplane::PortId;
    use teaming::{MemberIndex, Timestamp};

    use super::super::testing::{FakeIo, cfg, row, runtime};
    use super::supervise;

    #[test]
    fn without_failback_recovery_moves_nothing_and_without_notify_nothing_is_sent() {
        let c = cfg(config::TeamPolicy::PortId, false, false);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth0".into(), true);
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::from([PortId(9)]);
        let table = vec![row(1, 1, 1), row(1, 2, 2)];
        let mut rows = || table.clone();
        let t = Timestamp::from_millis;
        supervise(&mut rt, &mut io, &mut rows, &uplinks, t(0));
        io.links.insert("eth0".into(), false);
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(10));
        assert!(out.is_empty(), "notify off");
        let during = rt.shared.selector();
        io.links.insert("eth0".into(), true);
        supervise(&mut rt, &mut io, &mut rows, &uplinks, t(20));
        assert_eq!(
            rt.shared.selector(),
            during,
            "failback off: nothing moves back"
        );
    }

    #[test]
    fn a_missing_interface_is_down_and_all_members_down_means_no_member() {
        let c = cfg(config::TeamPolicy::SrcMac, true, true);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::new();
        let mut rows = Vec::new;
        supervise(&mut rt, &mut io, &mut rows, &uplinks, Timestamp::ZERO);
        let sel = rt.shared.selector();
        for b in 0..=255u8 {
            assert_eq!(
                sel.member_for_bucket(teaming::Bucket(b)),
                Some(MemberIndex(1))
            );
        }
        io.links.insert("eth1".into(), false);
        supervise(
            &mut rt,
            &mut io,
            &mut rows,
            &uplinks,
            Timestamp::from_secs(1),
        );
        assert_eq!(
            rt.shared.selector().member_for_bucket(teaming::Bucket(0)),
            None
        );
    }
}
