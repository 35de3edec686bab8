//! VF settings over rtnetlink (`IFLA_VFINFO_LIST` on the PF), behind the
//! [`VfLink`] trait so tests can record calls instead of sending them.
//!
//! [`RtNetlink`] is the real thing: a synchronous `NETLINK_ROUTE` socket
//! (no async runtime). Each setting is its own `RTM_SETLINK`, so a driver
//! that refuses one attribute (EOPNOTSUPP) does not take the others down
//! with it; the caller turns that errno into a per-VF warning.

use std::fmt;
use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    LinkAttribute, LinkExtentMask, LinkMessage, LinkVfInfo, VfInfo, VfInfoLinkState, VfInfoMac,
    VfInfoRate, VfInfoSpoofCheck, VfInfoTrust, VfInfoVlan, VfLinkState, VfVlan, VfVlanInfo,
    VlanProtocol,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use serde::{Deserialize, Serialize};

use crate::pci::MacAddr;

/// The VLAN protocol a NIC tags a VF's frames with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum VlanProto {
    /// 802.1Q (C-tag, ethertype 0x8100): what every driver supports.
    #[default]
    #[serde(rename = "802.1Q")]
    Dot1Q,
    /// 802.1ad (S-tag, ethertype 0x88a8): QinQ, on some drivers only.
    #[serde(rename = "802.1ad")]
    Dot1Ad,
}

impl fmt::Display for VlanProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VlanProto::Dot1Q => "802.1Q",
            VlanProto::Dot1Ad => "802.1ad",
        })
    }
}

/// The administrative link state of a VF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Follows the PF's link.
    Auto,
    /// Always up (VF-to-VF traffic even when the PF has no carrier).
    Enable,
    /// Always down.
    Disable,
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkState::Auto => "auto",
            LinkState::Enable => "enable",
            LinkState::Disable => "disable",
        })
    }
}

/// One VF attribute, as `ip link set PF vf N ...` sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VfSetting {
    /// `mac` (zero: remove the administratively set MAC).
    Mac(MacAddr),
    /// `vlan ID qos Q proto P` (ID 0: no VLAN).
    Vlan {
        /// VLAN ID, 0-4094.
        id: u16,
        /// 802.1p priority, 0-7.
        qos: u8,
        /// Tag protocol.
        proto: VlanProto,
    },
    /// `spoofchk on|off`.
    SpoofCheck(bool),
    /// `trust on|off`.
    Trust(bool),
    /// `state auto|enable|disable`.
    LinkState(LinkState),
    /// `min_tx_rate` and `max_tx_rate` in Mbit/s (0: none).
    Rate {
        /// Guaranteed rate.
        min_mbps: u32,
        /// Cap.
        max_mbps: u32,
    },
}

impl VfSetting {
    /// The attribute's name as the CLI and the config spell it.
    pub fn name(&self) -> &'static str {
        match self {
            VfSetting::Mac(_) => "mac",
            VfSetting::Vlan { .. } => "vlan",
            VfSetting::SpoofCheck(_) => "spoof-check",
            VfSetting::Trust(_) => "trust",
            VfSetting::LinkState(_) => "link-state",
            VfSetting::Rate { .. } => "rate",
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

impl fmt::Display for VfSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VfSetting::Mac(m) => write!(f, "mac {m}"),
            VfSetting::Vlan { id, qos, proto } => {
                write!(f, "vlan {id}")?;
                if *qos != 0 {
                    write!(f, " qos {qos}")?;
                }
                if *proto != VlanProto::Dot1Q {
                    write!(f, " proto {proto}")?;
                }
                Ok(())
            }
            VfSetting::SpoofCheck(b) => write!(f, "spoof-check {}", on_off(*b)),
            VfSetting::Trust(b) => write!(f, "trust {}", on_off(*b)),
            VfSetting::LinkState(s) => write!(f, "link-state {s}"),
            VfSetting::Rate { min_mbps, max_mbps } => {
                write!(f, "rate min {min_mbps} max {max_mbps} Mbit/s")
            }
        }
    }
}

/// A VF's settings as the PF's driver reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfState {
    /// VF index.
    pub index: u32,
    /// Administratively set MAC (zero: none).
    pub mac: MacAddr,
    /// Port VLAN (0: none).
    pub vlan: u16,
    /// 802.1p priority of the port VLAN.
    pub qos: u8,
    /// Tag protocol, if the kernel reported it.
    pub vlan_proto: Option<VlanProto>,
    /// MAC spoof checking (off if the driver does not report it).
    pub spoof_check: bool,
    /// Trusted (off if the driver does not report it).
    pub trust: bool,
    /// Link state, if reported.
    pub link_state: Option<LinkState>,
    /// Guaranteed TX rate, Mbit/s.
    pub min_tx_rate_mbps: u32,
    /// TX rate cap, Mbit/s.
    pub max_tx_rate_mbps: u32,
}

impl VfState {
    /// What a VF looks like with nothing set (the kernel's defaults).
    pub fn unset(index: u32) -> VfState {
        VfState {
            index,
            mac: MacAddr::ZERO,
            vlan: 0,
            qos: 0,
            vlan_proto: None,
            spoof_check: true,
            trust: false,
            link_state: Some(LinkState::Auto),
            min_tx_rate_mbps: 0,
            max_tx_rate_mbps: 0,
        }
    }

    /// Whether the state shows `setting` in effect (a setting the state
    /// does not report counts as in effect).
    pub fn shows(&self, setting: &VfSetting) -> bool {
        match *setting {
            VfSetting::Mac(m) => self.mac == m,
            VfSetting::Vlan { id, qos, proto } => {
                self.vlan == id
                    && (id == 0 || self.qos == qos)
                    && (id == 0 || self.vlan_proto.is_none_or(|p| p == proto))
            }
            VfSetting::SpoofCheck(b) => self.spoof_check == b,
            VfSetting::Trust(b) => self.trust == b,
            VfSetting::LinkState(s) => self.link_state.is_none_or(|l| l == s),
            VfSetting::Rate { min_mbps, max_mbps } => {
                self.min_tx_rate_mbps == min_mbps && self.max_tx_rate_mbps == max_mbps
            }
        }
    }

    /// The value of the attribute `like` names, as a setting (for reports:
    /// "vlan 0 -> vlan 100").
    pub fn current(&self, like: &VfSetting) -> VfSetting {
        match like {
            VfSetting::Mac(_) => VfSetting::Mac(self.mac),
            VfSetting::Vlan { .. } => VfSetting::Vlan {
                id: self.vlan,
                qos: self.qos,
                proto: self.vlan_proto.unwrap_or_default(),
            },
            VfSetting::SpoofCheck(_) => VfSetting::SpoofCheck(self.spoof_check),
            VfSetting::Trust(_) => VfSetting::Trust(self.trust),
            VfSetting::LinkState(want) => VfSetting::LinkState(self.link_state.unwrap_or(*want)),
            VfSetting::Rate { .. } => VfSetting::Rate {
                min_mbps: self.min_tx_rate_mbps,
                max_mbps: self.max_tx_rate_mbps,
            },
        }
    }
}

/// Sets and reads VF attributes on a PF. Errors carry the kernel's errno
/// (`raw_os_error`): EOPNOTSUPP means "the driver cannot do this".
pub trait VfLink {
    /// Sets one attribute of VF `vf` of the PF netdev `pf`.
    fn set_vf(&mut self, pf: &str, vf: u32, setting: &VfSetting) -> io::Result<()>;
    /// Every VF's attributes, as the PF's driver reports them.
    fn vf_states(&mut self, pf: &str) -> io::Result<Vec<VfState>>;
}

/// The real [`VfLink`]: a synchronous rtnetlink socket.
#[derive(Debug)]
pub struct RtNetlink {
    socket: Option<Socket>,
    seq: u32,
    buf: Vec<u8>,
}

/// Receive buffer: a PF's reply with per-VF stats is a few KiB per VF.
const RECV_BUF: usize = 256 * 1024;

fn open_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

impl RtNetlink {
    /// Opens and binds the socket now.
    pub fn new() -> io::Result<RtNetlink> {
        Ok(RtNetlink {
            socket: Some(open_socket()?),
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Opens the socket on first use (a daemon without SR-IOV in its
    /// config never opens it); an open failure is the first call's error.
    pub fn lazy() -> RtNetlink {
        RtNetlink {
            socket: None,
            seq: 0,
            buf: Vec::new(),
        }
    }

    /// Sends one request and collects the replies up to the ack (or the
    /// one reply of a non-ack request).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        if self.socket.is_none() {
            self.socket = Some(open_socket()?);
        }
        if self.buf.len() < RECV_BUF {
            self.buf.resize(RECV_BUF, 0);
        }
        let Some(socket) = self.socket.as_mut() else {
            return Err(io::Error::from(io::ErrorKind::NotConnected));
        };
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        socket.send(&out, 0)?;

        let want_ack = flags & NLM_F_ACK != 0;
        let mut replies = Vec::new();
        loop {
            let n = socket.recv(&mut &mut self.buf[..], 0)?;
            let mut off = 0;
            while off < n {
                let bytes = self.buf.get(off..n).unwrap_or_default();
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::Error(e) if e.raw_code() != 0 => return Err(e.to_io()),
                        NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::InnerMessage(m) => {
                            replies.push(m);
                            if !want_ack {
                                return Ok(replies);
                            }
                        }
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    fn link_message(pf: &str) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(pf.to_string()));
        m
    }
}

impl VfLink for RtNetlink {
    fn set_vf(&mut self, pf: &str, vf: u32, setting: &VfSetting) -> io::Result<()> {
        let info = match *setting {
            VfSetting::Mac(m) => VfInfo::Mac(VfInfoMac::new(vf, &m.0)),
            VfSetting::Vlan {
                id,
                qos,
                proto: VlanProto::Dot1Q,
            } => VfInfo::Vlan(VfInfoVlan::new(vf, id.into(), qos.into())),
            VfSetting::Vlan {
                id,
                qos,
                proto: VlanProto::Dot1Ad,
            } => VfInfo::VlanList(vec![VfVlan::Info(VfVlanInfo::new(
                vf,
                id.into(),
                qos.into(),
                VlanProtocol::Ieee8021Ad,
            ))]),
            VfSetting::SpoofCheck(b) => VfInfo::SpoofCheck(VfInfoSpoofCheck::new(vf, b)),
            VfSetting::Trust(b) => VfInfo::Trust(VfInfoTrust::new(vf, b)),
            VfSetting::LinkState(s) => VfInfo::LinkState(VfInfoLinkState::new(
                vf,
                match s {
                    LinkState::Auto => VfLinkState::Auto,
                    LinkState::Enable => VfLinkState::Enable,
                    LinkState::Disable => VfLinkState::Disable,
                },
            )),
            VfSetting::Rate { min_mbps, max_mbps } => {
                VfInfo::Rate(VfInfoRate::new(vf, min_mbps, max_mbps))
            }
        };
        let mut m = Self::link_message(pf);
        m.attributes
            .push(LinkAttribute::VfInfoList(vec![LinkVfInfo(vec![info])]));
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_REQUEST | NLM_F_ACK)
            .map(drop)
    }

    fn vf_states(&mut self, pf: &str) -> io::Result<Vec<VfState>> {
        let mut m = Self::link_message(pf);
        m.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::Vf]));
        let replies = self.request(RouteNetlinkMessage::GetLink(m), NLM_F_REQUEST)?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewLink(link) = r else {
                continue;
            };
            for a in link.attributes {
                if let LinkAttribute::VfInfoList(vfs) = a {
                    out.extend(vfs.iter().filter_map(parse_vf));
                }
            }
        }
        out.sort_by_key(|s| s.index);
        Ok(out)
    }
}

/// One `IFLA_VF_INFO` as a [`VfState`]; `None` without a MAC attribute
/// (which carries the VF index).
fn parse_vf(info: &LinkVfInfo) -> Option<VfState> {
    let index = info.0.iter().find_map(|a| match a {
        VfInfo::Mac(m) => Some(m.vf_id),
        _ => None,
    })?;
    let mut s = VfState::unset(index);
    s.link_state = None;
    s.spoof_check = false;
    for a in &info.0 {
        match a {
            VfInfo::Mac(m) => {
                let mut mac = [0u8; 6];
                if let Some(src) = m.mac.get(..6) {
                    mac.copy_from_slice(src);
                }
                s.mac = MacAddr(mac);
            }
            VfInfo::Vlan(v) => {
                s.vlan = u16::try_from(v.vlan_id).unwrap_or(u16::MAX);
                s.qos = u8::try_from(v.qos).unwrap_or(u8::MAX);
            }
            VfInfo::VlanList(list) => {
                for v in list {
                    if let VfVlan::Info(i) = v {
                        s.vlan_proto = Some(match i.protocol {
                            VlanProtocol::Ieee8021Ad => VlanProto::Dot1Ad,
                            _ => VlanProto::Dot1Q,
                        });
                    }
                }
            }
            VfInfo::SpoofCheck(c) => s.spoof_check = c.enabled,
            VfInfo::Trust(t) => s.trust = t.enabled,
            VfInfo::LinkState(l) => {
                s.link_state = match l.state {
                    VfLinkState::Auto => Some(LinkState::Auto),
                    VfLinkState::Enable => Some(LinkState::Enable),
                    VfLinkState::Disable => Some(LinkState::Disable),
                    _ => None,
                }
            }
            VfInfo::Rate(r) => {
                s.min_tx_rate_mbps = r.min_tx_rate;
                s.max_tx_rate_mbps = r.max_tx_rate;
            }
            VfInfo::TxRate(r) if s.max_tx_rate_mbps == 0 => s.max_tx_rate_mbps = r.rate,
            _ => {}
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_display_like_ip_link() {
        let m: MacAddr = "02:00:00:00:00:01".parse().expect("mac");
        assert_eq!(VfSetting::Mac(m).to_string(), "mac 02:00:00:00:00:01");
        assert_eq!(
            VfSetting::Vlan {
                id: 100,
                qos: 3,
                proto: VlanProto::Dot1Ad
            }
            .to_string(),
            "vlan 100 qos 3 proto 802.1ad"
        );
        assert_eq!(
            VfSetting::Rate {
                min_mbps: 0,
                max_mbps: 100
            }
            .to_string(),
            "rate min 0 max 100 Mbit/s"
        );
        assert_eq!(VfSetting::SpoofCheck(true).to_string(), "spoof-check on");
    }

    #[test]
    fn state_shows() {
        let mut s = VfState::unset(0);
        s.vlan_proto = None;
        assert!(s.shows(&VfSetting::Vlan {
            id: 0,
            qos: 5,
            proto: VlanProto::Dot1Ad
        }));
        s.vlan = 100;
        s.qos = 3;
        assert!(s.shows(&VfSetting::Vlan {
            id: 100,
            qos: 3,
            proto: VlanProto::Dot1Ad
        }));
        s.vlan_proto = Some(VlanProto::Dot1Q);
        assert!(!s.shows(&VfSetting::Vlan {
            id: 100,
            qos: 3,
            proto: VlanProto::Dot1Ad
        }));
        s.link_state = None;
        assert!(s.shows(&VfSetting::LinkState(LinkState::Enable)));
    }

    #[test]
    fn parse_kernel_vf_info() {
        let info = LinkVfInfo(vec![
            VfInfo::Mac(VfInfoMac::new(2, &[2, 0, 0, 0, 0, 9])),
            VfInfo::Vlan(VfInfoVlan::new(2, 100, 3)),
            VfInfo::VlanList(vec![VfVlan::Info(VfVlanInfo::new(
                2,
                100,
                3,
                VlanProtocol::Ieee8021Q,
            ))]),
            VfInfo::SpoofCheck(VfInfoSpoofCheck::new(2, true)),
            VfInfo::Trust(VfInfoTrust::new(2, false)),
            VfInfo::Rate(VfInfoRate::new(2, 0, 100)),
        ]);
        let s = parse_vf(&info).expect("has a MAC");
        assert_eq!(s.index, 2);
        assert_eq!(s.mac.to_string(), "02:00:00:00:00:09");
        assert_eq!(
            (s.vlan, s.qos, s.vlan_proto),
            (100, 3, Some(VlanProto::Dot1Q))
        );
        assert!(s.spoof_check && !s.trust);
        assert_eq!(s.link_state, None);
        assert_eq!((s.min_tx_rate_mbps, s.max_tx_rate_mbps), (0, 100));
        assert!(parse_vf(&LinkVfInfo(vec![])).is_none());
    }
}
