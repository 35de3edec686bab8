//! SR-IOV in the daemon: the config's `sriov:` section applied at start
//! and on reload, `vswitchctl sriov show|attach-info|release`, and the
//! clean-up at shutdown.
//!
//! [`SriovService`] translates the config model into `sriov` specs and
//! remembers what it applied, so a reload knows which VFs left the config
//! (they are released: clean settings, host driver). A PF whose apply
//! failed as a whole (its VF count) is not recorded as applied, so
//! nothing of it is released later. A PF that is missing, not SR-IOV, or
//! asked for more VFs than it has is refused earlier, when the file is
//! read (`config::Host::sriov_pf`): such a reload changes nothing. Every apply returns a
//! [`SriovReport`] (changes, warnings, errors as lines); nothing here makes
//! the daemon fail: an SR-IOV problem is a line in the report and a log.
//!
//! What was applied is also written to a state file (`--state-dir`,
//! `sriov.json`, replaced atomically), so a daemon that starts after a
//! crash, or after its file lost a PF while it was down, releases what
//! the previous one configured and the file no longer names; VFs it
//! never configured are never touched.
//!
//! Semantics:
//! - start: every configured PF gets its VF count and every configured VF
//!   its settings; settings the driver reports differently (drift) are
//!   reported and corrected; `vfio: true` VFs are handed to vfio-pci and
//!   proven through VFIO.
//! - reload: the same, plus the VFs (and PFs) no longer in the config are
//!   released. The VF count is never changed under a VM.
//! - `release VF`: clean settings and host driver now; the config still
//!   decides at the next reload.
//! - shutdown: configured VFs that no VM holds are released; VFs in use
//!   are left to their VM (a line in the report says so).

use serde::{Deserialize, Serialize};
use sriov::{
    AttachInfo, KernelVfio, LinkState, PfReport, PfSpec, PfView, RtNetlink, Sriov, Sysfs, VfLink,
    VfOutcome, VfSpec, Vfio, VlanProto, VlanSpec,
};

/// What an SR-IOV command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SriovError {
    /// The VF's PF is not in the config's `sriov` section.
    #[error("{pf} is not managed by vswitchd (not in the config's sriov section)")]
    NotManaged {
        /// The PF.
        pf: String,
    },
    /// Discovery, sysfs, netlink or VFIO failed.
    #[error(transparent)]
    Sriov(#[from] sriov::Error),
}

/// What an apply (start, reload), a release or the shutdown did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SriovReport {
    /// Per configured PF.
    pub pfs: Vec<PfReport>,
    /// VFs released (left the config, CLI release, shutdown).
    pub released: Vec<VfOutcome>,
    /// Failures outside a PF's report (a release that failed).
    pub errors: Vec<String>,
    /// VFs left alone because a VM holds them (shutdown).
    pub in_use: Vec<String>,
}

impl SriovReport {
    /// Changes, one line each.
    pub fn changes(&self) -> Vec<String> {
        let mut out: Vec<String> = self.pfs.iter().flat_map(PfReport::change_lines).collect();
        out.extend(self.released.iter().flat_map(VfOutcome::change_lines));
        out
    }

    /// Warnings (unsupported attributes, read-back mismatches, VFs in use).
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.pfs.iter().flat_map(PfReport::warning_lines).collect();
        out.extend(self.released.iter().flat_map(VfOutcome::warning_lines));
        out.extend(self.in_use.iter().cloned());
        out
    }

    /// Errors.
    pub fn errors(&self) -> Vec<String> {
        let mut out: Vec<String> = self.pfs.iter().flat_map(PfReport::error_lines).collect();
        out.extend(self.released.iter().flat_map(VfOutcome::error_lines));
        out.extend(self.errors.iter().cloned());
        out
    }

    /// Logs every line: changes at info, warnings at warn, errors at error.
    pub fn log(&self) {
        for l in self.changes() {
            tracing::info!("sriov: {l}");
        }
        for l in self.warnings() {
            tracing::warn!("sriov: {l}");
        }
        for l in self.errors() {
            tracing::error!("sriov: {l}");
        }
    }
}

/// A PF in `vswitchctl sriov show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowPf {
    /// Whether the config's `sriov` section names it.
    pub managed: bool,
    /// VF indexes the daemon configured (the config has settings for
    /// them and the PF's apply did not fail as a whole), or a previous
    /// daemon did (state file) and this one has not released yet. Each
    /// VF's `managed` says the same; other VFs are never touched.
    pub configured: Vec<u16>,
    /// What sysfs and the PF's driver report.
    #[serde(flatten)]
    pub view: PfView,
}

/// `vswitchctl sriov show`: the configured PFs, then the machine's other
/// SR-IOV PFs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SriovShow {
    /// PFs, configured ones first.
    pub pfs: Vec<ShowPf>,
}

/// The daemon's SR-IOV state: the manager and what it last applied.
#[derive(Debug)]
pub struct SriovService<L = RtNetlink, V = KernelVfio> {
    sriov: Sriov<L, V>,
    /// The config's PFs, as of the last apply.
    wanted: Vec<PfSpec>,
    /// What was really configured: PFs whose apply did not fail as a
    /// whole. Shutdown and reloads release only these.
    applied: Vec<PfSpec>,
    /// Where `applied` is kept across restarts (`None`: nowhere).
    state_file: Option<std::path::PathBuf>,
}

/// The state file: per PF, the VFs the daemon configured and the MAC
/// each gets when released.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AppliedState {
    pfs: Vec<AppliedPf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AppliedPf {
    pf: String,
    vfs: Vec<AppliedVf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AppliedVf {
    index: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    release_mac: Option<String>,
}

impl SriovService<RtNetlink, KernelVfio> {
    /// On the machine: `/sys`, `/proc`, rtnetlink (opened on first use, so
    /// a config without SR-IOV touches nothing), `/dev/vfio`.
    pub fn system() -> SriovService<RtNetlink, KernelVfio> {
        SriovService::new(Sriov::new(
            Sysfs::new("/sys"),
            RtNetlink::lazy(),
            KernelVfio,
        ))
    }
}

impl<L: VfLink, V: Vfio> SriovService<L, V> {
    /// A service on `sriov` (tests give it a fake kernel).
    pub fn new(sriov: Sriov<L, V>) -> SriovService<L, V> {
        SriovService {
            sriov,
            wanted: Vec::new(),
            applied: Vec::new(),
            state_file: None,
        }
    }

    /// Keeps what was applied in `path`, and starts from what it holds: a
    /// previous daemon's VFs that the next apply's config does not name
    /// are released by that apply. A missing file is an empty state; an
    /// unreadable one is logged and ignored (nothing is released on its
    /// word).
    pub fn with_state_file(mut self, path: std::path::PathBuf) -> Self {
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<AppliedState>(&bytes) {
                Ok(state) => self.applied = state.pfs.iter().map(applied_spec).collect(),
                Err(e) => tracing::error!("sriov: ignoring the state file {}: {e}", path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!("sriov: cannot read the state file {}: {e}", path.display()),
        }
        self.state_file = Some(path);
        self
    }

    /// Writes `applied` to the state file (temporary file, then rename),
    /// or removes the file when nothing is applied; a failure is a report
    /// error.
    fn save_state(&self, report: &mut SriovReport) {
        let Some(path) = &self.state_file else {
            return;
        };
        let res = if self.applied.is_empty() {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            let state = AppliedState {
                pfs: self
                    .applied
                    .iter()
                    .map(|p| AppliedPf {
                        pf: p.pf.clone(),
                        vfs: p
                            .vfs
                            .iter()
                            .map(|v| AppliedVf {
                                index: v.index,
                                release_mac: v.release_mac.map(|m| m.to_string()),
                            })
                            .collect(),
                    })
                    .collect(),
            };
            write_atomically(path, &state)
        };
        if let Err(e) = res {
            report.errors.push(format!(
                "cannot record the SR-IOV state in {}: {e}",
                path.display()
            ));
        }
    }

    /// The manager.
    pub fn sriov(&mut self) -> &mut Sriov<L, V> {
        &mut self.sriov
    }

    /// The config's `sriov` section as `sriov` specs.
    pub fn specs(cfg: &config::Config) -> Vec<PfSpec> {
        cfg.sriov.iter().map(pf_spec).collect()
    }

    /// Brings the machine to the config (start and reload): releases the
    /// VFs that left the config, then applies every configured PF. A PF
    /// whose apply failed as a whole (its VF count could not be set) is
    /// not recorded as applied: shutdown and later reloads release only
    /// what was really configured (what an earlier apply did there stays
    /// recorded).
    pub fn apply(&mut self, cfg: &config::Config) -> SriovReport {
        let specs = Self::specs(cfg);
        let mut report = SriovReport::default();
        let before = std::mem::take(&mut self.applied);
        // VFs that left the file but a VM holds: still ours to release.
        let mut held: Vec<(String, VfSpec)> = Vec::new();
        for old in &before {
            let new = specs.iter().find(|s| s.pf == old.pf);
            for vf in &old.vfs {
                if new.is_some_and(|n| n.vfs.iter().any(|v| v.index == vf.index)) {
                    continue;
                }
                // Gone with the count change: nothing left to release.
                if new.is_some_and(|n| vf.index >= n.num_vfs) {
                    continue;
                }
                if self.release_into(&old.pf, vf, &mut report) == Released::Held {
                    held.push((old.pf.clone(), vf.clone()));
                }
            }
        }
        for spec in &specs {
            let pf = self.sriov.apply_pf(spec);
            if pf.errors.is_empty() {
                self.applied.push(spec.clone());
            } else if let Some(old) = before.iter().find(|o| o.pf == spec.pf) {
                self.applied.push(old.clone());
            }
            report.pfs.push(pf);
        }
        for (pf, vf) in held {
            self.remember(&pf, vf);
        }
        self.wanted = specs;
        self.save_state(&mut report);
        report
    }

    /// What [`SriovService::apply`] would do with `cfg`, without writing
    /// anything (`reload --dry-run`): the VFs it would release, then per
    /// PF the count, the drift it would correct (settings read back
    /// against the file) and driver changes.
    pub fn plan(&mut self, cfg: &config::Config) -> SriovReport {
        let specs = Self::specs(cfg);
        let mut report = SriovReport::default();
        for old in &self.applied {
            let new = specs.iter().find(|s| s.pf == old.pf);
            for vf in &old.vfs {
                if new.is_some_and(|n| n.vfs.iter().any(|v| v.index == vf.index))
                    || new.is_some_and(|n| vf.index >= n.num_vfs)
                {
                    continue;
                }
                let mut out = VfOutcome {
                    pf: old.pf.clone(),
                    index: vf.index,
                    ..VfOutcome::default()
                };
                out.changed.push(format!(
                    "release (no longer in the file): mac {}, vlan 0, spoof-check on, trust off, rate 0, host driver",
                    vf.release_mac.unwrap_or(sriov::MacAddr::ZERO)
                ));
                report.released.push(out);
            }
        }
        for spec in &specs {
            report.pfs.push(self.sriov.plan_pf(spec));
        }
        report
    }

    /// Releases one VF into `report`; says whether a VM still holds it.
    fn release_into(&mut self, pf: &str, vf: &VfSpec, report: &mut SriovReport) -> Released {
        let info = match self.sriov.vf(pf, vf.index) {
            Ok(i) => i,
            Err(e) => {
                report.errors.push(format!("{pf} VF {}: {e}", vf.index));
                return Released::Failed;
            }
        };
        match self.sriov.release(&info, vf.release_mac) {
            Ok(out) => {
                report.released.push(out);
                Released::Done
            }
            Err(sriov::Error::InUse { holder, .. }) => {
                report.in_use.push(format!(
                    "{pf} VF {}: in use by {holder}, left to its VM",
                    vf.index
                ));
                Released::Held
            }
            Err(e) => {
                report.errors.push(format!("{pf} VF {}: {e}", vf.index));
                Released::Failed
            }
        }
    }

    /// Records VF `vf` of `pf` as configured by the daemon (a VF left to
    /// its VM stays the daemon's to release later).
    fn remember(&mut self, pf: &str, vf: VfSpec) {
        match self.applied.iter_mut().find(|p| p.pf == pf) {
            Some(p) => {
                if !p.vfs.iter().any(|v| v.index == vf.index) {
                    p.vfs.push(vf);
                }
            }
            None => self.applied.push(PfSpec {
                pf: pf.to_string(),
                // Unknown: never used to skip a release (see `apply`).
                num_vfs: u16::MAX,
                vfs: vec![vf],
            }),
        }
    }

    /// `vswitchctl sriov show`.
    pub fn show(&mut self) -> SriovShow {
        let mut names: Vec<String> = self.wanted.iter().map(|s| s.pf.clone()).collect();
        let managed = names.len();
        match self.sriov.pfs() {
            Ok(pfs) => {
                for p in pfs {
                    if !names.contains(&p.name) {
                        names.push(p.name);
                    }
                }
            }
            Err(e) => tracing::warn!("sriov show: cannot list PFs: {e}"),
        }
        let views = self.sriov.show(&names);
        SriovShow {
            pfs: views
                .into_iter()
                .enumerate()
                .map(|(i, mut view)| {
                    let configured: Vec<u16> = self
                        .applied
                        .iter()
                        .find(|s| s.pf == view.name)
                        .map(|s| s.vfs.iter().map(|v| v.index).collect())
                        .unwrap_or_default();
                    // Managed: what the daemon configured and releases;
                    // every other VF is left alone.
                    for vf in &mut view.vfs {
                        vf.managed = configured.contains(&vf.index);
                    }
                    ShowPf {
                        managed: i < managed,
                        configured,
                        view,
                    }
                })
                .collect(),
        }
    }

    /// `vswitchctl sriov attach-info VF` (`PF/INDEX` or a PCI address).
    pub fn attach_info(&self, vf: &str) -> Result<AttachInfo, SriovError> {
        let info = self.sriov.find_vf(vf)?;
        Ok(self.sriov.attach_info(&info))
    }

    /// `vswitchctl sriov release VF`: clean settings (the configured
    /// release MAC, else zero) and the host driver, now. Only VFs of
    /// managed PFs; refused while a VM holds the VF.
    pub fn release(&mut self, vf: &str) -> Result<VfOutcome, SriovError> {
        let info = self.sriov.find_vf(vf)?;
        let Some(spec) = self.wanted.iter().find(|s| s.pf == info.pf) else {
            return Err(SriovError::NotManaged { pf: info.pf });
        };
        let release_mac = spec
            .vfs
            .iter()
            .find(|v| v.index == info.index)
            .and_then(|v| v.release_mac);
        Ok(self.sriov.release(&info, release_mac)?)
    }

    /// At daemon shutdown: releases every configured VF no VM holds. VFs
    /// left to their VM stay in the state file, so the next daemon still
    /// knows they are its to release.
    pub fn shutdown(&mut self) -> SriovReport {
        let mut report = SriovReport::default();
        for pf in std::mem::take(&mut self.applied) {
            for vf in pf.vfs {
                if self.release_into(&pf.pf, &vf, &mut report) == Released::Held {
                    self.remember(&pf.pf, vf);
                }
            }
        }
        self.save_state(&mut report);
        report
    }
}

/// What releasing one VF came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Released {
    /// Released (settings cleaned, host driver).
    Done,
    /// A VM holds it: left alone, still the daemon's.
    Held,
    /// Could not be found or released (an error in the report).
    Failed,
}

/// A PF of the state file as a spec that release understands: its VFs
/// and their release MACs (a MAC that does not parse releases to zero).
fn applied_spec(pf: &AppliedPf) -> PfSpec {
    PfSpec {
        pf: pf.pf.clone(),
        // Unknown: never used to skip a release (see `apply`).
        num_vfs: u16::MAX,
        vfs: pf
            .vfs
            .iter()
            .map(|v| VfSpec {
                release_mac: v.release_mac.as_deref().and_then(|m| m.parse().ok()),
                ..VfSpec::new(v.index)
            })
            .collect(),
    }
}

/// Writes `value` as JSON to `path` through a temporary file in the same
/// directory (created, mode 0755, if missing) and a rename.
fn write_atomically<T: Serialize>(path: &std::path::Path, value: &T) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn pf_spec(pf: &config::SriovPf) -> PfSpec {
    PfSpec {
        pf: pf.pf.clone(),
        num_vfs: pf.num_vfs,
        vfs: pf.vfs.iter().map(vf_spec).collect(),
    }
}

fn vf_spec(v: &config::SriovVf) -> VfSpec {
    VfSpec {
        index: v.index,
        mac: v.mac,
        vlan: v.vlan.map(|id| VlanSpec {
            id: id.get(),
            qos: v.qos,
            proto: match v.vlan_protocol {
                config::VfVlanProtocol::Dot1Q => VlanProto::Dot1Q,
                config::VfVlanProtocol::Dot1Ad => VlanProto::Dot1Ad,
            },
        }),
        spoof_check: v.spoof_check,
        trust: v.trust,
        link_state: v.link_state.map(|l| match l {
            config::VfLinkState::Auto => LinkState::Auto,
            config::VfLinkState::Enable => LinkState::Enable,
            config::VfLinkState::Disable => LinkState::Disable,
        }),
        min_tx_rate_mbps: v.min_tx_rate_mbps,
        max_tx_rate_mbps: v.max_tx_rate_mbps,
        vfio: v.vfio,
        release_mac: v.release_mac,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use sriov::testing::{FakeKernel, FakeLink, FakeVfio};

    use super::*;

    const PF: &str = "enp1s0";

    struct Env {
        _dir: tempfile::TempDir,
        kernel: FakeKernel,
        link: FakeLink,
        proc_root: std::path::PathBuf,
        svc: SriovService<FakeLink, FakeVfio>,
    }

    fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let kernel = FakeKernel::new(&dir.path().join("sys"));
        kernel.add_pf(PF, "0000:01:00.0".parse().unwrap(), 7, Some("igbvf"));
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(&proc_root).unwrap();
        let link = FakeLink::new();
        link.set_vfs(PF, 7);
        link.unsupported("link-state");
        let svc = SriovService::new(
            Sriov::new(kernel.sysfs(), link.clone(), FakeVfio::new())
                .with_proc_root(&proc_root)
                .with_timeout(Duration::from_millis(100)),
        );
        Env {
            _dir: dir,
            kernel,
            link,
            proc_root,
            svc,
        }
    }

    fn cfg(yaml: &str) -> config::Config {
        config::parse_str(yaml, "test.yaml").unwrap()
    }

    const BASE: &str = "
switches:
  - name: sw0
    port-groups:
      - { name: v100, vlan: 100 }
      - { name: v200, vlan: 200 }
sriov:
  - pf: enp1s0
    num-vfs: 3
    vfs:
      - index: 0
        mac: 02:00:00:00:00:10
        port-group: v100
        qos: 3
        spoof-check: false
        trust: true
        link-state: enable
        rate: { max-mbps: 100 }
      - index: 1
        mac: 02:00:00:00:00:11
        port-group: v200
        vfio: true
        release-mac: 02:00:00:00:99:01
";

    #[test]
    fn the_system_service_can_live_in_the_daemon() {
        fn daemon_state<T: Send + std::fmt::Debug>() {}
        daemon_state::<SriovService>();
        // Nothing is opened until a config names a PF.
        let mut svc = SriovService::system();
        let r = svc.apply(&cfg("switches: [{ name: sw0 }]"));
        assert_eq!(r, SriovReport::default());
    }

    /// Issue 23: a PF asked for more VFs than it has is not applied, so
    /// nothing of it counts as configured, and shutdown resets nothing
    /// (it zeroed the MAC of a VF it had never set).
    #[test]
    fn a_pf_that_refused_its_count_is_not_released_at_shutdown() {
        let mut e = env();
        // VF 1's MAC as the host (not the daemon) set it.
        sriov::VfLink::set_vf(
            &mut e.link,
            PF,
            1,
            &sriov::VfSetting::Mac("02:00:00:00:aa:01".parse().unwrap()),
        )
        .unwrap();
        let r = e.svc.apply(&cfg(&BASE.replace("num-vfs: 3", "num-vfs: 8")));
        assert_eq!(r.errors().len(), 1, "{:?}", r.errors());
        let show = e.svc.show();
        assert!(show.pfs.iter().all(|p| p.configured.is_empty()), "{show:?}");
        let r = e.svc.shutdown();
        assert!(r.released.is_empty(), "{r:?}");
        assert_eq!(
            e.link.state(PF, 1).unwrap().mac.to_string(),
            "02:00:00:00:aa:01"
        );
    }

    /// Issue 23: a daemon that starts after one that crashed (or after
    /// its file lost a PF while it was down) releases what the previous
    /// one configured, from the state file, and leaves every other VF of
    /// the PF alone.
    #[test]
    fn a_restart_releases_what_the_previous_daemon_configured_and_nothing_else() {
        let mut e = env();
        let state = e._dir.path().join("state/sriov.json");
        let second = |e: &Env| {
            SriovService::new(
                Sriov::new(e.kernel.sysfs(), e.link.clone(), FakeVfio::new())
                    .with_proc_root(&e.proc_root)
                    .with_timeout(Duration::from_millis(100)),
            )
            .with_state_file(state.clone())
        };
        let mut first = second(&e);
        let r = first.apply(&cfg(BASE));
        assert!(r.errors().is_empty(), "{:?}", r.errors());
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert_eq!(saved["pfs"][0]["pf"], PF);
        assert_eq!(
            saved["pfs"][0]["vfs"][1]["release_mac"],
            "02:00:00:00:99:01"
        );
        // VF 2: the host's own setting, never the daemon's.
        sriov::VfLink::set_vf(
            &mut e.link,
            PF,
            2,
            &sriov::VfSetting::Mac("02:00:00:00:aa:02".parse().unwrap()),
        )
        .unwrap();
        drop(first); // a crash: no shutdown

        let mut next = second(&e);
        let r = next.apply(&cfg("switches: [{ name: sw0 }]"));
        assert!(r.errors().is_empty(), "{:?}", r.errors());
        let released: Vec<u16> = r.released.iter().map(|o| o.index).collect();
        assert_eq!(released, [0, 1]);
        assert!(e.link.state(PF, 0).unwrap().mac.is_zero());
        assert_eq!(
            e.link.state(PF, 1).unwrap().mac.to_string(),
            "02:00:00:00:99:01"
        );
        assert_eq!(
            e.link.state(PF, 2).unwrap().mac.to_string(),
            "02:00:00:00:aa:02"
        );
        assert!(!state.exists(), "nothing applied: no state left");
        assert!(next.show().pfs.iter().all(|p| !p.managed));
        // And a daemon after that has nothing to release.
        let r = second(&e).apply(&cfg("switches: [{ name: sw0 }]"));
        assert!(r.released.is_empty(), "{r:?}");
    }

    /// Issue 23: VFs of a managed PF that the file does not name are left
    /// alone by apply, reload and shutdown, and `sriov show` says so per
    /// VF (reply and text).
    #[test]
    fn vfs_the_file_does_not_name_are_unmanaged_and_left_alone() {
        let mut e = env();
        let mut r = e.svc.apply(&cfg(BASE));
        assert!(r.errors().is_empty(), "{:?}", r.errors());
        // VF 2 exists (num-vfs 3) but the file has no entry for it.
        sriov::VfLink::set_vf(
            &mut e.link,
            PF,
            2,
            &sriov::VfSetting::Mac("02:00:00:00:aa:02".parse().unwrap()),
        )
        .unwrap();
        sriov::VfLink::set_vf(
            &mut e.link,
            PF,
            2,
            &sriov::VfSetting::Vlan {
                id: 33,
                qos: 0,
                proto: sriov::VlanProto::Dot1Q,
            },
        )
        .unwrap();
        let show = e.svc.show();
        let managed: Vec<bool> = show.pfs[0].view.vfs.iter().map(|v| v.managed).collect();
        assert_eq!(managed, [true, true, false]);
        let json = serde_json::to_value(&show).unwrap();
        assert_eq!(json["pfs"][0]["vfs"][0]["managed"], true);
        assert_eq!(json["pfs"][0]["vfs"][2]["managed"], false);
        let text = crate::client::format_sriov_show(&show);
        let line = |i: usize| {
            text.lines()
                .find(|l| l.trim_start().starts_with(&format!("{i} ")))
                .unwrap_or_else(|| panic!("no VF {i} line in\n{text}"))
                .to_string()
        };
        assert!(line(0).contains(" managed "), "{text}");
        assert!(line(2).contains(" unmanaged "), "{text}");
        assert!(line(2).contains("02:00:00:00:aa:02"), "{text}");
        // Reload and shutdown: VF 2 keeps what the host set.
        r = e.svc.apply(&cfg(BASE));
        assert!(r.changes().is_empty(), "{:?}", r.changes());
        r = e.svc.shutdown();
        let released: Vec<u16> = r.released.iter().map(|o| o.index).collect();
        assert_eq!(released, [0, 1]);
        let s = e.link.state(PF, 2).unwrap();
        assert_eq!(
            (s.mac.to_string().as_str(), s.vlan),
            ("02:00:00:00:aa:02", 33)
        );
        // A PF the file does not name: every VF unmanaged.
        let show = e.svc.show();
        assert!(show.pfs[0].view.vfs.iter().all(|v| !v.managed), "{show:?}");
    }

    /// `reload --dry-run`: the drift the next apply would correct, the
    /// count it would set and the VFs it would release, read back and
    /// compared with the file; nothing is written.
    #[test]
    fn a_plan_shows_drift_and_releases_without_writing() {
        let mut e = env();
        let r = e.svc.apply(&cfg(BASE));
        assert!(r.errors().is_empty(), "{:?}", r.errors());
        // Nothing to do but the setting igb cannot take (link state).
        let plan = e.svc.plan(&cfg(BASE));
        assert_eq!(
            plan.changes(),
            ["enp1s0 VF 0: link-state enable (was link-state auto)"]
        );
        sriov::VfLink::set_vf(
            &mut e.link,
            PF,
            0,
            &sriov::VfSetting::Vlan {
                id: 5,
                qos: 0,
                proto: sriov::VlanProto::Dot1Q,
            },
        )
        .unwrap();
        let writes = e.kernel.writes().len();
        let plan = e.svc.plan(&cfg(BASE));
        assert!(
            plan.changes()
                .contains(&"enp1s0 VF 0: vlan 100 qos 3 (was vlan 5)".to_string()),
            "{:?}",
            plan.changes()
        );
        assert_eq!(e.link.state(PF, 0).unwrap().vlan, 5, "the plan wrote");
        // VF 1 leaves the file; VF 0 goes to vfio-pci; 4 VFs.
        let other = BASE.replace("num-vfs: 3", "num-vfs: 4").replace(
            "        link-state: enable\n",
            "        link-state: enable\n        vfio: true\n",
        );
        let cut = other.find("      - index: 1").unwrap();
        let plan = e.svc.plan(&cfg(&other[..cut]));
        let changes = plan.changes();
        assert!(
            changes.contains(&"enp1s0: VFs 3 -> 4".to_string()),
            "{changes:?}"
        );
        assert!(
            changes.iter().any(|l| l.starts_with(
                "enp1s0 VF 1: release (no longer in the file): mac 02:00:00:00:99:01"
            )),
            "{changes:?}"
        );
        assert!(
            changes.contains(&"enp1s0 VF 0: host driver -> vfio-pci".to_string()),
            "{changes:?}"
        );
        // Against new VFs: every setting that differs from the defaults.
        assert!(
            changes.contains(&"enp1s0 VF 0: trust on (was trust off)".to_string()),
            "{changes:?}"
        );
        assert_eq!(e.kernel.writes().len(), writes, "the plan wrote to sysfs");
        assert_eq!(e.link.state(PF, 0).unwrap().vlan, 5);
        assert_eq!(
            e.kernel
                .driver_of("0000:01:10.1".parse().unwrap())
                .as_deref(),
            Some("vfio-pci")
        );
        // An unknown PF is an error line.
        let mut spec = SriovService::<FakeLink, FakeVfio>::specs(&cfg(BASE));
        spec[0].pf = "nope0".into();
        assert!(!e.svc.sriov().plan_pf(&spec[0]).errors.is_empty());
    }

    #[test]
    fn start_reload_release_and_shutdown() {
        let mut e = env();
        let r = e.svc.apply(&cfg(BASE));
        assert!(r.errors().is_empty(), "{:?}", r.errors());
        let changes = r.changes();
        assert_eq!(changes[0], "enp1s0: VFs 0 -> 3");
        assert!(changes.contains(&"enp1s0 VF 0: vlan 100 qos 3 (was vlan 0)".to_string()));
        assert!(changes.contains(&"enp1s0 VF 1: igbvf -> vfio-pci".to_string()));
        assert_eq!(r.warnings().len(), 1, "{:?}", r.warnings());
        assert!(r.warnings()[0].starts_with("enp1s0 VF 0: link-state enable: not supported"));
        let s = e.link.state(PF, 1).unwrap();
        assert_eq!((s.vlan, s.spoof_check, s.trust), (200, true, false));

        // Reload with the same config: nothing changes.
        let r = e.svc.apply(&cfg(BASE));
        assert!(r.changes().is_empty(), "{:?}", r.changes());

        // show: configured PF first, settings as read back, owners.
        let show = e.svc.show();
        let pf = &show.pfs[0];
        assert!(pf.managed);
        assert_eq!(pf.configured, [0, 1]);
        assert_eq!(pf.view.vfs.len(), 3);
        assert_eq!(pf.view.vfs[1].owner, "vfio-pci (free)");
        let text = crate::client::format_sriov_show(&show);
        assert!(
            text.contains("PF enp1s0 (0000:01:00.0, igb): 3 of 7 VFs, managed"),
            "{text}"
        );
        assert!(text.contains("02:00:00:00:00:10"), "{text}");
        let json = serde_json::to_value(&show).unwrap();
        assert_eq!(json["pfs"][0]["name"], "enp1s0");
        assert_eq!(json["pfs"][0]["vfs"][0]["settings"]["vlan"], 100);
        assert_eq!(json["pfs"][0]["vfs"][1]["pci"], "0000:01:10.1");
        // vswitchctl reads the reply back into the same types.
        let back: SriovShow = serde_json::from_value(json).unwrap();
        assert_eq!(back, show);
        let r2: SriovReport = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(r2, r);

        // attach-info by name and by PCI address.
        let a = e.svc.attach_info("enp1s0/1").unwrap();
        assert!(a.ready);
        assert_eq!(a.qemu, "-device vfio-pci,host=0000:01:10.1");
        assert_eq!(e.svc.attach_info("0000:01:10.1").unwrap(), a);
        let text = crate::client::format_sriov_attach_info(&a);
        assert!(
            text.contains("-device vfio-pci,host=0000:01:10.1"),
            "{text}"
        );
        let group = a.iommu_group.unwrap();
        assert!(
            text.starts_with(&format!(
                "VF enp1s0/1 (0000:01:10.1), IOMMU group {group} (/dev/vfio/{group}), driver vfio-pci\nready for a VM"
            )),
            "{text}"
        );
        let back: AttachInfo = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);

        // CLI release: the configured release MAC, VLAN 0, host driver.
        let out = e.svc.release("enp1s0/1").unwrap();
        assert!(out.driver.contains(&"vfio-pci -> igbvf".to_string()));
        let s = e.link.state(PF, 1).unwrap();
        assert_eq!(s.mac.to_string(), "02:00:00:00:99:01");
        assert_eq!(s.vlan, 0);

        // VF 0 leaves the config: released on reload (MAC zero).
        let less = BASE.replace(
            "      - index: 0\n        mac: 02:00:00:00:00:10\n        port-group: v100\n        qos: 3\n        spoof-check: false\n        trust: true\n        link-state: enable\n        rate: { max-mbps: 100 }\n",
            "",
        );
        assert_ne!(less, BASE);
        let r = e.svc.apply(&cfg(&less));
        assert!(
            r.changes()
                .contains(&"enp1s0 VF 0: vlan 0 (was vlan 100 qos 3)".to_string()),
            "{:?}",
            r.changes()
        );
        assert!(e.link.state(PF, 0).unwrap().mac.is_zero());
        // VF 1 is handed to vfio-pci again: the config decides.
        assert!(
            r.changes()
                .contains(&"enp1s0 VF 1: igbvf -> vfio-pci".to_string())
        );

        // Shutdown releases the configured VFs no VM holds.
        let r = e.svc.shutdown();
        assert_eq!(r.released.len(), 1);
        assert_eq!(
            e.kernel
                .driver_of("0000:01:10.1".parse().unwrap())
                .as_deref(),
            Some("igbvf")
        );
    }

    #[test]
    fn a_vm_keeps_its_vf_through_reload_and_shutdown() {
        let mut e = env();
        e.svc.apply(&cfg(BASE));
        let group = e.svc.sriov().vf(PF, 1).unwrap().iommu_group.unwrap();
        let p = e.proc_root.join("900");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        std::fs::write(p.join("comm"), "qemu-system-x86\n").unwrap();
        std::os::unix::fs::symlink(format!("/dev/vfio/{group}"), p.join("fd/20")).unwrap();

        let r = e.svc.apply(&cfg(&BASE.replace("num-vfs: 3", "num-vfs: 4")));
        assert_eq!(
            r.errors(),
            [
                "enp1s0: the VF count cannot change while VF 1 (0000:01:10.1) is in use by pid 900 (qemu-system-x86)"
            ]
        );
        assert_eq!(
            e.svc.release("enp1s0/1").unwrap_err().to_string(),
            "VF 0000:01:10.1 is in use by pid 900 (qemu-system-x86); stop the VM first"
        );
        let show = e.svc.show();
        assert_eq!(
            show.pfs[0].view.vfs[1].owner,
            "vfio-pci (pid 900 (qemu-system-x86))"
        );
        let r = e.svc.shutdown();
        assert_eq!(
            r.in_use,
            ["enp1s0 VF 1: in use by pid 900 (qemu-system-x86), left to its VM"]
        );
        assert_eq!(r.released.len(), 1);
    }

    /// A VF that leaves the file while a VM holds it is left to the VM
    /// and stays the daemon's: the next reload after the VM let go
    /// releases it (it was forgotten, so never released).
    #[test]
    fn a_vf_that_left_the_file_while_held_is_released_once_free() {
        let mut e = env();
        e.svc.apply(&cfg(BASE));
        let group = e.svc.sriov().vf(PF, 1).unwrap().iommu_group.unwrap();
        let p = e.proc_root.join("901");
        std::fs::create_dir_all(p.join("fd")).unwrap();
        std::fs::write(p.join("comm"), "qemu-system-x86\n").unwrap();
        std::os::unix::fs::symlink(format!("/dev/vfio/{group}"), p.join("fd/20")).unwrap();
        let only_vf0 = BASE.split("      - index: 1\n").next().unwrap().to_string();
        let r = e.svc.apply(&cfg(&only_vf0));
        assert_eq!(
            r.in_use,
            ["enp1s0 VF 1: in use by pid 901 (qemu-system-x86), left to its VM"]
        );
        assert_eq!(e.svc.show().pfs[0].configured, [0, 1], "still the daemon's");

        std::fs::remove_dir_all(&p).unwrap();
        let r = e.svc.apply(&cfg(&only_vf0));
        let released: Vec<u16> = r.released.iter().map(|o| o.index).collect();
        assert_eq!(released, [1], "{r:?}");
        assert_eq!(
            e.link.state(PF, 1).unwrap().mac.to_string(),
            "02:00:00:00:99:01"
        );
        assert_eq!(e.svc.show().pfs[0].configured, [0]);
    }

    #[test]
    fn errors_are_report_lines_and_command_errors() {
        let mut e = env();
        let r = e.svc.apply(&cfg("
sriov:
  - pf: enp9s0
    num-vfs: 2
  - pf: enp1s0
    num-vfs: 8
"));
        assert_eq!(
            r.errors(),
            [
                "unknown PF `enp9s0`: no network interface of that name",
                "enp1s0 supports at most 7 VFs (sriov_totalvfs), 8 requested",
            ]
        );
        let show = e.svc.show();
        assert_eq!(
            show.pfs[0].view.error.as_deref(),
            Some("unknown PF `enp9s0`: no network interface of that name")
        );
        assert!(crate::client::format_sriov_show(&show).contains("error: unknown PF `enp9s0`"));

        // A PF that is not in the config cannot be released through us.
        e.svc.apply(&cfg("sriov: []"));
        e.svc.sriov().set_num_vfs(PF, 1).unwrap();
        assert_eq!(
            e.svc.release("enp1s0/0").unwrap_err().to_string(),
            "enp1s0 is not managed by vswitchd (not in the config's sriov section)"
        );
        assert_eq!(
            e.svc.attach_info("nope/1").unwrap_err().to_string(),
            "unknown PF `nope`: no network interface of that name"
        );
        let show = e.svc.show();
        assert!(!show.pfs[0].managed);
        // No SR-IOV at all: nothing to show, nothing touched.
        let dir = tempfile::tempdir().unwrap();
        let k = FakeKernel::new(dir.path());
        let mut svc = SriovService::new(Sriov::new(k.sysfs(), FakeLink::new(), FakeVfio::new()));
        let r = svc.apply(&cfg("switches: [{ name: sw0 }]"));
        assert_eq!(r, SriovReport::default());
        assert_eq!(
            crate::client::format_sriov_show(&svc.show()),
            "no SR-IOV PFs\n"
        );
        assert!(k.writes().is_empty());
    }
}
