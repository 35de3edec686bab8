//! The control plane's handle on a running switch: it owns the PMD
//! threads, publishes configuration snapshots, attaches ports and sums
//! counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{Sender, bounded, unbounded};

use crate::doorbell::Doorbell;
use crate::mac_table::MacTableRow;
use crate::pipeline::MacEvent;
use crate::pmd::{Pmd, PmdCommand, PmdConfig, PmdParts};
use crate::port::{MemPortPeer, Port, PortId, mem_port};
use crate::snapshot::{MAX_PORTS, Snapshot, SpecError, SwitchSpec};
use crate::stats::{PmdStats, PortCountersSnapshot};

/// Capacity of each PMD's inbox of peer learning events.
const SYNC_INBOX: usize = 65536;

/// Errors of the switch's control operations.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The spec is invalid.
    #[error("invalid switch configuration")]
    Spec(#[from] SpecError),
    /// `attach_port` got a queue count that is not one per PMD.
    #[error("port {id}: {got} queue pairs given, the switch has {want} PMDs")]
    QueueCount {
        /// Port.
        id: PortId,
        /// Queue pairs given.
        got: usize,
        /// PMD count.
        want: usize,
    },
    /// A port ID outside the fast path's range.
    #[error("port ID {0} is out of range")]
    PortId(PortId),
    /// A PMD did not answer in time.
    #[error("PMD {0} did not answer")]
    PmdUnresponsive(usize),
    /// Could not start a PMD thread or create its doorbell.
    #[error("cannot start PMD thread")]
    Spawn(#[source] std::io::Error),
}

/// One queue pair of a port, and whether its PMD polls it for receive.
#[derive(Debug)]
pub struct PortQueue {
    /// The queue pair.
    pub port: Box<dyn Port>,
    /// Poll its receive side.
    pub poll_rx: bool,
}

#[derive(Debug)]
struct PmdHandle {
    cmds: Sender<PmdCommand>,
    stats: Arc<PmdStats>,
    thread: Option<JoinHandle<()>>,
    bell: Arc<Doorbell>,
}

impl PmdHandle {
    /// Queues a command and wakes the PMD if it sleeps.
    fn send(&self, i: usize, cmd: PmdCommand) -> Result<(), SwitchError> {
        self.cmds
            .send(cmd)
            .map_err(|_| SwitchError::PmdUnresponsive(i))?;
        self.bell.ring();
        Ok(())
    }
}

impl std::fmt::Debug for PmdCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PmdCommand::Attach { .. } => "Attach",
            PmdCommand::Detach { .. } => "Detach",
            PmdCommand::MacRows { .. } => "MacRows",
            PmdCommand::FlushMacs { .. } => "FlushMacs",
        })
    }
}

/// Reads the MAC table of a switch from any thread; see
/// [`Switch::mac_reader`].
#[derive(Debug, Clone)]
pub struct MacReader {
    cmds: Sender<PmdCommand>,
    bell: Arc<Doorbell>,
    epoch: Instant,
    timeout: Duration,
}

impl MacReader {
    /// The MAC table as PMD 0 sees it.
    pub fn rows(&self) -> Result<Vec<MacTableRow>, SwitchError> {
        let (tx, rx) = bounded(1);
        self.cmds
            .send(PmdCommand::MacRows {
                now: self.epoch.elapsed().as_secs() as u32,
                reply: tx,
            })
            .map_err(|_| SwitchError::PmdUnresponsive(0))?;
        self.bell.ring();
        rx.recv_timeout(self.timeout)
            .map_err(|_| SwitchError::PmdUnresponsive(0))
    }
}

/// A switch: configuration, PMDs, counters.
#[derive(Debug)]
pub struct Switch {
    config: Arc<ArcSwap<Snapshot>>,
    pmds: Vec<PmdHandle>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
    reply_timeout: Duration,
}

impl Switch {
    /// Builds a switch with one unstarted PMD per entry of `pmds`, and
    /// returns the PMDs for the caller to drive with [`Pmd::poll_once`]
    /// (benches, deterministic tests) or to start with [`Switch::spawn`].
    pub fn build(spec: SwitchSpec, pmds: &[PmdConfig]) -> Result<(Switch, Vec<Pmd>), SwitchError> {
        Switch::build_from(Snapshot::build(spec, 1)?, pmds)
    }

    /// [`Switch::build`] from a snapshot the caller built (and so
    /// validated) already; it becomes generation 1.
    pub fn build_from(
        mut snap: Snapshot,
        pmds: &[PmdConfig],
    ) -> Result<(Switch, Vec<Pmd>), SwitchError> {
        snap.generation = 1;
        let config = Arc::new(ArcSwap::from_pointee(snap));
        let n = pmds.len().max(1);
        let (sync_tx, sync_rx): (Vec<_>, Vec<_>) =
            (0..n).map(|_| bounded::<MacEvent>(SYNC_INBOX)).unzip();
        let mut handles = Vec::new();
        let mut built = Vec::new();
        for (i, sync_in) in sync_rx.into_iter().enumerate() {
            let (cmd_tx, cmd_rx) = unbounded();
            let stats = Arc::new(PmdStats::new(MAX_PORTS));
            let bell = Arc::new(Doorbell::new().map_err(SwitchError::Spawn)?);
            let peers = sync_tx
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, s)| s.clone())
                .collect();
            let parts = PmdParts {
                index: i,
                config: config.clone(),
                cmds: cmd_rx,
                sync_in,
                sync_peers: peers,
                stats: stats.clone(),
                control_bell: bell.clone(),
            };
            let cfg = pmds.get(i).cloned().unwrap_or_default();
            built.push(Pmd::new(parts, &cfg));
            handles.push(PmdHandle {
                cmds: cmd_tx,
                stats,
                thread: None,
                bell,
            });
        }
        Ok((
            Switch {
                config,
                pmds: handles,
                stop: Arc::new(AtomicBool::new(false)),
                epoch: Instant::now(),
                reply_timeout: Duration::from_secs(5),
            },
            built,
        ))
    }

    /// Builds the switch and starts one thread per PMD config.
    pub fn start(spec: SwitchSpec, pmds: &[PmdConfig]) -> Result<Switch, SwitchError> {
        Switch::start_from(Snapshot::build(spec, 1)?, pmds)
    }

    /// [`Switch::start`] from a snapshot the caller built (and so
    /// validated) already; it becomes generation 1.
    pub fn start_from(snap: Snapshot, pmds: &[PmdConfig]) -> Result<Switch, SwitchError> {
        let (mut sw, built) = Switch::build_from(snap, pmds)?;
        for (pmd, cfg) in built.into_iter().zip(
            pmds.iter()
                .cloned()
                .chain(std::iter::repeat_with(PmdConfig::default)),
        ) {
            sw.spawn(pmd, cfg)?;
        }
        Ok(sw)
    }

    /// Starts a PMD built by [`Switch::build`] on its own thread.
    pub fn spawn(&mut self, pmd: Pmd, cfg: PmdConfig) -> Result<(), SwitchError> {
        let index = pmd.index();
        let stop = self.stop.clone();
        let epoch = self.epoch;
        let thread = std::thread::Builder::new()
            .name(format!("pmd{index}"))
            .spawn(move || pmd.run(cfg, epoch, stop))
            .map_err(SwitchError::Spawn)?;
        if let Some(h) = self.pmds.get_mut(index) {
            h.thread = Some(thread);
        }
        Ok(())
    }

    /// Number of PMDs.
    pub fn pmd_count(&self) -> usize {
        self.pmds.len()
    }

    /// Seconds since the switch started: the clock of MAC ageing.
    pub fn now_secs(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    /// The configuration in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.config.load_full()
    }

    /// Validates and publishes a new configuration; PMDs switch to it
    /// between bursts. An invalid spec changes nothing.
    pub fn update(&self, spec: SwitchSpec) -> Result<(), SwitchError> {
        let generation = self.config.load().generation + 1;
        self.publish(Snapshot::build(spec, generation)?);
        Ok(())
    }

    /// Publishes a snapshot the caller built (and so validated) already,
    /// as the next generation; PMDs switch to it between bursts.
    pub fn publish(&self, mut snap: Snapshot) {
        snap.generation = self.config.load().generation + 1;
        self.config.store(Arc::new(snap));
        for pmd in &self.pmds {
            pmd.bell.ring();
        }
    }

    /// Hands a port's queue pairs to the PMDs: queue `i` goes to PMD `i`.
    pub fn attach_port(&self, id: PortId, queues: Vec<PortQueue>) -> Result<(), SwitchError> {
        if usize::from(id.0) >= MAX_PORTS {
            return Err(SwitchError::PortId(id));
        }
        if queues.len() != self.pmds.len() {
            return Err(SwitchError::QueueCount {
                id,
                got: queues.len(),
                want: self.pmds.len(),
            });
        }
        for (i, (q, pmd)) in queues.into_iter().zip(&self.pmds).enumerate() {
            pmd.send(
                i,
                PmdCommand::Attach {
                    id,
                    queue: q.port,
                    poll_rx: q.poll_rx,
                },
            )?;
        }
        Ok(())
    }

    /// Creates a memory port with one queue pair per PMD (every PMD polls
    /// its own queue) and attaches it; returns the peer's end.
    pub fn attach_mem_port(&self, id: PortId, depth: usize) -> Result<MemPortPeer, SwitchError> {
        let (peer, qs) = mem_port(self.pmds.len(), depth);
        let queues = qs
            .into_iter()
            .map(|q| PortQueue {
                port: Box::new(q),
                poll_rx: true,
            })
            .collect();
        self.attach_port(id, queues)?;
        Ok(peer)
    }

    /// Takes a port's queue pairs back from every PMD, after each has
    /// finished its current burst. Blocks until they answer.
    pub fn detach_port(&self, id: PortId) -> Result<Vec<Box<dyn Port>>, SwitchError> {
        let mut replies = Vec::new();
        for (i, pmd) in self.pmds.iter().enumerate() {
            let (tx, rx) = bounded(1);
            pmd.send(i, PmdCommand::Detach { id, reply: tx })?;
            replies.push(rx);
        }
        let mut out = Vec::new();
        for (i, rx) in replies.into_iter().enumerate() {
            match rx.recv_timeout(self.reply_timeout) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => {}
                Err(_) => return Err(SwitchError::PmdUnresponsive(i)),
            }
        }
        Ok(out)
    }

    /// The MAC table as PMD 0 sees it (all replicas converge).
    pub fn mac_table(&self) -> Result<Vec<MacTableRow>, SwitchError> {
        self.mac_reader()?.rows()
    }

    /// A handle that reads the MAC table from another thread (a team's
    /// supervisor announcing guests after a failover) without borrowing
    /// the switch. It fails once the switch has stopped.
    pub fn mac_reader(&self) -> Result<MacReader, SwitchError> {
        let pmd = self.pmds.first().ok_or(SwitchError::PmdUnresponsive(0))?;
        Ok(MacReader {
            cmds: pmd.cmds.clone(),
            bell: pmd.bell.clone(),
            epoch: self.epoch,
            timeout: self.reply_timeout,
        })
    }

    /// Removes learned (dynamic) MAC entries of VLAN `vid` (all when
    /// `None`) on `port` (all when `None`) from every PMD's replica; static
    /// entries stay. Blocks until every PMD has done it (between bursts)
    /// and returns how many entries PMD 0 removed. A frame a PMD forwards
    /// meanwhile may teach its source again, as after any flush.
    pub fn flush_macs(&self, vid: Option<u16>, port: Option<PortId>) -> Result<usize, SwitchError> {
        let mut replies = Vec::new();
        for (i, pmd) in self.pmds.iter().enumerate() {
            let (tx, rx) = bounded(1);
            pmd.send(
                i,
                PmdCommand::FlushMacs {
                    vid,
                    port,
                    reply: tx,
                },
            )?;
            replies.push(rx);
        }
        let mut first = 0;
        for (i, rx) in replies.into_iter().enumerate() {
            let n = rx
                .recv_timeout(self.reply_timeout)
                .map_err(|_| SwitchError::PmdUnresponsive(i))?;
            if i == 0 {
                first = n;
            }
        }
        Ok(first)
    }

    /// A port's counters summed over the PMDs.
    pub fn port_stats(&self, id: PortId) -> PortCountersSnapshot {
        let mut acc = PortCountersSnapshot::default();
        for pmd in &self.pmds {
            if let Some(c) = pmd.stats.ports.get(usize::from(id.0)) {
                c.accumulate(&mut acc);
            }
        }
        acc
    }

    /// The counters of each PMD.
    pub fn pmd_stats(&self) -> Vec<Arc<PmdStats>> {
        self.pmds.iter().map(|p| p.stats.clone()).collect()
    }

    /// Stops the PMD threads and waits for them.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for pmd in &self.pmds {
            pmd.bell.ring();
        }
        for pmd in &mut self.pmds {
            if let Some(t) = pmd.thread.take()
                && t.join().is_err()
            {
                tracing::error!("a PMD thread panicked");
            }
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use crate::snapshot::StaticMac;
    use crate::testing::{frame, guest, mac};
    use crate::vlan::VlanMode;
    use wire::MacAddr;

    #[test]
    fn flush_macs_removes_learned_entries_from_every_pmd_and_keeps_statics() {
        let mut spec = SwitchSpec {
            ports: vec![
                guest(1, VlanMode::Access(10)),
                guest(2, VlanMode::Access(10)),
            ],
            ..SwitchSpec::default()
        };
        spec.static_macs.push(StaticMac {
            vid: 10,
            mac: mac(9),
            port: PortId(2),
        });
        let cfg = PmdConfig::default();
        let sw = Switch::start(spec, &[cfg.clone(), cfg]).expect("starts");
        let mut p1 = sw.attach_mem_port(PortId(1), 64).expect("attach 1");
        let _p2 = sw.attach_mem_port(PortId(2), 64).expect("attach 2");
        assert!(
            p1.send(0, Packet::from_frame(&frame(mac(9), mac(1), &[], &[0; 46])))
                .is_ok()
        );
        let rows = |sw: &Switch| -> Vec<(u16, MacAddr, bool)> {
            let mut r: Vec<_> = sw
                .mac_table()
                .expect("rows")
                .into_iter()
                .map(|r| (r.vid, r.mac, r.is_static))
                .collect();
            r.sort();
            r
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while rows(&sw).len() < 2 {
            assert!(Instant::now() < deadline, "never learned: {:?}", rows(&sw));
            std::thread::sleep(Duration::from_millis(10));
        }
        // Wrong VLAN and wrong port flush nothing.
        assert_eq!(sw.flush_macs(Some(20), None).expect("flush"), 0);
        assert_eq!(sw.flush_macs(None, Some(PortId(2))).expect("flush"), 0);
        assert_eq!(sw.flush_macs(Some(10), Some(PortId(1))).expect("flush"), 1);
        assert_eq!(rows(&sw), vec![(10, mac(9), true)]);
    }
}
