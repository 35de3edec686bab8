//! sysfs under a configurable root (`/sys` in production, a temporary
//! tree in tests).
//!
//! Everything read here is treated as untrusted text: values are size
//! limited, parsed strictly, and a bad or missing value is an error that
//! names the file, never a panic. Writes go through a [`SysfsWriter`] so a
//! test can play the kernel's side (create VFs when `sriov_numvfs` is
//! written, bind drivers on `drivers_probe`, ...).

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::pci::PciAddr;

/// Most bytes read from one sysfs attribute (they are a page at most).
const MAX_ATTR: u64 = 4096;

/// A failed sysfs access.
#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A value could not be written.
    #[error("cannot write `{value}` to {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// Why (the kernel's errno).
        #[source]
        source: io::Error,
    },
    /// A file held something other than what it should.
    #[error("{}: `{value}` is not {expected}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Its contents (at most 64 characters).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// Writes sysfs attributes; the real one writes files, a fake one plays
/// the kernel.
pub trait SysfsWriter: Send + Sync + fmt::Debug {
    /// Writes `value` to the attribute at `path` (one `write(2)`).
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
}

/// The real writer: one `write(2)` on an existing attribute.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelWriter;

impl SysfsWriter for KernelWriter {
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).open(path)?;
        f.write_all(value.as_bytes())
    }
}

/// sysfs mounted at `root`.
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
    writer: Arc<dyn SysfsWriter>,
}

impl Sysfs {
    /// sysfs at `root` (normally `/sys`), written with real writes.
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs::with_writer(root, Arc::new(KernelWriter))
    }

    /// sysfs at `root`, written through `writer`.
    pub fn with_writer(root: impl Into<PathBuf>, writer: Arc<dyn SysfsWriter>) -> Sysfs {
        Sysfs {
            root: root.into(),
            writer,
        }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `class/net/IFNAME`.
    pub fn net(&self, ifname: &str) -> PathBuf {
        self.root.join("class/net").join(ifname)
    }

    /// `bus/pci/devices/ADDR`.
    pub fn pci_device(&self, addr: PciAddr) -> PathBuf {
        self.root.join("bus/pci/devices").join(addr.to_string())
    }

    /// `bus/pci/drivers/NAME`.
    pub fn pci_driver(&self, name: &str) -> PathBuf {
        self.root.join("bus/pci/drivers").join(name)
    }

    /// `bus/pci/drivers_probe`.
    pub fn drivers_probe(&self) -> PathBuf {
        self.root.join("bus/pci/drivers_probe")
    }

    /// `kernel/iommu_groups/N/devices`.
    pub fn iommu_group_devices(&self, group: u32) -> PathBuf {
        self.root
            .join("kernel/iommu_groups")
            .join(group.to_string())
            .join("devices")
    }

    /// The attribute's text without surrounding whitespace.
    pub fn read(&self, path: &Path) -> Result<String, SysfsError> {
        let rd = |source| SysfsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let f = fs::File::open(path).map_err(rd)?;
        let mut buf = Vec::new();
        f.take(MAX_ATTR).read_to_end(&mut buf).map_err(rd)?;
        match String::from_utf8(buf) {
            Ok(s) => Ok(s.trim().to_string()),
            Err(e) => Err(SysfsError::Parse {
                path: path.to_path_buf(),
                value: short(&String::from_utf8_lossy(e.as_bytes())),
                expected: "text",
            }),
        }
    }

    /// Like [`Sysfs::read`], `None` if the file does not exist.
    pub fn read_opt(&self, path: &Path) -> Result<Option<String>, SysfsError> {
        match self.read(path) {
            Ok(s) => Ok(Some(s)),
            Err(SysfsError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A decimal number.
    pub fn read_num<T: FromStr>(
        &self,
        path: &Path,
        expected: &'static str,
    ) -> Result<T, SysfsError> {
        let s = self.read(path)?;
        parse_dec(&s).ok_or_else(|| SysfsError::Parse {
            path: path.to_path_buf(),
            value: short(&s),
            expected,
        })
    }

    /// A hex number written `0x....` (vendor, device, class).
    pub fn read_hex(&self, path: &Path) -> Result<u32, SysfsError> {
        let s = self.read(path)?;
        s.strip_prefix("0x")
            .filter(|h| !h.is_empty() && h.len() <= 8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| SysfsError::Parse {
                path: path.to_path_buf(),
                value: short(&s),
                expected: "a hex number like 0x8086",
            })
    }

    /// The last component of the symlink at `path` (`driver` -> `igbvf`),
    /// `None` if there is no such link.
    pub fn link_name(&self, path: &Path) -> Result<Option<String>, SysfsError> {
        match fs::read_link(path) {
            Ok(target) => match target.file_name().and_then(|n| n.to_str()) {
                Some(n) => Ok(Some(n.to_string())),
                None => Err(SysfsError::Parse {
                    path: path.to_path_buf(),
                    value: short(&target.to_string_lossy()),
                    expected: "a link to a named file",
                }),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SysfsError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The PCI address a link points at (`virtfn0`, `device`), `None` if
    /// there is no such link.
    pub fn link_pci(&self, path: &Path) -> Result<Option<PciAddr>, SysfsError> {
        match self.link_name(path)? {
            None => Ok(None),
            Some(n) => n.parse().map(Some).map_err(|_| SysfsError::Parse {
                path: path.to_path_buf(),
                value: short(&n),
                expected: "a link to a PCI device",
            }),
        }
    }

    /// Sorted entry names of a directory; empty if it does not exist.
    pub fn list(&self, dir: &Path) -> Result<Vec<String>, SysfsError> {
        let rd = |source| SysfsError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(rd(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(rd)?;
            if let Some(n) = e.file_name().to_str() {
                out.push(n.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Writes `value` to the attribute at `path`.
    pub fn write(&self, path: &Path, value: &str) -> Result<(), SysfsError> {
        tracing::debug!(path = %path.display(), value, "sysfs write");
        self.writer
            .write(path, value)
            .map_err(|source| SysfsError::Write {
                path: path.to_path_buf(),
                value: value.trim().to_string(),
                source,
            })
    }
}

/// A decimal number with nothing else around it but whitespace.
fn parse_dec<T: FromStr>(s: &str) -> Option<T> {
    let t = s.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// At most 64 characters of untrusted text, for error messages.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Sysfs::new(dir.path());
        let p = dir.path().join("sriov_totalvfs");
        for (text, ok) in [
            ("7\n", Some(7u16)),
            (" 12 ", Some(12)),
            ("", None),
            ("-1", None),
            ("7a", None),
            ("99999999", None),
            ("0x7", None),
        ] {
            fs::write(&p, text).expect("write");
            match (s.read_num::<u16>(&p, "a VF count"), ok) {
                (Ok(v), Some(w)) => assert_eq!(v, w),
                (Err(e), None) => assert!(
                    e.to_string().starts_with(&format!("{}: `", p.display())),
                    "{e}"
                ),
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
        fs::write(&p, [0xff, 0xfe, b'1']).expect("write");
        assert_eq!(
            s.read_num::<u16>(&p, "a VF count")
                .expect_err("not utf-8")
                .to_string(),
            format!("{}: `\u{fffd}\u{fffd}1` is not text", p.display())
        );
        let missing = dir.path().join("nope");
        assert_eq!(
            s.read(&missing).expect_err("missing").to_string(),
            format!("cannot read {}", missing.display())
        );
        assert!(s.read_opt(&missing).expect("missing is fine").is_none());
        fs::write(&p, "x".repeat(10_000)).expect("write");
        let e = s.read_num::<u16>(&p, "a VF count").expect_err("long");
        assert!(e.to_string().len() < 200 + p.display().to_string().len());
        fs::write(&p, "0x8086\n").expect("write");
        assert_eq!(s.read_hex(&p).expect("hex"), 0x8086);
        fs::write(&p, "0x").expect("write");
        assert!(s.read_hex(&p).is_err());
        assert!(s.list(&missing).expect("empty").is_empty());
        assert!(s.link_name(&missing).expect("none").is_none());
        std::os::unix::fs::symlink("../../foo/not-pci", dir.path().join("virtfn0"))
            .expect("symlink");
        assert_eq!(
            s.link_pci(&dir.path().join("virtfn0"))
                .expect_err("not pci")
                .to_string(),
            format!(
                "{}: `not-pci` is not a link to a PCI device",
                dir.path().join("virtfn0").display()
            )
        );
    }
}
