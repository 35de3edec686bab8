//! Release: a VF back to a clean state ([`release_settings`]) and to its
//! host driver.

use crate::Error;
use crate::netlink::{LinkState, VfLink, VfSetting, VlanProto};
use crate::pci::MacAddr;
use crate::vfio::Vfio;

use super::{Sriov, VfInfo, VfOutcome};

/// The clean state a released VF gets: MAC zero (or `mac`), VLAN 0, spoof
/// check on, trust off, no rate limit, link state auto.
pub fn release_settings(mac: Option<MacAddr>) -> Vec<VfSetting> {
    vec![
        VfSetting::Mac(mac.unwrap_or(MacAddr::ZERO)),
        VfSetting::Vlan {
            id: 0,
            qos: 0,
            proto: VlanProto::Dot1Q,
        },
        VfSetting::SpoofCheck(true),
        VfSetting::Trust(false),
        VfSetting::Rate {
            min_mbps: 0,
            max_mbps: 0,
        },
        VfSetting::LinkState(LinkState::Auto),
    ]
}

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// Releases a VF: MAC zero (or `release_mac`), VLAN 0, spoof check on,
    /// trust off, rate 0, link state auto, then back to the host driver.
    /// Refuses while a VMM has it open.
    pub fn release(
        &mut self,
        vf: &VfInfo,
        release_mac: Option<MacAddr>,
    ) -> Result<VfOutcome, Error> {
        if let Some(h) = self.holder_of(vf) {
            return Err(Error::InUse {
                pci: vf.pci,
                holder: h,
            });
        }
        let mut out =
            self.apply_settings(&vf.pf, vf.index, &release_settings(release_mac), true)?;
        match self.bind_host(vf) {
            Ok(change) => out.driver.extend(change),
            Err(e) => out.errors.push(e.to_string()),
        }
        Ok(out)
    }
}
