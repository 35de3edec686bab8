//! Release: a VF back to a clean state ([`release_settings`]) and to its
//! host driver.

use std::time::{Duration, Instant};

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
            Ok(Some(change)) => {
                out.driver.push(change);
                self.after_host_bind(vf, release_mac, &mut out)?;
            }
            Ok(None) => {}
            Err(e) => out.errors.push(e.to_string()),
        }
        Ok(out)
    }

    /// The host driver just bound again, and may have chosen a MAC of its
    /// own (igbvf assigns a random one to a VF whose MAC is zero): read
    /// the VF back so the report is what the VF has. A configured release
    /// MAC the driver replaced is set again; a MAC the driver chose is
    /// reported as a change, since nobody configured it.
    fn after_host_bind(
        &mut self,
        vf: &VfInfo,
        release_mac: Option<MacAddr>,
        out: &mut VfOutcome,
    ) -> Result<(), Error> {
        let want = release_mac.unwrap_or(MacAddr::ZERO);
        // The driver's probe sets the MAC through the PF shortly after the
        // bind: wait for it, bounded, since a driver that keeps zero (or
        // the release MAC) makes every release wait the whole bound. The
        // whole release of an igbvf VF took 65 ms in the emulated-igb
        // guest suite (tests/sriov_igb.rs prints it).
        let deadline = Instant::now() + self.timeout.min(Duration::from_millis(500));
        let mut state = self.read_vf(&vf.pf, vf.index)?;
        while state.as_ref().is_some_and(|s| s.mac == want) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            state = self.read_vf(&vf.pf, vf.index)?;
        }
        let Some(now) = state else {
            return Ok(());
        };
        if now.mac != want {
            let driver = self.vf(&vf.pf, vf.index)?.driver.unwrap_or_default();
            if let Some(mac) = release_mac {
                let again = self.apply_settings(&vf.pf, vf.index, &[VfSetting::Mac(mac)], true)?;
                out.changed.extend(
                    again
                        .changed
                        .into_iter()
                        .map(|c| format!("{c}, after {driver} chose {}", now.mac)),
                );
                out.refused.extend(again.refused);
                out.mismatches.extend(again.mismatches);
                out.state = again.state;
                return Ok(());
            }
            out.changed.push(format!(
                "mac {} (chosen by {driver} when it bound: no release-mac is configured)",
                now.mac
            ));
        }
        out.state = Some(now);
        Ok(())
    }
}
