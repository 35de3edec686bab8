//! What a PF and its VFs should look like: [`PfSpec`], [`VfSpec`],
//! [`VlanSpec`], and the settings a VF spec applies.

use crate::netlink::{LinkState, VfSetting, VlanProto};
use crate::pci::MacAddr;

/// A port VLAN for a VF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanSpec {
    /// VLAN ID, 1-4094.
    pub id: u16,
    /// 802.1p priority, 0-7.
    pub qos: u8,
    /// Tag protocol.
    pub proto: VlanProto,
}

/// What a VF should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfSpec {
    /// VF index.
    pub index: u16,
    /// MAC to set; `None`: left as it is.
    pub mac: Option<MacAddr>,
    /// Port VLAN; `None`: untagged (VLAN 0), the guest may tag.
    pub vlan: Option<VlanSpec>,
    /// MAC spoof checking.
    pub spoof_check: bool,
    /// Trusted VF (may change MAC, go promiscuous).
    pub trust: bool,
    /// Link state; `None`: left as it is.
    pub link_state: Option<LinkState>,
    /// Guaranteed TX rate, Mbit/s (0: none).
    pub min_tx_rate_mbps: u32,
    /// TX rate cap, Mbit/s (0: none).
    pub max_tx_rate_mbps: u32,
    /// Bind the VF to vfio-pci for passthrough.
    pub vfio: bool,
    /// MAC the VF gets when released (`None`: zero, no MAC).
    pub release_mac: Option<MacAddr>,
}

impl VfSpec {
    /// A VF with the defaults: no MAC, untagged, spoof check on, trust
    /// off, no rate limit, host driver.
    pub fn new(index: u16) -> VfSpec {
        VfSpec {
            index,
            mac: None,
            vlan: None,
            spoof_check: true,
            trust: false,
            link_state: None,
            min_tx_rate_mbps: 0,
            max_tx_rate_mbps: 0,
            vfio: false,
            release_mac: None,
        }
    }

    /// The attributes this spec sets, in the order they are applied.
    pub fn settings(&self) -> Vec<VfSetting> {
        let mut out = Vec::with_capacity(6);
        if let Some(m) = self.mac {
            out.push(VfSetting::Mac(m));
        }
        out.push(match self.vlan {
            Some(v) => VfSetting::Vlan {
                id: v.id,
                qos: v.qos,
                proto: v.proto,
            },
            None => VfSetting::Vlan {
                id: 0,
                qos: 0,
                proto: VlanProto::Dot1Q,
            },
        });
        out.push(VfSetting::SpoofCheck(self.spoof_check));
        out.push(VfSetting::Trust(self.trust));
        if let Some(s) = self.link_state {
            out.push(VfSetting::LinkState(s));
        }
        out.push(VfSetting::Rate {
            min_mbps: self.min_tx_rate_mbps,
            max_mbps: self.max_tx_rate_mbps,
        });
        out
    }
}

/// What a PF should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfSpec {
    /// Netdev name of the PF.
    pub pf: String,
    /// VFs to have.
    pub num_vfs: u16,
    /// VFs with settings, by index; the others are left alone.
    pub vfs: Vec<VfSpec>,
}
