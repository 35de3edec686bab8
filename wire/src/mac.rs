//! The one MAC address type of the workspace.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet MAC address.
///
/// Displayed (and shown by `{:?}`) as six lower-case hex pairs separated by
/// colons; parsed from six hex pairs separated all by `:` or all by `-`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (for an SR-IOV VF: "no administratively set MAC").
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address from the first six bytes of `b`, `None` if shorter.
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Option<MacAddr> {
        b.first_chunk::<6>().map(|m| MacAddr(*m))
    }

    /// The six bytes.
    #[inline]
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Group (multicast or broadcast) address: I/G bit set.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// One station: I/G bit clear.
    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Locally administered: U/L bit set.
    #[inline]
    pub fn is_locally_administered(&self) -> bool {
        self.0[0] & 2 != 0
    }

    /// All ones.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// All zeros.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// 01:80:c2:00:00:00 to 01:80:c2:00:00:0f: the IEEE 802.1D link-local
    /// group (STP, pause, LACP, LLDP, 802.1X) that a bridge never forwards.
    #[inline]
    pub fn is_link_local_reserved(&self) -> bool {
        self.0[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && self.0[5] & 0xf0 == 0
    }

    /// An address no bridge forwards, the same list as Open vSwitch's
    /// reserved addresses: the IEEE 802.1D link-local group
    /// ([`MacAddr::is_link_local_reserved`]); Cisco's 01:00:0c:00:00:00
    /// (ISL), 01:00:0c:cc:cc:cc (CDP, VTP, DTP, PAgP, UDLD),
    /// 01:00:0c:cc:cc:cd (PVST+ BPDUs), 01:00:0c:cd:cd:cd (STP UplinkFast)
    /// and 01:00:0c:cc:cc:c0-c7 (CFM); Extreme's 00:e0:2b:00:00:00 (EDP)
    /// and 00:e0:2b:00:00:04/06 (EAPS). A guest's PVST+ BPDU reaching a
    /// physical switch can err-disable its port (BPDU guard).
    #[inline]
    pub fn is_l2_control(&self) -> bool {
        self.is_link_local_reserved()
            || matches!(
                self.to_u64(),
                0x0100_0c00_0000
                    | 0x0100_0ccc_cccc
                    | 0x0100_0ccc_cccd
                    | 0x0100_0ccd_cdcd
                    | 0x0100_0ccc_ccc0
                    ..=0x0100_0ccc_ccc7 | 0x00e0_2b00_0000 | 0x00e0_2b00_0004 | 0x00e0_2b00_0006
            )
    }

    /// The address as the low 48 bits of an integer.
    #[inline]
    pub fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The address from the low 48 bits of an integer.
    #[inline]
    pub fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl From<[u8; 6]> for MacAddr {
    #[inline]
    fn from(b: [u8; 6]) -> MacAddr {
        MacAddr(b)
    }
}

impl From<MacAddr> for [u8; 6] {
    #[inline]
    fn from(m: MacAddr) -> [u8; 6] {
        m.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    /// Six pairs of hex digits separated by `:` or `-` (one kind throughout).
    fn from_str(s: &str) -> Result<MacAddr, MacParseError> {
        let err = || MacParseError(s.to_string());
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// As the display string, `"52:54:00:12:34:56"`.
#[cfg(feature = "serde")]
impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// From a string, as [`FromStr`] parses it; the error quotes at most 64
/// characters of what the peer sent.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|MacParseError(s)| {
            serde::de::Error::custom(MacParseError(s.chars().take(64).collect()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let m: MacAddr = "52:54:00:AB:cd:ef".parse().expect("valid");
        assert_eq!(m.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(format!("{m:?}"), "52:54:00:ab:cd:ef");
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert_eq!("52-54-00-ab-cd-ef".parse::<MacAddr>(), Ok(m));
        for bad in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:ef:01",
            "52:54:00:ab:cd:eg",
            "5:54:00:ab:cd:ef",
            "+1:54:00:00:00:01",
            "52:54-00:ab:cd:ef",
        ] {
            assert_eq!(
                bad.parse::<MacAddr>(),
                Err(MacParseError(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            MacParseError("x".into()).to_string(),
            "`x` is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)"
        );
    }

    #[test]
    fn classes() {
        let stp: MacAddr = "01:80:c2:00:00:00".parse().expect("valid");
        let lldp: MacAddr = "01:80:c2:00:00:0e".parse().expect("valid");
        let not: MacAddr = "01:80:c2:00:00:10".parse().expect("valid");
        assert!(stp.is_link_local_reserved() && lldp.is_link_local_reserved());
        assert!(!not.is_link_local_reserved());
        assert!(stp.is_l2_control() && !not.is_l2_control());
        for vendor in [
            "01:00:0c:00:00:00",
            "01:00:0c:cc:cc:cc",
            "01:00:0c:cc:cc:cd",
            "01:00:0c:cd:cd:cd",
            "01:00:0c:cc:cc:c0",
            "01:00:0c:cc:cc:c7",
            "00:e0:2b:00:00:00",
            "00:e0:2b:00:00:04",
            "00:e0:2b:00:00:06",
        ] {
            let m: MacAddr = vendor.parse().expect("valid");
            assert!(m.is_l2_control() && !m.is_link_local_reserved(), "{m}");
        }
        for other in [
            "01:00:0c:cc:cc:ce",
            "01:00:0c:cc:cc:c8",
            "00:e0:2b:00:00:01",
            "01:00:5e:00:00:01",
        ] {
            let m: MacAddr = other.parse().expect("valid");
            assert!(!m.is_l2_control(), "{m}");
        }
        assert!(not.is_multicast() && !not.is_unicast() && !not.is_broadcast());
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr::ZERO.is_zero() && MacAddr::default().is_zero());
        assert!(MacAddr([0x02, 0, 0, 0, 0, 1]).is_locally_administered());
        assert!(!MacAddr([0x52, 0x54, 0, 0, 0, 1]).is_multicast());
        assert_eq!(MacAddr::from_bytes(&[1, 2, 3, 4, 5]), None);
        assert_eq!(
            MacAddr::from_bytes(&[1, 2, 3, 4, 5, 6, 7]),
            Some(MacAddr([1, 2, 3, 4, 5, 6]))
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_as_string() {
        let m = MacAddr([0x02, 0xaa, 0xbb, 0, 0, 1]);
        assert_eq!(
            serde_json::to_string(&m).expect("ser"),
            "\"02:aa:bb:00:00:01\""
        );
        assert_eq!(
            serde_json::from_str::<MacAddr>("\"02:AA:bb:00:00:01\"").expect("de"),
            m
        );
        let long = format!("\"{}\"", "a".repeat(100));
        let e = serde_json::from_str::<MacAddr>(&long).expect_err("bad");
        assert!(e.to_string().starts_with(&format!("`{}`", "a".repeat(64))));
    }
}
