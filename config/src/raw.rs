//! The file as written: serde structs that mirror the YAML, with source
//! positions (`Spanned`) on every value a semantic check may point at.
//!
//! Nothing here is validated beyond YAML syntax and types; `validate` turns a
//! [`RawConfig`] into the [`crate::Config`] model.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A value with its position in the file.
pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub runtime: Option<S<RawRuntime>>,
    #[serde(default)]
    pub switches: Vec<S<RawSwitch>>,
    #[serde(default)]
    pub sriov: Vec<S<RawPf>>,
    #[serde(default)]
    pub metrics: Option<S<RawMetrics>>,
}

/// `metrics:`: the Prometheus endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawMetrics {
    #[serde(default)]
    pub listen: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawRuntime {
    #[serde(default)]
    pub pmd_cores: Vec<S<RawRange>>,
    #[serde(default)]
    pub idle: Option<S<RawIdle>>,
    #[serde(default)]
    pub runtime_dir: Option<S<String>>,
    #[serde(default)]
    pub control_socket: Option<S<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawIdle {
    Busy,
    Adaptive,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawSwitch {
    pub name: S<String>,
    #[serde(default)]
    pub mtu: Option<S<i64>>,
    #[serde(default)]
    pub mac_table: Option<S<RawMacTable>>,
    #[serde(default)]
    pub port_groups: Vec<S<RawPortGroup>>,
    #[serde(default)]
    pub ports: Vec<S<RawPort>>,
    #[serde(default)]
    pub uplinks: Vec<S<RawUplink>>,
    #[serde(default)]
    pub teams: Vec<S<RawTeam>>,
    // Defaults for the `socket-*` keys of the switch's server ports, as
    // written (a plain `0660` stays the text `0660`: modes are octal).
    #[serde(default)]
    pub socket_owner: Option<S<String>>,
    #[serde(default)]
    pub socket_group: Option<S<String>>,
    #[serde(default)]
    pub socket_mode: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawMacTable {
    #[serde(default)]
    pub max_entries: Option<S<i64>>,
    #[serde(default)]
    pub aging_seconds: Option<S<i64>>,
    #[serde(default)]
    pub per_port_limit: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawPortGroup {
    pub name: S<String>,
    #[serde(default)]
    pub vlan: Option<S<RawVlan>>,
    #[serde(default)]
    pub security: Option<S<RawSecurity>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawSecurity {
    #[serde(default)]
    pub promiscuous: Option<S<RawVerdict>>,
    #[serde(default)]
    pub mac_changes: Option<S<RawVerdict>>,
    #[serde(default)]
    pub forged_transmits: Option<S<RawVerdict>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawPortType {
    VhostUser,
    Internal,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawVhostMode {
    Server,
    Client,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawPort {
    pub name: S<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<S<RawPortType>>,
    #[serde(default)]
    pub socket: Option<S<String>>,
    #[serde(default)]
    pub mode: Option<S<RawVhostMode>>,
    #[serde(default)]
    pub port_group: Option<S<String>>,
    #[serde(default)]
    pub vlan: Option<S<RawVlan>>,
    #[serde(default)]
    pub security: Option<S<RawSecurity>>,
    #[serde(default)]
    pub mac: Option<S<String>>,
    #[serde(default)]
    pub queues: Option<S<i64>>,
    #[serde(default)]
    pub socket_owner: Option<S<String>>,
    #[serde(default)]
    pub socket_group: Option<S<String>>,
    #[serde(default)]
    pub socket_mode: Option<S<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawDriver {
    AfXdp,
    AfPacket,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawUplink {
    pub name: S<String>,
    #[serde(default)]
    pub driver: Option<S<RawDriver>>,
    #[serde(default)]
    pub port_group: Option<S<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawPolicy {
    PortId,
    IpHash,
    SrcMac,
    ExplicitFailover,
    L4Hash,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawDetection {
    Link,
    Beacon,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawTeam {
    pub name: S<String>,
    #[serde(default)]
    pub policy: Option<S<RawPolicy>>,
    #[serde(default)]
    pub active: Vec<S<String>>,
    #[serde(default)]
    pub standby: Vec<S<String>>,
    #[serde(default)]
    pub unused: Vec<S<String>>,
    #[serde(default)]
    pub failback: Option<S<bool>>,
    #[serde(default)]
    pub failure_detection: Option<S<RawDetection>>,
    #[serde(default)]
    pub notify_switches: Option<S<bool>>,
    #[serde(default)]
    pub port_group: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawPf {
    pub pf: S<String>,
    pub num_vfs: S<i64>,
    #[serde(default)]
    pub vfs: Vec<S<RawVf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawVf {
    pub index: S<i64>,
    #[serde(default)]
    pub mac: Option<S<String>>,
    #[serde(default)]
    pub port_group: Option<S<String>>,
    #[serde(default)]
    pub trust: Option<S<bool>>,
    #[serde(default)]
    pub spoof_check: Option<S<bool>>,
    #[serde(default)]
    pub rate: Option<S<RawRate>>,
    #[serde(default)]
    pub qos: Option<S<i64>>,
    #[serde(default)]
    pub vlan_protocol: Option<S<String>>,
    #[serde(default)]
    pub link_state: Option<S<RawLinkState>>,
    #[serde(default)]
    pub release_mac: Option<S<String>>,
    #[serde(default)]
    pub vfio: Option<S<bool>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawLinkState {
    Auto,
    Enable,
    Disable,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawRate {
    #[serde(default)]
    pub min_mbps: Option<S<i64>>,
    #[serde(default)]
    pub max_mbps: Option<S<i64>>,
}

/// `accept` / `reject`, or a boolean (`true` = accept); anything else is
/// kept as written and reported by validation (serde-saphyr would place an
/// error from this visitor at the key, not the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawVerdict(pub Result<bool, String>);

impl<'de> Deserialize<'de> for RawVerdict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawVerdict;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`accept`, `reject`, `true` or `false`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawVerdict, E> {
                Ok(RawVerdict(Ok(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawVerdict, E> {
                Ok(RawVerdict(match v {
                    "accept" => Ok(true),
                    "reject" => Ok(false),
                    _ => Err(v.to_string()),
                }))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawVerdict, E> {
                Ok(RawVerdict(Err(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawVerdict, E> {
                Ok(RawVerdict(Err(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawVerdict, E> {
                Ok(RawVerdict(Err(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer or an inclusive range written `"lo-hi"`, as in a trunk list
/// (`[10, 20-29]`) or `pmd-cores`. Bounds are checked later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawRange {
    pub lo: i64,
    pub hi: i64,
}

fn parse_range(v: &str) -> Option<RawRange> {
    let v = v.trim();
    if let Some((a, b)) = v.split_once('-')
        && !a.trim().is_empty()
    {
        let lo = a.trim().parse().ok()?;
        let hi = b.trim().parse().ok()?;
        return Some(RawRange { lo, hi });
    }
    let n = v.parse().ok()?;
    Some(RawRange { lo: n, hi: n })
}

impl<'de> Deserialize<'de> for RawRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a range like `20-29`")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawRange, E> {
                Ok(RawRange { lo: v, hi: v })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawRange, E> {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                Ok(RawRange { lo: v, hi: v })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRange, E> {
                parse_range(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `vlan:` value of a port group or a port.
#[derive(Debug)]
pub(crate) enum RawVlan {
    /// `vlan: 10`: access VLAN (checked later: may be 0 or 4095).
    Access(i64),
    /// `vlan: all`: guest tagging.
    All,
    /// A scalar that is none of the above, as written (reported by
    /// validation, which knows the value's position).
    Invalid(String),
    /// A bare list (`vlan: [10, 20]`): ambiguous, reported by validation.
    List,
    /// `vlan: { trunk: [...], native: N }`.
    Trunk {
        trunk: Option<S<Vec<S<RawRange>>>>,
        native: Option<S<i64>>,
    },
}

const VLAN_KEYS: &[&str] = &["trunk", "native"];

impl<'de> Deserialize<'de> for RawVlan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawVlan;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a VLAN ID (1-4094), `all` for guest tagging, \
                     or a mapping `{ trunk: [10, 20-29], native: 1 }`",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawVlan, E> {
                Ok(RawVlan::Access(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawVlan, E> {
                Ok(RawVlan::Access(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawVlan, E> {
                match v.trim() {
                    "all" => Ok(RawVlan::All),
                    t => Ok(t
                        .parse::<i64>()
                        .map_or_else(|_| RawVlan::Invalid(v.to_string()), RawVlan::Access)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawVlan, E> {
                Ok(RawVlan::Invalid(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawVlan, E> {
                Ok(RawVlan::Invalid(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawVlan, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(RawVlan::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawVlan, A::Error> {
                let mut trunk = None;
                let mut native = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "trunk" => {
                            if trunk.is_some() {
                                return Err(de::Error::duplicate_field("trunk"));
                            }
                            trunk = Some(map.next_value()?);
                        }
                        "native" => {
                            if native.is_some() {
                                return Err(de::Error::duplicate_field("native"));
                            }
                            native = Some(map.next_value()?);
                        }
                        other => return Err(de::Error::unknown_field(other, VLAN_KEYS)),
                    }
                }
                Ok(RawVlan::Trunk { trunk, native })
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("20-29"), Some(RawRange { lo: 20, hi: 29 }));
        assert_eq!(parse_range(" 7 "), Some(RawRange { lo: 7, hi: 7 }));
        assert_eq!(parse_range("-3"), Some(RawRange { lo: -3, hi: -3 }));
        assert_eq!(parse_range("a-b"), None);
        assert_eq!(parse_range(""), None);
    }
}
