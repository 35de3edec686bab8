//! SR-IOV: physical/virtual function discovery through sysfs, VF settings
//! over rtnetlink, vfio-pci binding and the VFIO hand-off to a VMM.
//!
//! Empty until the SR-IOV issue lands; the crate exists so the workspace
//! layout in DESIGN.md is real from the start.
