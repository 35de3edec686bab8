//! PCI addresses as sysfs spells them, and the MAC address type (the
//! `wire` crate's, as `ip link` spells it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A PCI address (domain:bus:device.function), e.g. `0000:01:10.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddr {
    /// PCI segment (domain).
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0-31.
    pub device: u8,
    /// Function number, 0-7.
    pub function: u8,
}

/// Why a PCI address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a PCI address (expected DDDD:BB:DD.F like 0000:01:10.2)")]
pub struct PciAddrError(pub String);

impl FromStr for PciAddr {
    type Err = PciAddrError;

    fn from_str(s: &str) -> Result<PciAddr, PciAddrError> {
        let err = || PciAddrError(s.chars().take(64).collect());
        let hex = |part: &str, max_len: usize| -> Result<u32, PciAddrError> {
            if part.is_empty()
                || part.len() > max_len
                || !part.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(err());
            }
            u32::from_str_radix(part, 16).map_err(|_| err())
        };
        let (domain, rest) = s.split_once(':').ok_or_else(err)?;
        let (bus, rest) = rest.split_once(':').ok_or_else(err)?;
        let (device, function) = rest.split_once('.').ok_or_else(err)?;
        let domain = hex(domain, 8)?;
        let bus = hex(bus, 2)?;
        let device = hex(device, 2)?;
        let function = hex(function, 1)?;
        if device > 31 || function > 7 {
            return Err(err());
        }
        Ok(PciAddr {
            domain,
            bus: u8::try_from(bus).map_err(|_| err())?,
            device: u8::try_from(device).map_err(|_| err())?,
            function: u8::try_from(function).map_err(|_| err())?,
        })
    }
}

impl fmt::Display for PciAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl Serialize for PciAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PciAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PciAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The workspace's one MAC address type; `MacAddr::ZERO` is "no
/// administratively set MAC" for a VF.
pub use wire::MacAddr;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addr_round_trip() {
        let a: PciAddr = "0000:01:10.2".parse().expect("valid");
        assert_eq!((a.domain, a.bus, a.device, a.function), (0, 1, 0x10, 2));
        assert_eq!(a.to_string(), "0000:01:10.2");
        let b: PciAddr = "10000:ff:1f.7".parse().expect("valid");
        assert_eq!(b.to_string(), "10000:ff:1f.7");
        for bad in [
            "",
            "0000:01:10",
            "0000:01:20.0",
            "0000:01:10.8",
            "0000:100:10.0",
            "00:01:10.0.1",
            "0000:01:1g.0",
            "0000:01:10.-1",
            "0000::10.0",
            "000000000:01:10.0",
        ] {
            assert!(bad.parse::<PciAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn mac_round_trip() {
        let m: MacAddr = "02:AA:bb:00:00:01".parse().expect("valid");
        assert_eq!(m.to_string(), "02:aa:bb:00:00:01");
        assert!(MacAddr::ZERO.is_zero() && !m.is_zero());
        for bad in [
            "",
            "02:aa:bb:00:00",
            "02:aa:bb:00:00:01:02",
            "2:aa:bb:00:00:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}
