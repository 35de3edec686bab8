//! The VFIO proof: open the container, the VF's group and the device, and
//! read its PCI config space, the way a VMM will. Behind the [`Vfio`]
//! trait so tests run without `/dev/vfio`.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vfio_ioctls::{VfioContainer, VfioDevice, VfioOps};

/// Region index of PCI config space on a vfio-pci device
/// (`VFIO_PCI_CONFIG_REGION_INDEX`).
const CONFIG_REGION: u32 = 7;
/// Regions counted in the proof: 6 BARs, ROM and config space. The ninth
/// vfio-pci region, VGA, no VF has: vfio-ioctls leaves it out of its list
/// and logs a warning for every question about it.
const PCI_REGIONS: u32 = CONFIG_REGION + 1;

/// What opening a VF through VFIO showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfioProof {
    /// IOMMU group (`/dev/vfio/N`).
    pub group: u32,
    /// Vendor ID read from config space through VFIO.
    pub vendor: u16,
    /// Device ID read from config space through VFIO.
    pub device: u16,
    /// Regions with a non-zero size.
    pub regions: u32,
    /// Size of BAR 0 in bytes.
    pub bar0_size: u64,
}

/// Why the VFIO proof failed (the underlying crate's error, boxed).
pub type VfioFailure = Box<dyn std::error::Error + Send + Sync>;

/// Opens a device through VFIO.
pub trait Vfio {
    /// Opens container, group `group` and the device at `sysfs_path`
    /// (`/sys/bus/pci/devices/BDF`), reads its config space, closes it all.
    fn prove(&self, sysfs_path: &Path, group: u32) -> Result<VfioProof, VfioFailure>;
}

/// The real [`Vfio`]: `vfio-ioctls` on `/dev/vfio` (no KVM).
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelVfio;

impl Vfio for KernelVfio {
    fn prove(&self, sysfs_path: &Path, group: u32) -> Result<VfioProof, VfioFailure> {
        let container = Arc::new(VfioContainer::new(None)?);
        let ops: Arc<dyn VfioOps> = container;
        let device = VfioDevice::new(sysfs_path, ops, false)?;
        // region_read logs and leaves the buffer alone on failure: start
        // from all-ones, which no device reports as its IDs.
        let mut ids = [0xffu8; 4];
        device.region_read(CONFIG_REGION, &mut ids, 0);
        let vendor = u16::from_le_bytes([ids[0], ids[1]]);
        let dev = u16::from_le_bytes([ids[2], ids[3]]);
        if vendor == 0xffff {
            return Err("config space read through VFIO returned no device".into());
        }
        let regions = (0..PCI_REGIONS)
            .filter(|&i| device.get_region_size(i) > 0)
            .count();
        Ok(VfioProof {
            group,
            vendor,
            device: dev,
            regions: u32::try_from(regions).unwrap_or(u32::MAX),
            bar0_size: device.get_region_size(0),
        })
    }
}
