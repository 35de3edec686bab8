//! Helpers shared by the end-to-end suites in `tests/` (see
//! `tests/README.md`). Every suite says `mod support;` and uses what it
//! needs, so each test binary leaves some of it unused.
//!
//! - this file: running tests one at a time, waiting (and a test's
//!   [`Deadline`]), finding programs and the repository, and [`Vswitchd`]:
//!   the daemon as a process on a temporary runtime directory, driven with
//!   the real `vswitchctl`;
//! - [`guest`]: QEMU guests booted from the Debian-built test image and
//!   the daemon they attach to;
//! - [`frontend`]: the hardening suites' peers: `vswitchd` with its
//!   counters and log, DPDK testpmd with virtio-user ports (also the
//!   driver of `testpmd.rs`), and a raw vhost-user client that writes the
//!   wire format by hand.
#![allow(dead_code)]

pub mod frontend;
pub mod guest;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Heavy tests of one suite run one at a time (the machine may have only
/// two cores, and some tests share host resources).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits until `cond` holds or `timeout` passes (checking every 20 ms);
/// returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The end of a test's time budget, if it has one: waits bounded by it
/// end at the budget's end at the latest.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// A budget of `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline(Some(Instant::now() + budget))
    }

    /// No overall budget: each wait has only its own timeout.
    pub fn none() -> Self {
        Deadline(None)
    }

    /// `d` from now, but never past the budget.
    pub fn within(self, d: Duration) -> Instant {
        let at = Instant::now() + d;
        match self.0 {
            Some(end) => at.min(end),
            None => at,
        }
    }
}

/// Where `prog` is on `PATH`, if anywhere.
pub fn find_in_path(prog: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// The repository's root directory.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the vswitch crate sits in the repository root")
}

/// Removes ANSI colour sequences (the log is written by tracing's fmt).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            if it.peek() == Some(&'[') {
                it.next();
                for d in it.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Runs `cmd` with `args`, panicking with its stderr if it fails; its
/// stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} runs: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace with IPv6 off, named after the test process and
/// `tag`; deleted on drop. A daemon started in it
/// ([`Vswitchd::start_in_netns`]) sees only the interfaces made there.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("vs{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        for key in ["default", "all"] {
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns.name,
                    "sysctl",
                    "-q",
                    "-w",
                    &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
                ],
            );
        }
        ns
    }

    /// A namespace with a veth pair per name, both ends inside and up:
    /// `NAME` (for the switch) and `NAMEp` (its peer), so uplinks can
    /// name real interfaces without touching the host's own.
    pub fn with_veths(tag: &str, names: &[&str]) -> Netns {
        let ns = Netns::new(tag);
        for n in names {
            let peer = format!("{n}p");
            run(
                "ip",
                &[
                    "-n", &ns.name, "link", "add", n, "type", "veth", "peer", "name", &peer,
                ],
            );
            ns.link_up(n);
            ns.link_up(&peer);
        }
        ns
    }

    pub fn has_link(&self, dev: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.name, "link", "show", dev])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn link_up(&self, dev: &str) {
        run("ip", &["-n", &self.name, "link", "set", dev, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A running vswitchd on a temporary runtime directory, started with a
/// YAML file there; SIGTERM and wait on drop.
pub struct Vswitchd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    file: PathBuf,
    stdout: Receiver<String>,
}

impl Vswitchd {
    /// Starts vswitchd on `yaml` and waits for its "running" line.
    pub fn start(yaml: &str) -> Vswitchd {
        Vswitchd::start_in(tempfile::tempdir().expect("tempdir"), yaml, None)
    }

    /// [`Vswitchd::start`] inside the network namespace `netns` (with
    /// `ip netns exec`, which execs the daemon: the child is vswitchd).
    pub fn start_in_netns(netns: &str, yaml: &str) -> Vswitchd {
        Vswitchd::start_in(tempfile::tempdir().expect("tempdir"), yaml, Some(netns))
    }

    /// [`Vswitchd::start`] with a runtime directory every user may
    /// search, so only the sockets' own modes decide who reaches them.
    pub fn start_searchable(yaml: &str) -> Vswitchd {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        Vswitchd::start_in(dir, yaml, None)
    }

    fn start_in(dir: tempfile::TempDir, yaml: &str, netns: Option<&str>) -> Vswitchd {
        let file = dir.path().join("vswitch.yaml");
        std::fs::write(&file, yaml).expect("write config");
        let log = std::fs::File::create(dir.path().join("vswitchd.log")).expect("log file");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_vswitchd")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_vswitchd")),
        };
        let mut child = cmd
            .arg("--config")
            .arg(&file)
            .arg("--runtime-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("vswitchd starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Vswitchd {
            child: Some(child),
            dir,
            file,
            stdout: rx,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match d.stdout.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.starts_with("vswitchd: running") => break,
                Ok(_) => {}
                Err(_) => {
                    if let Some(st) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                        panic!("vswitchd exited early ({st}): {}", d.log());
                    }
                    assert!(Instant::now() < deadline, "vswitchd never ran: {}", d.log());
                }
            }
        }
        d
    }

    /// The runtime directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The socket file of server port `port`.
    pub fn sock(&self, port: &str) -> PathBuf {
        self.dir.path().join(format!("{port}.sock"))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("vswitchd.log")).unwrap_or_default()
    }

    /// The daemon's configuration file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Rewrites the daemon's configuration file.
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(&self.file, yaml).expect("write config");
    }

    /// Runs vswitchctl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
            .arg("--runtime-dir")
            .arg(self.path())
            .args(args)
            .output()
            .expect("vswitchctl runs")
    }

    /// Runs vswitchctl and requires success; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "vswitchctl {args:?} failed ({}): {}\n--- log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// `vswitchctl status --json`, as raw text (for byte comparisons).
    pub fn status_text(&self) -> String {
        self.ctl_ok(&["status", "--json"])
    }

    /// `vswitchctl status --json`, parsed.
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.status_text()).expect("status is JSON")
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().expect("running").id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal");
    }

    /// SIGTERM, wait (it must exit 0), and the lines printed after the
    /// running line.
    pub fn stop(&mut self) -> Vec<String> {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        if let Some(mut c) = self.child.take() {
            let st = c.wait().expect("waits");
            assert!(st.success(), "vswitchd exit {st}: {}", self.log());
        }
        self.stdout.try_iter().collect()
    }
}

impl Drop for Vswitchd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}
