//! The MAC learning table, keyed by (VLAN, MAC).
//!
//! One table per PMD thread (a replica): lookups and learning never take a
//! lock. A PMD that learns something new tells its peers through
//! [`crate::pmd`]'s sync channels and they apply it between bursts, so
//! every replica converges on the same entries.
//!
//! Limits protect the table from a guest that floods source MACs: a port
//! never holds more than its per-port limit, the table never more than its
//! global limit, and learning never evicts an existing entry — a flood
//! can only fail to learn, never push other ports' MACs out. Entries leave
//! by ageing (`aging_secs`, default 300 s as in OVS and VMware) or flushes.
//! Static entries never age and are never moved by learning.
//!
//! In front of the hash table sits a small direct-mapped cache of recent
//! keys (like OVS's exact-match cache): with a large table, most lookups
//! and refreshes of the active addresses then hit a 64 KiB array instead of
//! missing the CPU cache twice in the hash table. The cache holds no
//! negative entries; any move or removal in the table bumps a generation
//! number that invalidates every cached entry at once.

use hashbrown::HashMap;

use std::net::Ipv4Addr;

use wire::MacAddr;

use crate::port::PortId;

/// Limits and ageing of a MAC table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacTableSpec {
    /// Most entries in the table (static ones included).
    pub max_entries: usize,
    /// Most dynamic entries one port may hold.
    pub per_port_limit: u32,
    /// Seconds after which an entry not seen again expires.
    pub aging_secs: u32,
}

impl Default for MacTableSpec {
    fn default() -> Self {
        MacTableSpec {
            max_entries: 65536,
            per_port_limit: 4096,
            aging_secs: 300,
        }
    }
}

/// Key of an entry: VLAN in bits 48-59, MAC in bits 0-47.
#[inline]
pub fn mac_key(vid: u16, mac: MacAddr) -> u64 {
    (u64::from(vid) << 48) | mac.to_u64()
}

/// The (VLAN, MAC) of a key.
#[inline]
pub fn split_key(key: u64) -> (u16, MacAddr) {
    // The VLAN occupies 12 bits: the cast keeps them all.
    #[allow(clippy::cast_possible_truncation)]
    let vid = (key >> 48) as u16;
    (vid, MacAddr::from_u64(key & 0xffff_ffff_ffff))
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    port: PortId,
    is_static: bool,
    last_seen: u32,
    last_synced: u32,
    /// IPv4 address the host behind this MAC announced in its own ARP
    /// frames on this port (see [`MacTable::set_ipv4`]).
    ipv4: Option<Ipv4Addr>,
}

/// What learning a source address did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Already known on this port; timestamp refreshed.
    Refreshed,
    /// Refreshed and due to be re-announced to the peer PMDs.
    RefreshedSync,
    /// A new entry.
    New,
    /// The MAC moved here from another port.
    Moved {
        /// Where it was.
        from: PortId,
    },
    /// Not learned: the port is at its limit.
    PortLimit,
    /// Not learned: the table is full.
    TableFull,
    /// A static entry owns this address on another port; nothing changed.
    Static,
}

impl Learned {
    /// True if peers must hear about it.
    #[inline]
    pub fn needs_sync(self) -> bool {
        matches!(
            self,
            Learned::New | Learned::Moved { .. } | Learned::RefreshedSync
        )
    }
}

/// A row of the table, for dumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacTableRow {
    /// VLAN.
    pub vid: u16,
    /// Address.
    pub mac: MacAddr,
    /// Port it lives on.
    pub port: PortId,
    /// Never ages.
    pub is_static: bool,
    /// Seconds since it was last seen.
    pub age_secs: u32,
    /// IPv4 address seen in its ARP frames on this port, if any.
    pub ipv4: Option<Ipv4Addr>,
}

/// Seconds between re-announcements of an active entry to peer PMDs.
pub const SYNC_INTERVAL_SECS: u32 = 1;

/// A (VLAN, MAC) -> port table with ageing and limits.
#[derive(Debug)]
pub struct MacTable {
    map: HashMap<u64, Entry>,
    per_port: Vec<u32>,
    spec: MacTableSpec,
    cache: Box<[CacheSlot]>,
    generation: u32,
}

/// Slots in the exact-match cache (a power of two).
const CACHE_SLOTS: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct CacheSlot {
    key: u64,
    port: PortId,
    /// Last-seen time of the entry when cached (a lower bound of the truth).
    seen: u32,
    generation: u32,
}

const EMPTY_SLOT: CacheSlot = CacheSlot {
    key: u64::MAX,
    port: PortId(0),
    seen: 0,
    generation: 0,
};

#[inline]
fn cache_index(key: u64) -> usize {
    // Fibonacci hashing: the top bits of the product index the cache.
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - CACHE_SLOTS.trailing_zeros())) as usize
}

impl MacTable {
    /// An empty table for ports `0..max_ports`.
    pub fn new(spec: MacTableSpec, max_ports: usize) -> Self {
        MacTable {
            map: HashMap::with_capacity(spec.max_entries.min(1 << 20)),
            per_port: vec![0; max_ports],
            spec,
            cache: vec![EMPTY_SLOT; CACHE_SLOTS].into_boxed_slice(),
            generation: 1,
        }
    }

    /// Current limits.
    pub fn spec(&self) -> MacTableSpec {
        self.spec
    }

    /// Changes limits; existing entries stay even if now above a limit.
    pub fn set_spec(&mut self, spec: MacTableSpec) {
        self.spec = spec;
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Dynamic entries held by a port.
    pub fn port_count(&self, port: PortId) -> u32 {
        self.per_port.get(usize::from(port.0)).copied().unwrap_or(0)
    }

    fn count_add(&mut self, port: PortId) {
        if let Some(c) = self.per_port.get_mut(usize::from(port.0)) {
            *c += 1;
        }
    }

    fn count_sub(&mut self, port: PortId) {
        if let Some(c) = self.per_port.get_mut(usize::from(port.0)) {
            *c = c.saturating_sub(1);
        }
    }

    /// Forgets every cached entry (after a move or removal).
    #[inline]
    fn invalidate_cache(&mut self) {
        self.generation = self.generation.wrapping_add(1).max(1);
    }

    #[inline]
    fn cached(&self, key: u64) -> Option<CacheSlot> {
        let s = self.cache[cache_index(key)];
        (s.key == key && s.generation == self.generation).then_some(s)
    }

    #[inline]
    fn cache_put(&mut self, key: u64, port: PortId, seen: u32) {
        self.cache[cache_index(key)] = CacheSlot {
            key,
            port,
            seen,
            generation: self.generation,
        };
    }

    /// The port that owns (VLAN, MAC), if known and not expired.
    #[inline]
    pub fn lookup(&mut self, key: u64, now: u32) -> Option<PortId> {
        if let Some(s) = self.cached(key)
            && now.saturating_sub(s.seen) <= self.spec.aging_secs
        {
            return Some(s.port);
        }
        // One hash-table probe; cache the entry's own last-seen time
        // (statics never expire: `now`).
        let e = *self.map.get(&key)?;
        if !e.is_static && now.saturating_sub(e.last_seen) > self.spec.aging_secs {
            return None;
        }
        let seen = if e.is_static { now } else { e.last_seen };
        self.cache_put(key, e.port, seen);
        Some(e.port)
    }

    /// [`MacTable::lookup`] without the cache.
    #[inline]
    pub fn lookup_table(&self, key: u64, now: u32) -> Option<PortId> {
        let e = self.map.get(&key)?;
        if e.is_static || now.saturating_sub(e.last_seen) <= self.spec.aging_secs {
            Some(e.port)
        } else {
            None
        }
    }

    /// Learns that (VLAN, MAC) was seen as a source on `port` at `now`.
    #[inline]
    pub fn learn(&mut self, key: u64, port: PortId, now: u32) -> Learned {
        // Already refreshed on this port this second: nothing to do.
        if let Some(s) = self.cached(key)
            && s.port == port
            && s.seen == now
        {
            return Learned::Refreshed;
        }
        let learned = self.learn_table(key, port, now);
        match learned {
            Learned::Moved { .. } => {
                self.invalidate_cache();
                self.cache_put(key, port, now);
            }
            Learned::New | Learned::Refreshed | Learned::RefreshedSync => {
                self.cache_put(key, port, now);
            }
            Learned::PortLimit | Learned::TableFull | Learned::Static => {}
        }
        learned
    }

    #[inline]
    fn learn_table(&mut self, key: u64, port: PortId, now: u32) -> Learned {
        let port_full = self.port_count(port) >= self.spec.per_port_limit;
        if let Some(e) = self.map.get_mut(&key) {
            if e.port == port {
                if !e.is_static {
                    // A peer PMD's clock may be a second ahead of ours
                    // or behind: time never goes back for an entry.
                    e.last_seen = e.last_seen.max(now);
                }
                if now.saturating_sub(e.last_synced) >= SYNC_INTERVAL_SECS {
                    e.last_synced = now;
                    return Learned::RefreshedSync;
                }
                return Learned::Refreshed;
            }
            if e.is_static {
                return Learned::Static;
            }
            let from = e.port;
            let expired = now.saturating_sub(e.last_seen) > self.spec.aging_secs;
            if port_full {
                return Learned::PortLimit;
            }
            e.port = port;
            e.last_seen = now;
            e.last_synced = now;
            // Whatever it said on its old port is not known here.
            e.ipv4 = None;
            self.count_sub(from);
            self.count_add(port);
            return if expired {
                Learned::New
            } else {
                Learned::Moved { from }
            };
        }
        if port_full {
            return Learned::PortLimit;
        }
        if self.map.len() >= self.spec.max_entries {
            return Learned::TableFull;
        }
        self.map.insert(
            key,
            Entry {
                port,
                is_static: false,
                last_seen: now,
                last_synced: now,
                ipv4: None,
            },
        );
        self.count_add(port);
        Learned::New
    }

    /// Applies a peer PMD's learning event: like [`MacTable::learn`], but
    /// never triggers a new announcement; an IPv4 address it carries is
    /// recorded as [`MacTable::set_ipv4`] would.
    pub fn apply_remote(&mut self, key: u64, port: PortId, seen: u32, ipv4: Option<Ipv4Addr>) {
        if let Learned::Refreshed | Learned::RefreshedSync = self.learn(key, port, seen)
            && let Some(e) = self.map.get_mut(&key)
        {
            e.last_synced = e.last_synced.max(seen);
        }
        if let Some(ip) = ipv4 {
            self.set_ipv4(key, port, ip);
        }
    }

    /// Records that the host behind `key` on `port` announced `ip` (ARP
    /// snooping, for the gratuitous ARPs a team sends after a failover).
    /// Only an entry learned on `port` takes it. Returns true if the
    /// address is new for the entry.
    pub fn set_ipv4(&mut self, key: u64, port: PortId, ip: Ipv4Addr) -> bool {
        match self.map.get_mut(&key) {
            Some(e) if e.port == port && e.ipv4 != Some(ip) => {
                e.ipv4 = Some(ip);
                true
            }
            _ => false,
        }
    }

    /// Adds or replaces a static entry (limits do not apply).
    pub fn insert_static(&mut self, key: u64, port: PortId) {
        self.invalidate_cache();
        if let Some(old) = self.map.insert(
            key,
            Entry {
                port,
                is_static: true,
                last_seen: 0,
                last_synced: 0,
                ipv4: None,
            },
        ) && !old.is_static
        {
            self.count_sub(old.port);
        }
    }

    /// Removes every static entry.
    pub fn clear_static(&mut self) {
        self.invalidate_cache();
        self.map.retain(|_, e| !e.is_static);
    }

    /// Removes expired dynamic entries; returns how many.
    pub fn age(&mut self, now: u32) -> usize {
        self.invalidate_cache();
        let aging = self.spec.aging_secs;
        let before = self.map.len();
        let per_port = &mut self.per_port;
        self.map.retain(|_, e| {
            let keep = e.is_static || now.saturating_sub(e.last_seen) <= aging;
            if !keep && let Some(c) = per_port.get_mut(usize::from(e.port.0)) {
                *c = c.saturating_sub(1);
            }
            keep
        });
        before - self.map.len()
    }

    /// Removes every dynamic entry of a port; returns how many.
    pub fn flush_port(&mut self, port: PortId) -> usize {
        self.invalidate_cache();
        let before = self.map.len();
        self.map.retain(|_, e| e.is_static || e.port != port);
        if let Some(c) = self.per_port.get_mut(usize::from(port.0)) {
            *c = 0;
        }
        before - self.map.len()
    }

    /// Removes the dynamic entries of VLAN `vid` (every VLAN when `None`)
    /// on `port` (every port when `None`); static entries stay. Returns
    /// how many were removed.
    pub fn flush_matching(&mut self, vid: Option<u16>, port: Option<PortId>) -> usize {
        self.invalidate_cache();
        let before = self.map.len();
        let per_port = &mut self.per_port;
        self.map.retain(|&k, e| {
            let hit = !e.is_static
                && vid.is_none_or(|v| split_key(k).0 == v)
                && port.is_none_or(|p| e.port == p);
            if hit && let Some(c) = per_port.get_mut(usize::from(e.port.0)) {
                *c = c.saturating_sub(1);
            }
            !hit
        });
        before - self.map.len()
    }

    /// Removes every dynamic entry.
    pub fn flush(&mut self) {
        self.invalidate_cache();
        self.map.retain(|_, e| e.is_static);
        self.per_port.iter_mut().for_each(|c| *c = 0);
    }

    /// Every entry, for `vswitchctl` and tests (slow path).
    pub fn rows(&self, now: u32) -> Vec<MacTableRow> {
        let mut rows: Vec<MacTableRow> = self
            .map
            .iter()
            .map(|(&k, e)| {
                let (vid, mac) = split_key(k);
                MacTableRow {
                    vid,
                    mac,
                    port: e.port,
                    is_static: e.is_static,
                    age_secs: if e.is_static {
                        0
                    } else {
                        now.saturating_sub(e.last_seen)
                    },
                    ipv4: e.ipv4,
                }
            })
            .collect();
        rows.sort_by_key(|r| (r.vid, r.mac));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u64) -> MacAddr {
        MacAddr::from_u64(0x0200_0000_0000 | n)
    }

    fn table(max: usize, per_port: u32, aging: u32) -> MacTable {
        MacTable::new(
            MacTableSpec {
                max_entries: max,
                per_port_limit: per_port,
                aging_secs: aging,
            },
            16,
        )
    }

    #[test]
    fn an_entry_stamped_by_a_peer_clock_ahead_of_ours_is_fresh() {
        // PMDs read the clock every few dozen polls, so a peer can announce
        // an entry seen at second 11 while this PMD still says 10. That
        // entry must not look 4 billion seconds old (which floods unicast).
        let mut t = table(100, 100, 300);
        t.apply_remote(mac_key(1, mac(1)), PortId(1), 11, None);
        assert_eq!(t.lookup(mac_key(1, mac(1)), 10), Some(PortId(1)));
        assert_eq!(t.lookup_table(mac_key(1, mac(1)), 10), Some(PortId(1)));
        assert_eq!(t.age(10), 0);
        assert_eq!(t.rows(10).len(), 1);
        // An older stamp from a slower peer does not make it older.
        t.apply_remote(mac_key(1, mac(1)), PortId(1), 5, None);
        assert_eq!(t.lookup_table(mac_key(1, mac(1)), 310), Some(PortId(1)));
        assert_eq!(t.lookup_table(mac_key(1, mac(1)), 312), None);
    }

    #[test]
    fn learn_lookup_and_vlan_separation() {
        let mut t = table(100, 100, 300);
        assert_eq!(t.learn(mac_key(10, mac(1)), PortId(1), 0), Learned::New);
        assert_eq!(t.lookup(mac_key(10, mac(1)), 0), Some(PortId(1)));
        assert_eq!(t.lookup(mac_key(20, mac(1)), 0), None, "keyed by VLAN too");
        assert_eq!(t.learn(mac_key(20, mac(1)), PortId(2), 0), Learned::New);
        assert_eq!(t.lookup(mac_key(10, mac(1)), 0), Some(PortId(1)));
        assert_eq!(t.lookup(mac_key(20, mac(1)), 0), Some(PortId(2)));
    }

    #[test]
    fn aging_expires_and_refresh_keeps() {
        let mut t = table(100, 100, 300);
        let a = mac_key(1, mac(1));
        let b = mac_key(1, mac(2));
        t.learn(a, PortId(1), 0);
        t.learn(b, PortId(1), 0);
        assert_eq!(t.learn(a, PortId(1), 200), Learned::RefreshedSync);
        assert_eq!(
            t.lookup(b, 300),
            Some(PortId(1)),
            "300 s is not yet expired"
        );
        assert_eq!(t.lookup(b, 301), None);
        assert_eq!(t.lookup(a, 301), Some(PortId(1)));
        assert_eq!(t.age(301), 1);
        assert_eq!(t.len(), 1);
        assert_eq!(t.port_count(PortId(1)), 1);
    }

    #[test]
    fn moves_are_detected_and_counted() {
        let mut t = table(100, 100, 300);
        let a = mac_key(1, mac(1));
        t.learn(a, PortId(1), 0);
        assert_eq!(t.learn(a, PortId(2), 5), Learned::Moved { from: PortId(1) });
        assert_eq!(t.lookup(a, 5), Some(PortId(2)));
        assert_eq!((t.port_count(PortId(1)), t.port_count(PortId(2))), (0, 1));
        // An expired entry that reappears elsewhere is new, not a move.
        assert_eq!(t.learn(a, PortId(3), 400), Learned::New);
    }

    #[test]
    fn per_port_limit_protects_others() {
        let mut t = table(10, 4, 300);
        for i in 0..3 {
            assert_eq!(t.learn(mac_key(1, mac(i)), PortId(1), 0), Learned::New);
        }
        // Port 2 floods: it gets 4 entries, no more, and evicts nobody.
        for i in 100..200 {
            t.learn(mac_key(1, mac(i)), PortId(2), 0);
        }
        assert_eq!(t.port_count(PortId(2)), 4);
        assert_eq!(
            t.learn(mac_key(1, mac(999)), PortId(2), 0),
            Learned::PortLimit
        );
        for i in 0..3 {
            assert_eq!(t.lookup(mac_key(1, mac(i)), 0), Some(PortId(1)));
        }
        // A move into a full port is refused as well.
        assert_eq!(
            t.learn(mac_key(1, mac(0)), PortId(2), 0),
            Learned::PortLimit
        );
        assert_eq!(t.lookup(mac_key(1, mac(0)), 0), Some(PortId(1)));
    }

    #[test]
    fn global_limit_refuses_new_entries() {
        let mut t = table(5, 100, 300);
        for i in 0..5 {
            assert_eq!(t.learn(mac_key(1, mac(i)), PortId(1), 0), Learned::New);
        }
        assert_eq!(
            t.learn(mac_key(1, mac(5)), PortId(3), 0),
            Learned::TableFull
        );
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn static_entries_never_move_or_age() {
        let mut t = table(100, 100, 300);
        let s = mac_key(1, mac(7));
        t.insert_static(s, PortId(4));
        assert_eq!(t.learn(s, PortId(5), 10), Learned::Static);
        assert_eq!(t.lookup(s, 100_000), Some(PortId(4)));
        t.age(100_000);
        t.flush_port(PortId(4));
        assert_eq!(t.lookup(s, 100_000), Some(PortId(4)));
        t.clear_static();
        assert!(t.is_empty());
    }

    #[test]
    fn flush_matching_keeps_statics_and_other_vlans_and_ports() {
        let mut t = table(100, 100, 300);
        let (a, b) = (mac_key(10, mac(1)), mac_key(20, mac(2)));
        let (c, s) = (mac_key(10, mac(3)), mac_key(10, mac(4)));
        t.learn(a, PortId(1), 0);
        t.learn(b, PortId(1), 0);
        t.learn(c, PortId(2), 0);
        t.insert_static(s, PortId(1));
        assert_eq!(t.flush_matching(Some(10), Some(PortId(1))), 1);
        assert_eq!(t.lookup(a, 0), None);
        assert_eq!(t.port_count(PortId(1)), 1);
        assert_eq!(t.flush_matching(None, None), 2);
        assert_eq!(t.len(), 1, "only the static entry is left");
        assert_eq!(t.lookup(s, 0), Some(PortId(1)));
        assert_eq!(t.port_count(PortId(1)), 0);
        assert_eq!(t.port_count(PortId(2)), 0);
    }

    #[test]
    fn flush_port_only_touches_that_port() {
        let mut t = table(100, 100, 300);
        t.learn(mac_key(1, mac(1)), PortId(1), 0);
        t.learn(mac_key(1, mac(2)), PortId(2), 0);
        assert_eq!(t.flush_port(PortId(1)), 1);
        assert_eq!(t.lookup(mac_key(1, mac(2)), 0), Some(PortId(2)));
        assert_eq!(t.port_count(PortId(1)), 0);
    }

    #[test]
    fn cache_never_outlives_the_table() {
        let mut t = table(100, 100, 300);
        let a = mac_key(1, mac(1));
        t.learn(a, PortId(1), 0);
        assert_eq!(t.lookup(a, 0), Some(PortId(1)), "fills the cache");
        t.flush_port(PortId(1));
        assert_eq!(t.lookup(a, 0), None, "flush invalidates the cache");
        t.learn(a, PortId(1), 0);
        assert_eq!(t.lookup(a, 0), Some(PortId(1)));
        t.learn(a, PortId(2), 1);
        assert_eq!(
            t.lookup(a, 1),
            Some(PortId(2)),
            "a move invalidates the cache"
        );
        assert_eq!(t.lookup(a, 302), None, "cached entries still expire");
        t.age(302);
        assert!(t.is_empty());
        // Static entries survive in and out of the cache.
        t.insert_static(a, PortId(3));
        assert_eq!(t.lookup(a, 5000), Some(PortId(3)));
        assert_eq!(t.lookup(a, 100_000), Some(PortId(3)));
    }

    #[test]
    fn key_round_trip() {
        let m = mac(0xabcdef);
        assert_eq!(split_key(mac_key(4094, m)), (4094, m));
    }
}
