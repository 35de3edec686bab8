//! [`Sriov`]: the SR-IOV manager, one job per file:
//!
//! - `spec.rs`: what a PF and its VFs should look like ([`PfSpec`],
//!   [`VfSpec`], [`VlanSpec`]);
//! - `discover.rs`: PFs and VFs as sysfs shows them ([`PfInfo`],
//!   [`VfInfo`]) and the VMMs holding VFIO groups ([`Holder`]);
//! - `vf_count.rs`: the VF count lifecycle;
//! - `settings.rs`: VF settings with read-back;
//! - `bind.rs`: the vfio-pci hand-off and back to the host driver;
//! - `release.rs`: release ([`release_settings`]);
//! - `reconcile.rs`: the whole-PF reconcile ([`Sriov::apply_pf`]);
//! - `report.rs`: what the work did ([`VfOutcome`], [`PfReport`]);
//! - `show.rs`, `attach.rs`: the views ([`PfView`], [`VfView`],
//!   [`AttachInfo`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::netlink::VfLink;
use crate::sysfs::Sysfs;
use crate::vfio::Vfio;

mod attach;
mod bind;
mod discover;
mod reconcile;
mod release;
mod report;
mod settings;
mod show;
mod spec;
mod vf_count;

pub use attach::AttachInfo;
pub use discover::{Holder, PfInfo, VfInfo};
pub use release::release_settings;
pub use report::{PfReport, VfOutcome};
pub use show::{PfView, VfView};
pub use spec::{PfSpec, VfSpec, VlanSpec};

/// The SR-IOV manager: sysfs, rtnetlink and VFIO behind their seams.
#[derive(Debug)]
pub struct Sriov<L, V> {
    sysfs: Sysfs,
    proc_root: PathBuf,
    link: L,
    vfio: V,
    timeout: Duration,
}

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// A manager on `sysfs`, with `/proc` for finding VFIO holders and a
    /// 10 s wait for new VFs.
    pub fn new(sysfs: Sysfs, link: L, vfio: V) -> Sriov<L, V> {
        Sriov {
            sysfs,
            proc_root: PathBuf::from("/proc"),
            link,
            vfio,
            timeout: Duration::from_secs(10),
        }
    }

    /// Where `/proc` is (tests use a fake one).
    pub fn with_proc_root(mut self, proc_root: impl Into<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self
    }

    /// How long to wait for VFs to appear after setting the count.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The sysfs it works on.
    pub fn sysfs(&self) -> &Sysfs {
        &self.sysfs
    }
}
