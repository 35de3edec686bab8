//! Poll-mode driver threads.
//!
//! A PMD owns a set of receive queues and one queue pair of every port it
//! sends to, a packet pool, and a replica of the MAC table. Its loop reads
//! like Snabb's `breathe()`: apply control messages, pick up a new config
//! snapshot, apply peers' learning events, then for each receive queue:
//! receive a burst, forward it, flush the outputs. Nothing on that path
//! blocks or takes a lock the control plane can hold.
//!
//! Idle policy: `busy` polls forever; `adaptive` spins for a while after
//! the last frame, then arms the doorbells of its receive queues and
//! sleeps in `poll(2)` until a frame (or a control message) arrives, with
//! a 10 ms timeout for housekeeping such as MAC ageing. An idle switch then
//! costs almost nothing and a frame wakes it in one thread wake-up. Ports
//! without a doorbell make the PMD fall back to timed sleeps (1 µs
//! doubling up to `max_sleep`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::doorbell::Doorbell;
use crate::mac_table::MacTableRow;
use crate::packet::{DEFAULT_BURST, Packet, PacketPool};
use crate::pipeline::{MacEvent, Pipeline};
use crate::port::{Port, PortId};
use crate::snapshot::{MAX_PORTS, Snapshot};
use crate::stats::PmdStats;

/// What a PMD does when there is no traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll without pause: lowest latency, one full core.
    Busy,
    /// Spin for `spin_polls` empty polls, then sleep in doubling steps up
    /// to `max_sleep`.
    Adaptive {
        /// Empty polls before the first sleep.
        spin_polls: u32,
        /// Longest single timed sleep, used only when some receive queue
        /// has no doorbell: bounds the wake-up latency then.
        max_sleep: Duration,
    },
}

impl IdlePolicy {
    /// The default adaptive policy: 2,000 empty polls (~100 µs), then
    /// sleeps of up to 50 µs.
    pub const fn adaptive() -> Self {
        IdlePolicy::Adaptive {
            spin_polls: 2000,
            max_sleep: Duration::from_micros(50),
        }
    }
}

/// How to run one PMD.
#[derive(Clone, Debug)]
pub struct PmdConfig {
    /// CPU to pin to, if any.
    pub core: Option<usize>,
    /// Idle behaviour.
    pub idle: IdlePolicy,
    /// Frames per receive burst.
    pub burst: usize,
    /// Buffers in the PMD's pool.
    pub pool_size: usize,
    /// Size of each buffer (headroom included).
    pub buf_size: usize,
}

impl Default for PmdConfig {
    fn default() -> Self {
        PmdConfig {
            core: None,
            idle: IdlePolicy::adaptive(),
            burst: DEFAULT_BURST,
            pool_size: 4096,
            buf_size: 2048 + crate::packet::HEADROOM,
        }
    }
}

/// Control-plane requests, applied between bursts.
pub(crate) enum PmdCommand {
    Attach {
        id: PortId,
        queue: Box<dyn Port>,
        poll_rx: bool,
    },
    Detach {
        id: PortId,
        reply: Sender<Option<Box<dyn Port>>>,
    },
    MacRows {
        now: u32,
        reply: Sender<Vec<MacTableRow>>,
    },
    FlushMacs {
        vid: Option<u16>,
        port: Option<PortId>,
        reply: Sender<usize>,
    },
}

/// One poll-mode driver: its ports, pool, pipeline and channels.
pub struct Pmd {
    index: usize,
    pipeline: Pipeline,
    ports: Vec<Option<Box<dyn Port>>>,
    rx_ports: Vec<PortId>,
    pool: PacketPool,
    rx: Vec<Packet>,
    burst: usize,
    config: Arc<ArcSwap<Snapshot>>,
    cmds: Receiver<PmdCommand>,
    sync_in: Receiver<MacEvent>,
    sync_peers: Vec<Sender<MacEvent>>,
    stats: Arc<PmdStats>,
    next_age: u32,
    control_bell: Arc<Doorbell>,
    wake_fds: Vec<std::os::fd::RawFd>,
}

/// Longest sleep of an idle PMD whose queues all have doorbells.
const HOUSEKEEPING_MS: i32 = 10;

impl std::fmt::Debug for Pmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pmd")
            .field("index", &self.index)
            .field("rx_ports", &self.rx_ports)
            .finish_non_exhaustive()
    }
}

/// Channels and shared state a PMD is built from.
pub(crate) struct PmdParts {
    pub(crate) index: usize,
    pub(crate) config: Arc<ArcSwap<Snapshot>>,
    pub(crate) cmds: Receiver<PmdCommand>,
    pub(crate) sync_in: Receiver<MacEvent>,
    pub(crate) sync_peers: Vec<Sender<MacEvent>>,
    pub(crate) stats: Arc<PmdStats>,
    pub(crate) control_bell: Arc<Doorbell>,
}

/// Most peer learning events applied per poll, so a burst of them cannot
/// stall forwarding.
const SYNC_EVENTS_PER_POLL: usize = 1024;

impl Pmd {
    pub(crate) fn new(parts: PmdParts, cfg: &PmdConfig) -> Pmd {
        let burst = cfg.burst.clamp(1, 256);
        let snap = parts.config.load_full();
        Pmd {
            index: parts.index,
            pipeline: Pipeline::new(snap, parts.stats.clone(), burst),
            ports: (0..MAX_PORTS).map(|_| None).collect(),
            rx_ports: Vec::new(),
            pool: PacketPool::new(cfg.pool_size, cfg.buf_size),
            rx: Vec::with_capacity(burst),
            burst,
            config: parts.config,
            cmds: parts.cmds,
            sync_in: parts.sync_in,
            sync_peers: parts.sync_peers,
            stats: parts.stats,
            next_age: 0,
            control_bell: parts.control_bell,
            wake_fds: Vec::new(),
        }
    }

    /// Index of this PMD in its switch.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The MAC table replica (for tests and benches that drive a PMD by hand).
    pub fn mac_table(&self) -> &crate::mac_table::MacTable {
        self.pipeline.mac_table()
    }

    /// The packet pool.
    pub fn pool(&self) -> &PacketPool {
        &self.pool
    }

    fn apply_commands(&mut self) {
        while let Ok(cmd) = self.cmds.try_recv() {
            match cmd {
                PmdCommand::Attach { id, queue, poll_rx } => {
                    let Some(slot) = self.ports.get_mut(usize::from(id.0)) else {
                        continue;
                    };
                    *slot = Some(queue);
                    self.rx_ports.retain(|&p| p != id);
                    if poll_rx {
                        self.rx_ports.push(id);
                    }
                }
                PmdCommand::Detach { id, reply } => {
                    self.rx_ports.retain(|&p| p != id);
                    let idx = usize::from(id.0);
                    if let Some(q) = self.pipeline.out.get_mut(idx) {
                        self.pool.free_all(q);
                    }
                    self.pipeline.dirty.retain(|&p| p != id);
                    let port = self.ports.get_mut(idx).and_then(Option::take);
                    // The requester may have given up waiting; nothing to do then.
                    let _ = reply.send(port);
                }
                PmdCommand::MacRows { now, reply } => {
                    let _ = reply.send(self.pipeline.mac.rows(now));
                }
                PmdCommand::FlushMacs { vid, port, reply } => {
                    // Peers' learning queued before the flush goes first,
                    // so it cannot bring flushed entries back afterwards.
                    self.apply_peer_learning();
                    let _ = reply.send(self.pipeline.mac.flush_matching(vid, port));
                }
            }
        }
    }

    fn apply_peer_learning(&mut self) {
        for ev in self.sync_in.try_iter().take(SYNC_EVENTS_PER_POLL) {
            self.pipeline
                .mac
                .apply_remote(ev.key, ev.port, ev.seen, ev.ipv4);
        }
    }

    fn announce_learning(&mut self) {
        if self.pipeline.sync_out.is_empty() {
            return;
        }
        for ev in self.pipeline.sync_out.drain(..) {
            for peer in &self.sync_peers {
                match peer.try_send(ev) {
                    Ok(()) => self.stats.mac_sync_sent.inc(),
                    Err(TrySendError::Full(_)) => self.stats.mac_sync_dropped.inc(),
                    // A peer that is gone needs no update.
                    Err(TrySendError::Disconnected(_)) => {}
                }
            }
        }
    }

    fn flush_outputs(&mut self) {
        for id in self.pipeline.dirty.drain(..) {
            let idx = usize::from(id.0);
            let q = &mut self.pipeline.out[idx];
            let ctr = &self.stats.ports[idx];
            match self.ports[idx].as_mut() {
                Some(port) => {
                    if !port.takes_tails() {
                        for p in q.iter_mut() {
                            p.materialize();
                        }
                    }
                    let n = q.len();
                    let res = port.tx_burst(q, &mut self.pool);
                    debug_assert_eq!(res.sent + res.dropped, n);
                    ctr.tx_packets.add(res.sent as u64);
                    ctr.tx_bytes.add(res.bytes as u64);
                    ctr.tx_dropped.add(res.dropped as u64);
                }
                None => {
                    ctr.tx_dropped.add(q.len() as u64);
                    self.pool.free_all(q);
                }
            }
        }
    }

    /// One turn of the loop at switch time `now` (seconds); returns the
    /// number of frames received.
    pub fn poll_once(&mut self, now: u32) -> usize {
        self.apply_commands();
        let current = self.config.load();
        if current.generation != self.pipeline.snapshot().generation {
            self.pipeline
                .set_snapshot(arc_swap::Guard::into_inner(current));
        }
        self.apply_peer_learning();

        let mut total = 0;
        for i in 0..self.rx_ports.len() {
            let id = self.rx_ports[i];
            let idx = usize::from(id.0);
            let Some(port) = self.ports[idx].as_mut() else {
                continue;
            };
            let n = port.rx_burst_lending(&mut self.pool, &mut self.rx, self.burst);
            if n == 0 {
                continue;
            }
            total += n;
            let ctr = &self.stats.ports[idx];
            ctr.rx_packets.add(n as u64);
            ctr.rx_bytes
                .add(self.rx.iter().map(|p| p.len() as u64).sum());
            self.pipeline.process(id, &mut self.rx, &mut self.pool, now);
            self.flush_outputs();
            // Every packet of the burst is sent or freed: the port may
            // take back what it lent (see `Port::rx_burst_lending`).
            debug_assert!(self.rx.is_empty());
            if let Some(port) = self.ports[idx].as_mut() {
                port.rx_complete();
            }
        }
        self.announce_learning();

        if now >= self.next_age {
            self.pipeline.mac.age(now);
            let every = (self.pipeline.mac.spec().aging_secs / 10).max(1);
            self.next_age = now.saturating_add(every);
        }
        self.stats.iterations.inc();
        if total > 0 {
            self.stats.busy_iterations.inc();
        }
        total
    }

    /// Sleeps until a receive queue's doorbell or the control doorbell
    /// rings (or the housekeeping timeout). Returns false, without
    /// sleeping, if some receive queue has no doorbell.
    fn sleep_until_woken(&mut self) -> bool {
        self.wake_fds.clear();
        self.wake_fds.push(self.control_bell.fd());
        for &id in &self.rx_ports {
            match self.ports[usize::from(id.0)]
                .as_ref()
                .and_then(|p| p.wake_fd())
            {
                Some(fd) => self.wake_fds.push(fd),
                None => return false,
            }
        }
        let mut pending = false;
        for &id in &self.rx_ports {
            if let Some(p) = self.ports[usize::from(id.0)].as_mut() {
                pending |= p.set_rx_notify(true);
            }
        }
        if !pending
            && self.cmds.is_empty()
            && let Err(e) = crate::sys::poll_readable(&self.wake_fds, HOUSEKEEPING_MS)
        {
            tracing::warn!(pmd = self.index, error = %e, "poll on doorbells failed");
        }
        for &id in &self.rx_ports {
            if let Some(p) = self.ports[usize::from(id.0)].as_mut() {
                p.set_rx_notify(false);
            }
        }
        self.control_bell.disarm();
        true
    }

    /// The thread body: poll until `stop`, applying the idle policy.
    pub(crate) fn run(mut self, cfg: PmdConfig, epoch: Instant, stop: Arc<AtomicBool>) {
        if let Some(core) = cfg.core {
            crate::sys::pin_current_thread(core);
        }
        crate::sys::set_fine_timer_slack();
        let mut empty_polls: u32 = 0;
        let mut sleep = Duration::from_micros(1);
        let mut now = epoch.elapsed().as_secs() as u32;
        let mut last_cpu_sample = Instant::now();
        let mut iter: u32 = 0;
        while !stop.load(Ordering::Relaxed) {
            iter = iter.wrapping_add(1);
            if iter.is_multiple_of(64) {
                let t = Instant::now();
                now = t.duration_since(epoch).as_secs() as u32;
                if t.duration_since(last_cpu_sample) >= Duration::from_millis(500) {
                    last_cpu_sample = t;
                    self.stats.cpu_time_ns.set(crate::sys::thread_cpu_time_ns());
                    self.stats.mac_entries.set(self.mac_table().len() as u64);
                }
            }
            let n = self.poll_once(now);
            match cfg.idle {
                IdlePolicy::Busy => {}
                IdlePolicy::Adaptive {
                    spin_polls,
                    max_sleep,
                } => {
                    if n > 0 {
                        empty_polls = 0;
                        sleep = Duration::from_micros(1);
                    } else if empty_polls < spin_polls {
                        empty_polls += 1;
                    } else {
                        self.stats.idle_sleeps.inc();
                        if !self.sleep_until_woken() {
                            std::thread::sleep(sleep);
                            sleep = (sleep * 2).min(max_sleep);
                        }
                        // Sleeping makes time pass: refresh the clock next turn.
                        iter = 63;
                    }
                }
            }
        }
        // Give back whatever is still queued.
        for q in &mut self.pipeline.out {
            self.pool.free_all(q);
        }
    }
}
