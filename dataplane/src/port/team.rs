//! A team of uplinks, seen by the switch as one port.
//!
//! The pipeline learns MACs behind the team on the team's port ID and
//! floods to it once, like any port; the team then picks the member:
//!
//! - **Transmit**: each frame goes to the member the team's
//!   [`teaming::Selector`] names for it (by the frame's originating port
//!   under `port-id`, by hash under the others). A frame no usable member
//!   can take is dropped and counted (`no_member`).
//! - **Receive**: every member is polled (round robin, so one busy member
//!   cannot starve the others). Beacons (ethertype
//!   [`teaming::BEACON_ETHERTYPE`]) go to the control plane and never to
//!   guests. Under the non-aggregated policies only the designated member
//!   passes broadcast and multicast ([`teaming::Selector::accept`]), so a
//!   guest never sees a flood twice; the others count it as `rx_filtered`.
//!
//! The control plane owns the [`teaming::Team`] and publishes each new
//! selector with [`TeamShared::publish`]; every PMD's [`TeamPort`] picks it
//! up between bursts (one atomic load per burst; no lock on the packet
//! path). Member counters are shared atomics, added once per burst.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use teaming::{BEACON_ETHERTYPE, GuestPort, MemberIndex, Selector};
use wire::EthernetHeader;

use super::{Port, TxOutcome};
use crate::packet::{Packet, PacketPool};
use crate::stats::Counter;

/// Beacons queued for the control plane before further ones are dropped.
pub const BEACON_QUEUE: usize = 256;

/// A beacon frame received on a member, for the control plane's monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedBeacon {
    /// The member it arrived on.
    pub member: MemberIndex,
    /// The whole frame.
    pub frame: Vec<u8>,
}

/// Counters of one member, summed over every PMD.
#[derive(Debug, Default)]
pub struct MemberCounters {
    /// Frames received on the member (beacons and filtered ones included).
    pub rx_packets: Counter,
    /// Bytes of those frames.
    pub rx_bytes: Counter,
    /// Broadcast/multicast received on a member that is not the designated
    /// receiver, dropped so guests see each flood once.
    pub rx_filtered: Counter,
    /// Beacons received.
    pub rx_beacons: Counter,
    /// Beacons dropped because the control plane's queue was full.
    pub rx_beacons_dropped: Counter,
    /// Frames the team sent on the member.
    pub tx_packets: Counter,
    /// Bytes of those frames.
    pub tx_bytes: Counter,
    /// Frames the member could not take (link down, queue full).
    pub tx_dropped: Counter,
}

/// A plain copy of [`MemberCounters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MemberCountersSnapshot {
    /// See [`MemberCounters::rx_packets`].
    pub rx_packets: u64,
    /// See [`MemberCounters::rx_bytes`].
    pub rx_bytes: u64,
    /// See [`MemberCounters::rx_filtered`].
    pub rx_filtered: u64,
    /// See [`MemberCounters::rx_beacons`].
    pub rx_beacons: u64,
    /// See [`MemberCounters::rx_beacons_dropped`].
    pub rx_beacons_dropped: u64,
    /// See [`MemberCounters::tx_packets`].
    pub tx_packets: u64,
    /// See [`MemberCounters::tx_bytes`].
    pub tx_bytes: u64,
    /// See [`MemberCounters::tx_dropped`].
    pub tx_dropped: u64,
}

impl MemberCounters {
    /// The current values.
    pub fn snapshot(&self) -> MemberCountersSnapshot {
        MemberCountersSnapshot {
            rx_packets: self.rx_packets.get(),
            rx_bytes: self.rx_bytes.get(),
            rx_filtered: self.rx_filtered.get(),
            rx_beacons: self.rx_beacons.get(),
            rx_beacons_dropped: self.rx_beacons_dropped.get(),
            tx_packets: self.tx_packets.get(),
            tx_bytes: self.tx_bytes.get(),
            tx_dropped: self.tx_dropped.get(),
        }
    }
}

/// What the control plane and every PMD's [`TeamPort`] of one team share:
/// the current selector and the member counters.
#[derive(Debug)]
pub struct TeamShared {
    name: String,
    members: Vec<String>,
    selector: ArcSwap<Selector>,
    generation: AtomicU64,
    counters: Vec<MemberCounters>,
    /// Frames no usable member could take.
    no_member: Counter,
    beacons: Sender<ReceivedBeacon>,
}

impl TeamShared {
    /// A team named `name` with `members` (in [`MemberIndex`] order) and
    /// its first selector. Returns the receiver of the beacons its ports
    /// take off the wire.
    pub fn new(
        name: &str,
        members: Vec<String>,
        selector: Selector,
    ) -> (Arc<TeamShared>, Receiver<ReceivedBeacon>) {
        let (tx, rx) = bounded(BEACON_QUEUE);
        let counters = members.iter().map(|_| MemberCounters::default()).collect();
        let shared = TeamShared {
            name: name.to_string(),
            members,
            selector: ArcSwap::from_pointee(selector),
            generation: AtomicU64::new(1),
            counters,
            no_member: Counter::default(),
            beacons: tx,
        };
        (Arc::new(shared), rx)
    }

    /// The team's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Member names in [`MemberIndex`] order.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// Makes `selector` the one every PMD uses from its next burst on.
    pub fn publish(&self, selector: Selector) {
        self.selector.store(Arc::new(selector));
        // After the store: a PMD that sees the new generation loads at
        // least this selector.
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The selector in force.
    pub fn selector(&self) -> Selector {
        **self.selector.load()
    }

    /// Counters of `member`.
    pub fn member_counters(&self, member: MemberIndex) -> Option<MemberCountersSnapshot> {
        self.counters
            .get(member.get())
            .map(MemberCounters::snapshot)
    }

    /// Frames dropped because no member was usable.
    pub fn no_member_drops(&self) -> u64 {
        self.no_member.get()
    }
}

/// One PMD's queue pair of a team: the same PMD's queue pair of every
/// member.
#[derive(Debug)]
pub struct TeamPort {
    shared: Arc<TeamShared>,
    /// Queue pair of each member, in [`MemberIndex`] order; `None` for a
    /// member whose device could not be opened (it carries nothing).
    members: Vec<Option<Box<dyn Port>>>,
    selector: Selector,
    generation: u64,
    /// Per-member output of the current burst.
    out: Vec<Vec<Packet>>,
    next_rx: usize,
    /// Readable when any member's wake fd is; `None` if some member has
    /// no wake fd (or epoll failed): the PMD then does not sleep.
    epoll: Option<Epoll>,
}

impl TeamPort {
    /// A team queue pair over the members' queue pairs (in
    /// [`MemberIndex`] order, as many as [`TeamShared::members`]).
    pub fn new(shared: Arc<TeamShared>, members: Vec<Option<Box<dyn Port>>>) -> TeamPort {
        let epoll = Self::epoll_of(&members);
        let out = members.iter().map(|_| Vec::new()).collect();
        let generation = shared.generation.load(Ordering::Acquire);
        let selector = shared.selector();
        TeamPort {
            shared,
            members,
            selector,
            generation,
            out,
            next_rx: 0,
            epoll,
        }
    }

    fn epoll_of(members: &[Option<Box<dyn Port>>]) -> Option<Epoll> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).ok()?;
        for m in members.iter().flatten() {
            let fd = m.wake_fd()?;
            // SAFETY: `fd` belongs to the member port, which lives in
            // `self.members` as long as the epoll instance (both are fields
            // of the same TeamPort and dropped together); epoll only keeps
            // the number and never closes it.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, fd as u64);
            epoll.add(borrowed, ev).ok()?;
        }
        Some(epoll)
    }

    /// The shared state.
    pub fn shared(&self) -> &Arc<TeamShared> {
        &self.shared
    }

    #[inline]
    fn refresh_selector(&mut self) {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.selector = self.shared.selector();
            self.generation = g;
        }
    }
}

/// Whether `frame` is a team beacon: untagged or behind one VLAN tag
/// (any TPID of [`wire::is_vlan_tpid`], the rule `teaming`'s beacon parser
/// follows too).
#[inline]
fn is_beacon(frame: &[u8]) -> bool {
    EthernetHeader::parse(frame).is_some_and(|h| h.payload_ethertype() == BEACON_ETHERTYPE)
}

impl Port for TeamPort {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize {
        self.refresh_selector();
        let n = self.members.len();
        if n == 0 {
            return 0;
        }
        let start = self.next_rx % n;
        self.next_rx = (start + 1) % n;
        let mut got = 0;
        for k in 0..n {
            if got >= max {
                break;
            }
            let m = (start + k) % n;
            let Some(port) = self.members[m].as_mut() else {
                continue;
            };
            let before = out.len();
            let received = port.rx_burst(pool, out, max - got);
            if received == 0 {
                continue;
            }
            let member = MemberIndex(m as u8);
            let ctr = &self.shared.counters[m];
            let (mut bytes, mut filtered, mut beacons, mut lost) = (0u64, 0u64, 0u64, 0u64);
            // Keep the accepted frames in order at the front of the new
            // part; the rest end up behind `w` and are freed.
            let mut w = before;
            for i in before..out.len() {
                let frame = out[i].data();
                bytes += frame.len() as u64;
                if is_beacon(frame) {
                    beacons += 1;
                    let rb = ReceivedBeacon {
                        member,
                        frame: frame.to_vec(),
                    };
                    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                        self.shared.beacons.try_send(rb)
                    {
                        lost += 1;
                    }
                    continue;
                }
                if !self.selector.accept(member, frame) {
                    filtered += 1;
                    continue;
                }
                out.swap(w, i);
                w += 1;
            }
            for p in out.drain(w..) {
                pool.free(p);
            }
            ctr.rx_packets.add(received as u64);
            ctr.rx_bytes.add(bytes);
            if filtered > 0 {
                ctr.rx_filtered.add(filtered);
            }
            if beacons > 0 {
                ctr.rx_beacons.add(beacons);
            }
            if lost > 0 {
                ctr.rx_beacons_dropped.add(lost);
            }
            got += w - before;
        }
        got
    }

    fn tx_burst(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome {
        self.refresh_selector();
        let mut res = TxOutcome::default();
        for pkt in pkts.drain(..) {
            let m = self
                .selector
                .select(GuestPort(pkt.origin()), pkt.data())
                .map(MemberIndex::get)
                .filter(|&m| self.members.get(m).is_some_and(Option::is_some));
            match m {
                Some(m) => self.out[m].push(pkt),
                None => {
                    res.dropped += 1;
                    pool.free(pkt);
                }
            }
        }
        if res.dropped > 0 {
            self.shared.no_member.add(res.dropped as u64);
        }
        for (m, q) in self.out.iter_mut().enumerate() {
            if q.is_empty() {
                continue;
            }
            let Some(port) = self.members[m].as_mut() else {
                // Filtered above: only members that exist get frames.
                res.dropped += q.len();
                pool.free_all(q);
                continue;
            };
            let r = port.tx_burst(q, pool);
            let ctr = &self.shared.counters[m];
            ctr.tx_packets.add(r.sent as u64);
            ctr.tx_bytes.add(r.bytes as u64);
            if r.dropped > 0 {
                ctr.tx_dropped.add(r.dropped as u64);
            }
            res.sent += r.sent;
            res.bytes += r.bytes;
            res.dropped += r.dropped;
        }
        res
    }

    fn wake_fd(&self) -> Option<RawFd> {
        self.epoll.as_ref().map(|e| e.0.as_fd().as_raw_fd())
    }

    fn set_rx_notify(&mut self, on: bool) -> bool {
        let mut waiting = false;
        for m in self.members.iter_mut().flatten() {
            waiting |= m.set_rx_notify(on);
        }
        waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::{MemPortPeer, mem_port};
    use teaming::{Team, TeamPolicy, TeamSpec, Timestamp};

    fn frame(dst: [u8; 6], src: [u8; 6], ty: u16, len: usize) -> Packet {
        let mut f = vec![0u8; len.max(60)];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&ty.to_be_bytes());
        Packet::from_frame(&f)
    }

    struct Rig {
        team: Team,
        shared: Arc<TeamShared>,
        beacons: Receiver<ReceivedBeacon>,
        port: TeamPort,
        peers: Vec<MemPortPeer>,
        pool: PacketPool,
    }

    fn rig(policy: TeamPolicy, n: usize) -> Rig {
        let names: Vec<String> = (0..n).map(|i| format!("eth{i}")).collect();
        let mut team =
            Team::new(TeamSpec::new(policy, names.clone()), Timestamp::ZERO).expect("valid team");
        for i in 0..n {
            team.set_link(MemberIndex(i as u8), true, Timestamp::ZERO)
                .expect("member");
        }
        let (shared, beacons) = TeamShared::new("team0", names, *team.selector());
        let mut peers = Vec::new();
        let mut members: Vec<Option<Box<dyn Port>>> = Vec::new();
        for _ in 0..n {
            let (peer, mut qs) = mem_port(1, 256);
            peers.push(peer);
            members.push(Some(Box::new(qs.remove(0))));
        }
        let port = TeamPort::new(shared.clone(), members);
        Rig {
            team,
            shared,
            beacons,
            port,
            peers,
            pool: PacketPool::new(64, 2048),
        }
    }

    fn drain(peer: &mut MemPortPeer) -> Vec<Packet> {
        let mut v = Vec::new();
        peer.recv_all(&mut v);
        v
    }

    #[test]
    fn port_id_pins_each_origin_to_one_member_and_failover_moves_only_the_failed_ones() {
        let mut r = rig(TeamPolicy::PortId, 2);
        let mut burst = Vec::new();
        for origin in 0..8u16 {
            for k in 0..3u8 {
                let mut p = frame(
                    [0x02, 0, 0, 0, 0, k],
                    [0x52, 0, 0, 0, 0, origin as u8],
                    0x0800,
                    60,
                );
                p.set_origin(origin);
                burst.push(p);
            }
        }
        let res = r.port.tx_burst(&mut burst, &mut r.pool);
        assert!(burst.is_empty());
        assert_eq!((res.sent, res.dropped), (24, 0));
        let got: Vec<Vec<u8>> = r
            .peers
            .iter_mut()
            .map(|p| drain(p).iter().map(|p| p.data()[11]).collect())
            .collect();
        // Each origin on exactly one member, all its frames there, and both used.
        for origin in 0..8u8 {
            let on: Vec<usize> = (0..2).filter(|&m| got[m].contains(&origin)).collect();
            assert_eq!(on.len(), 1, "origin {origin} on {on:?}");
            assert_eq!(got[on[0]].iter().filter(|&&o| o == origin).count(), 3);
        }
        assert!(!got[0].is_empty() && !got[1].is_empty());
        assert_eq!(
            r.shared
                .member_counters(MemberIndex(0))
                .map(|c| c.tx_packets),
            Some(got[0].len() as u64)
        );

        // eth0 fails: everything on eth1; the origins already there stay.
        r.team
            .set_link(MemberIndex(0), false, Timestamp::from_secs(1))
            .expect("member");
        r.shared.publish(*r.team.selector());
        let mut burst = Vec::new();
        for origin in 0..8u16 {
            let mut p = frame(
                [0x02, 0, 0, 0, 0, 9],
                [0x52, 0, 0, 0, 0, origin as u8],
                0x0800,
                60,
            );
            p.set_origin(origin);
            burst.push(p);
        }
        let res = r.port.tx_burst(&mut burst, &mut r.pool);
        assert_eq!(res.sent, 8);
        assert!(drain(&mut r.peers[0]).is_empty());
        assert_eq!(drain(&mut r.peers[1]).len(), 8);
    }

    #[test]
    fn no_usable_member_drops_and_counts() {
        let mut r = rig(TeamPolicy::SrcMac, 2);
        for i in 0..2 {
            r.team
                .set_link(MemberIndex(i), false, Timestamp::from_secs(1))
                .expect("member");
        }
        r.shared.publish(*r.team.selector());
        let mut burst = vec![frame([2; 6], [0x52, 0, 0, 0, 0, 1], 0x0800, 60)];
        let res = r.port.tx_burst(&mut burst, &mut r.pool);
        assert_eq!((res.sent, res.dropped), (0, 1));
        assert_eq!(r.shared.no_member_drops(), 1);
        assert!(r.peers.iter_mut().all(|p| drain(p).is_empty()));
    }

    #[test]
    fn broadcast_passes_only_on_the_designated_member_and_beacons_go_to_the_control_plane() {
        let mut r = rig(TeamPolicy::PortId, 2);
        let designated = r
            .shared
            .selector()
            .designated_receiver()
            .expect("one member is up");
        let other = MemberIndex(1 - designated.0);
        for m in [designated, other] {
            let peer = &mut r.peers[m.get()];
            peer.send(0, frame([0xff; 6], [0x0a, 0, 0, 0, 0, 1], 0x0806, 60))
                .expect("room");
            peer.send(
                0,
                frame([0x52, 0, 0, 0, 0, 1], [0x0a, 0, 0, 0, 0, 2], 0x0800, 60),
            )
            .expect("room");
            peer.send(
                0,
                frame([0xff; 6], [0x0a, 0, 0, 0, 0, 3], BEACON_ETHERTYPE, 60),
            )
            .expect("room");
        }
        let mut out = Vec::new();
        let mut total = 0;
        for _ in 0..2 {
            total += r.port.rx_burst(&mut r.pool, &mut out, 32);
        }
        // Unicast from both, broadcast only from the designated member.
        assert_eq!(total, 3);
        assert_eq!(out.len(), 3);
        let bcasts = out.iter().filter(|p| p.data()[0] == 0xff).count();
        assert_eq!(bcasts, 1);
        let d = r.shared.member_counters(designated).expect("member");
        let o = r.shared.member_counters(other).expect("member");
        assert_eq!((d.rx_packets, d.rx_filtered, d.rx_beacons), (3, 0, 1));
        assert_eq!((o.rx_packets, o.rx_filtered, o.rx_beacons), (3, 1, 1));
        let got: Vec<MemberIndex> = r.beacons.try_iter().map(|b| b.member).collect();
        assert_eq!(got.len(), 2);
        assert!(got.contains(&designated) && got.contains(&other));
    }

    #[test]
    fn ip_hash_keeps_a_pair_on_one_member_and_spreads_pairs() {
        let mut r = rig(TeamPolicy::IpHash, 2);
        let ipv4 = |s: u8, d: u8| {
            let mut f = vec![0u8; 60];
            f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
            f[6..12].copy_from_slice(&[0x52, 0, 0, 0, 0, 1]);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[14] = 0x45;
            f[16..18].copy_from_slice(&46u16.to_be_bytes());
            f[23] = 17;
            f[26..30].copy_from_slice(&[10, 0, 0, s]);
            f[30..34].copy_from_slice(&[10, 0, 1, d]);
            Packet::from_frame(&f)
        };
        let mut burst = Vec::new();
        for s in 1..=16u8 {
            for _ in 0..4 {
                burst.push(ipv4(s, 100));
            }
        }
        let res = r.port.tx_burst(&mut burst, &mut r.pool);
        assert_eq!(res.sent, 64);
        let per: Vec<Vec<u8>> = r
            .peers
            .iter_mut()
            .map(|p| drain(p).iter().map(|p| p.data()[29]).collect())
            .collect();
        for s in 1..=16u8 {
            let on = (0..2).filter(|&m| per[m].contains(&s)).count();
            assert_eq!(on, 1, "pair {s} split or lost");
        }
        assert!(
            !per[0].is_empty() && !per[1].is_empty(),
            "16 pairs all on one member"
        );
    }

    #[test]
    fn beacon_detection() {
        let mut f = vec![0u8; 64];
        f[12..14].copy_from_slice(&BEACON_ETHERTYPE.to_be_bytes());
        assert!(is_beacon(&f));
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        assert!(!is_beacon(&f));
        f[16..18].copy_from_slice(&BEACON_ETHERTYPE.to_be_bytes());
        assert!(is_beacon(&f));
        assert!(!is_beacon(&f[..15]));
        f[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
        assert!(is_beacon(&f));
        f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
        assert!(!is_beacon(&f));
    }
}
