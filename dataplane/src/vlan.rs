//! VLAN rules of a port: access, trunk (allowed list + native VLAN) and
//! guest tagging (VMware's VLAN 4095).
//!
//! Inside the switch every frame belongs to exactly one VLAN (1-4094) and
//! carries the priority bits (PCP + DEI) it arrived with. The rules follow
//! Open vSwitch's `vlan_mode` where VMware is silent:
//! - access: untagged frames join the port's VLAN; a priority-tagged frame
//!   (VID 0) is accepted and its PCP kept; any other tag is dropped
//!   (`vlan_tagged_on_access`);
//! - trunk: a tagged frame must carry an allowed VID; untagged and
//!   priority-tagged frames join the native VLAN if there is one, else
//!   they are dropped;
//! - guest tagging: a trunk with every VLAN allowed.
//!
//! Double tags (VLAN hopping: the outer tag is stripped on the way out and
//! the inner one then steers the next switch) are handled in one place:
//! classification only reports `inner_tagged`, and the pipeline drops such
//! a frame (`vlan_double_tagged`) if its VLAN leaves untagged on any port —
//! which covers a priority tag on an access port, the native VLAN of a
//! trunk, and a VLAN that is native or access anywhere else.
//!
//! 802.1ad / 0x9100 outer tags are not customer tags: access ports drop
//! them as tagged, trunks drop them as `vlan_bad_tpid`.

use wire::{EthernetHeader, TPID_8021Q, is_vlan_tpid, tci_priority_bits, tci_vid};

use crate::stats::DropReason;

/// Highest usable VLAN ID.
pub const VLAN_MAX: u16 = 4094;

/// A set of VLAN IDs as a 4096-bit map.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet {
    bits: Box<[u64; 64]>,
}

impl std::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VlanSet({})", self.to_ranges_string())
    }
}

impl Default for VlanSet {
    fn default() -> Self {
        Self::empty()
    }
}

impl VlanSet {
    /// No VLAN.
    pub fn empty() -> Self {
        VlanSet {
            bits: Box::new([0; 64]),
        }
    }

    /// Every VLAN 1-4094.
    pub fn all() -> Self {
        let mut s = Self::empty();
        s.insert_range(1, VLAN_MAX);
        s
    }

    /// The VLANs of the inclusive ranges given (IDs outside 1-4094 ignored).
    pub fn from_ranges(ranges: &[(u16, u16)]) -> Self {
        let mut s = Self::empty();
        for &(a, b) in ranges {
            s.insert_range(a, b);
        }
        s
    }

    /// Adds one VLAN (ignored outside 1-4094).
    pub fn insert(&mut self, vid: u16) {
        if (1..=VLAN_MAX).contains(&vid) {
            self.bits[usize::from(vid >> 6)] |= 1 << (vid & 63);
        }
    }

    /// Adds an inclusive range.
    pub fn insert_range(&mut self, a: u16, b: u16) {
        for v in a.max(1)..=b.min(VLAN_MAX) {
            self.insert(v);
        }
    }

    /// Membership test (false for 0 and 4095).
    #[inline]
    pub fn contains(&self, vid: u16) -> bool {
        vid <= 4095 && self.bits[usize::from(vid >> 6)] & (1 << (vid & 63)) != 0
    }

    /// The members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (1..=VLAN_MAX).filter(|&v| self.contains(v))
    }

    /// `10,20-29` style rendering.
    pub fn to_ranges_string(&self) -> String {
        let mut out = Vec::new();
        let mut start: Option<u16> = None;
        for v in 1..=VLAN_MAX + 1 {
            let inside = v <= VLAN_MAX && self.contains(v);
            match (inside, start) {
                (true, None) => start = Some(v),
                (false, Some(s)) => {
                    let e = v - 1;
                    out.push(if s == e {
                        format!("{s}")
                    } else {
                        format!("{s}-{e}")
                    });
                    start = None;
                }
                _ => {}
            }
        }
        out.join(",")
    }
}

/// How a port takes part in VLANs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged to the port, tagged with this VLAN inside.
    Access(u16),
    /// Tagged to the port for the allowed VLANs; the native VLAN (if any)
    /// travels untagged. The native VLAN is a member even if not listed.
    Trunk {
        /// VLANs that pass tagged.
        allowed: VlanSet,
        /// VLAN of untagged frames.
        native: Option<u16>,
    },
    /// Every VLAN passes, the guest tags (VMware's VLAN 4095). Untagged
    /// frames join `native` if set.
    GuestTagging {
        /// VLAN of untagged frames.
        native: Option<u16>,
    },
}

/// What to do with the tag when a frame leaves on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Egress {
    /// Send without a tag.
    Untagged,
    /// Send with an 802.1Q tag for the frame's VLAN.
    Tagged,
}

/// Where an accepted frame belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified {
    /// The frame's VLAN (1-4094).
    pub vid: u16,
    /// PCP and DEI bits in TCI position (high nibble), kept to the egress tag.
    pub priority: u16,
    /// The frame still carries its outer tag in the buffer.
    pub tagged: bool,
    /// Another VLAN tag follows the outer one: stripping the outer tag
    /// would expose it, so the pipeline drops such frames in VLANs that
    /// leave untagged anywhere.
    pub inner_tagged: bool,
}

impl VlanMode {
    fn native(&self) -> Option<u16> {
        match self {
            VlanMode::Access(v) => Some(*v),
            VlanMode::Trunk { native, .. } | VlanMode::GuestTagging { native } => *native,
        }
    }

    fn allows_tagged(&self, vid: u16) -> bool {
        match self {
            VlanMode::Access(_) => false,
            VlanMode::Trunk { allowed, .. } => allowed.contains(vid),
            VlanMode::GuestTagging { .. } => (1..=VLAN_MAX).contains(&vid),
        }
    }

    /// True if frames of `vid` may leave (or enter) this port.
    #[inline]
    pub fn is_member(&self, vid: u16) -> bool {
        self.native() == Some(vid) || self.allows_tagged(vid)
    }

    /// How a frame of `vid` leaves this port, or `None` if the port is not
    /// in that VLAN.
    #[inline]
    pub fn egress(&self, vid: u16) -> Option<Egress> {
        if self.native() == Some(vid) {
            Some(Egress::Untagged)
        } else if self.allows_tagged(vid) {
            Some(Egress::Tagged)
        } else {
            None
        }
    }

    /// The VLANs this port is a member of.
    pub fn members(&self) -> VlanSet {
        let mut s = match self {
            VlanMode::Access(_) => VlanSet::empty(),
            VlanMode::Trunk { allowed, .. } => allowed.clone(),
            VlanMode::GuestTagging { .. } => VlanSet::all(),
        };
        if let Some(n) = self.native() {
            s.insert(n);
        }
        s
    }

    /// Ingress rule: the VLAN a frame arriving on this port belongs to, or
    /// the reason it is dropped.
    #[inline]
    pub fn classify(&self, h: &EthernetHeader) -> Result<Classified, DropReason> {
        let Some(tci) = h.tci else {
            return match self.native() {
                Some(vid) => Ok(Classified {
                    vid,
                    priority: 0,
                    tagged: false,
                    inner_tagged: false,
                }),
                None => Err(DropReason::VlanUntaggedNoNative),
            };
        };
        let vid = tci_vid(tci);
        let priority = tci_priority_bits(tci);
        let inner_tagged = h.inner_ethertype.is_some_and(is_vlan_tpid);
        if let VlanMode::Access(access) = self {
            // Only an 802.1Q priority tag (VID 0) is tolerated on access.
            if h.ethertype != TPID_8021Q || vid != 0 {
                return Err(DropReason::VlanTaggedOnAccess);
            }
            return Ok(Classified {
                vid: *access,
                priority,
                tagged: true,
                inner_tagged,
            });
        }
        if h.ethertype != TPID_8021Q {
            return Err(DropReason::VlanBadTpid);
        }
        if vid == 0 {
            // Priority tag: the frame is untagged for VLAN purposes.
            return match self.native() {
                Some(n) => Ok(Classified {
                    vid: n,
                    priority,
                    tagged: true,
                    inner_tagged,
                }),
                None => Err(DropReason::VlanUntaggedNoNative),
            };
        }
        if self.is_member(vid) {
            Ok(Classified {
                vid,
                priority,
                tagged: true,
                inner_tagged,
            })
        } else {
            Err(DropReason::VlanNotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{TPID_8021AD, TPID_8021Q};

    fn hdr(tags: &[(u16, u16)]) -> EthernetHeader {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for &(tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.resize(64, 0);
        EthernetHeader::parse(&f).expect("valid frame")
    }

    fn trunk(ranges: &[(u16, u16)], native: Option<u16>) -> VlanMode {
        VlanMode::Trunk {
            allowed: VlanSet::from_ranges(ranges),
            native,
        }
    }

    /// (name, port mode, tags on the frame, expected classification)
    type IngressCase = (
        &'static str,
        VlanMode,
        Vec<(u16, u16)>,
        Result<Classified, DropReason>,
    );

    #[test]
    fn ingress_table() {
        use DropReason::*;
        let q = TPID_8021Q;
        let ok = |vid, priority, tagged| {
            Ok(Classified {
                vid,
                priority,
                tagged,
                inner_tagged: false,
            })
        };
        #[rustfmt::skip]
        let cases: Vec<IngressCase> = vec![
            ("access untagged", VlanMode::Access(10), vec![], ok(10, 0, false)),
            ("access tagged other", VlanMode::Access(10), vec![(q, 20)], Err(VlanTaggedOnAccess)),
            ("access tagged own vid", VlanMode::Access(10), vec![(q, 10)], Err(VlanTaggedOnAccess)),
            ("access priority tag keeps pcp", VlanMode::Access(10), vec![(q, 0xa000)], ok(10, 0xa000, true)),
            ("access double tag", VlanMode::Access(10), vec![(q, 20), (q, 30)], Err(VlanTaggedOnAccess)),
            ("access priority+inner tag", VlanMode::Access(10), vec![(q, 0), (q, 30)], Ok(Classified { vid: 10, priority: 0, tagged: true, inner_tagged: true })),
            ("access s-tag", VlanMode::Access(10), vec![(TPID_8021AD, 10)], Err(VlanTaggedOnAccess)),
            ("trunk allowed", trunk(&[(10, 20)], None), vec![(q, 15)], ok(15, 0, true)),
            ("trunk pcp kept", trunk(&[(10, 20)], None), vec![(q, 0xe000 | 15)], ok(15, 0xe000, true)),
            ("trunk not allowed", trunk(&[(10, 20)], None), vec![(q, 21)], Err(VlanNotAllowed)),
            ("trunk untagged no native", trunk(&[(10, 20)], None), vec![], Err(VlanUntaggedNoNative)),
            ("trunk untagged native", trunk(&[(10, 20)], Some(5)), vec![], ok(5, 0, false)),
            ("trunk tagged native vid", trunk(&[(10, 20)], Some(5)), vec![(q, 5)], ok(5, 0, true)),
            ("trunk priority tag -> native", trunk(&[(10, 20)], Some(5)), vec![(q, 0x2000)], ok(5, 0x2000, true)),
            ("trunk priority tag no native", trunk(&[(10, 20)], None), vec![(q, 0x2000)], Err(VlanUntaggedNoNative)),
            ("trunk double tag on native", trunk(&[(10, 20)], Some(5)), vec![(q, 5), (q, 10)], Ok(Classified { vid: 5, priority: 0, tagged: true, inner_tagged: true })),
            ("trunk double tag on vlan", trunk(&[(10, 20)], Some(5)), vec![(q, 10), (q, 11)], Ok(Classified { vid: 10, priority: 0, tagged: true, inner_tagged: true })),
            ("trunk s-tag", trunk(&[(10, 20)], Some(5)), vec![(TPID_8021AD, 10)], Err(VlanBadTpid)),
            ("trunk vid 4095", trunk(&[(1, 4094)], None), vec![(q, 4095)], Err(VlanNotAllowed)),
            ("vgt any vlan", VlanMode::GuestTagging { native: None }, vec![(q, 4000)], ok(4000, 0, true)),
            ("vgt untagged dropped", VlanMode::GuestTagging { native: None }, vec![], Err(VlanUntaggedNoNative)),
            ("vgt untagged native", VlanMode::GuestTagging { native: Some(1) }, vec![], ok(1, 0, false)),
            ("vgt vid 4095", VlanMode::GuestTagging { native: None }, vec![(q, 4095)], Err(VlanNotAllowed)),
        ];
        for (name, mode, tags, want) in cases {
            assert_eq!(mode.classify(&hdr(&tags)), want, "{name}");
        }
    }

    #[test]
    fn egress_table() {
        let t = trunk(&[(10, 20)], Some(5));
        assert_eq!(t.egress(5), Some(Egress::Untagged));
        assert_eq!(t.egress(12), Some(Egress::Tagged));
        assert_eq!(t.egress(30), None);
        let a = VlanMode::Access(7);
        assert_eq!(a.egress(7), Some(Egress::Untagged));
        assert_eq!(a.egress(8), None);
        let g = VlanMode::GuestTagging { native: None };
        assert_eq!(g.egress(1), Some(Egress::Tagged));
        assert_eq!(g.egress(4094), Some(Egress::Tagged));
        assert_eq!(g.egress(0), None);
    }

    #[test]
    fn vlan_set_ranges() {
        let s = VlanSet::from_ranges(&[(10, 12), (20, 20), (0, 0), (4094, 5000)]);
        assert_eq!(s.to_ranges_string(), "10-12,20,4094");
        assert!(!s.contains(0) && !s.contains(4095) && s.contains(11));
        assert_eq!(VlanSet::all().iter().count(), 4094);
    }
}
