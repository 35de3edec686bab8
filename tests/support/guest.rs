//! Real peers for the guest suites: the `vswitchd` daemon as a process
//! and QEMU guests booted from the Debian-built test image
//! (scripts/build-guest.sh, guest/init). Every process is killed when its
//! handle drops, so a failing test leaves nothing running.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{find_in_path, repo, wait_until};

/// The guest image directory, built on first use (idempotent, ~15 s).
pub fn guest_image() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("VSWITCH_GUEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("target/guest"));
        let out = Command::new(repo().join("scripts/build-guest.sh"))
            .env("VSWITCH_GUEST_DIR", &dir)
            .output()
            .expect("scripts/build-guest.sh runs");
        assert!(
            out.status.success(),
            "scripts/build-guest.sh failed (run scripts/install-deps.sh first):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            find_in_path("qemu-system-x86_64").is_some(),
            "qemu-system-x86_64 is missing: run scripts/install-deps.sh"
        );
        dir
    })
}

fn tail(path: &Path, bytes: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("({} missing)", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    s
}

/// A running `vswitchd` with a config file, its own runtime directory and
/// a log file.
pub struct Daemon {
    child: Option<Child>,
    pub dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Writes `yaml` to DIR/vswitch.yaml and starts the daemon on it
    /// (adaptive idle: the guests need the CPU more than the switch).
    pub fn start(dir: &Path, yaml: &str) -> Daemon {
        let config = dir.join("vswitch.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let mut d = Daemon {
            child: None,
            dir: dir.to_path_buf(),
            config,
            log: dir.join("vswitchd.log"),
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let before = self.log().matches("vswitchd: running").count();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log");
        let child = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--config")
            .arg(&self.config)
            .arg("--runtime-dir")
            .arg(&self.dir)
            .args(["--idle", "adaptive"])
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("vswitchd starts");
        self.child = Some(child);
        let started = wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&self.log)
                .map(|s| s.matches("vswitchd: running").count() > before)
                .unwrap_or(false)
        });
        assert!(started, "vswitchd did not start:\n{}", self.log_tail());
    }

    /// The last few KiB of the daemon's log.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 4096)
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: a crash, leaving its sockets behind.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the clean stop (prints per-port counters).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let done = wait_until(Duration::from_secs(10), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
            if !done {
                let _ = c.kill();
                let _ = c.wait();
                panic!("vswitchd did not stop on SIGTERM:\n{}", self.log_tail());
            }
        }
    }

    /// Starts the daemon again on the same config and directory.
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a guest's NIC reaches the switch.
#[derive(Clone, Debug)]
pub enum Attach {
    /// The switch is the server: QEMU connects, and reconnects every second.
    ToServer(PathBuf),
    /// QEMU is the server on this path (the switch connects to it).
    AsServer(PathBuf),
}

/// One QEMU guest running guest/init with `vs.*` arguments.
pub struct Guest {
    child: Option<Child>,
    pub name: String,
    pub console: PathBuf,
    monitor: PathBuf,
    args: GuestArgs,
}

/// What a guest is and does (kernel command line of guest/init).
#[derive(Clone, Debug, Default)]
pub struct GuestArgs {
    pub mac: String,
    pub ip: String,
    pub vlan: Option<u16>,
    /// More 802.1Q sub-interfaces: (VLAN, address/prefix).
    pub vlans: Vec<(u16, String)>,
    pub peer: Option<String>,
    pub tests: Option<String>,
    pub len_s: u32,
    pub wait_s: u32,
    /// Queue pairs of its NIC (and as many vCPUs); 0 or 1: one.
    pub queues: u16,
}

impl Guest {
    /// Boots a guest whose console goes to DIR/NAME.N.log (N counts boots
    /// of this QEMU process's predecessors).
    pub fn boot(dir: &Path, name: &str, attach: &Attach, args: GuestArgs) -> Guest {
        let mut g = Guest {
            child: None,
            name: name.to_string(),
            console: PathBuf::new(),
            monitor: dir.join(format!("{name}.mon")),
            args,
        };
        g.spawn(dir, attach, 0);
        g
    }

    fn spawn(&mut self, dir: &Path, attach: &Attach, generation: u32) {
        let img = guest_image();
        let a = &self.args;
        self.console = dir.join(format!("{}.{generation}.log", self.name));
        let _ = std::fs::remove_file(&self.monitor);
        let mut cmdline = format!(
            "console=ttyS0 panic=0 quiet vs.ip={} vs.len={} vs.wait={}",
            a.ip,
            a.len_s.max(1),
            if a.wait_s == 0 { 120 } else { a.wait_s }
        );
        if let Some(v) = a.vlan {
            cmdline.push_str(&format!(" vs.vlan={v}"));
        }
        if !a.vlans.is_empty() {
            let list: Vec<String> = a.vlans.iter().map(|(v, ip)| format!("{v}:{ip}")).collect();
            cmdline.push_str(&format!(" vs.vlans={}", list.join(",")));
        }
        if let Some(p) = &a.peer {
            cmdline.push_str(&format!(" vs.peer={p}"));
        }
        if let Some(t) = &a.tests {
            cmdline.push_str(&format!(" vs.tests={t}"));
        }
        let chardev = match attach {
            Attach::ToServer(p) => format!("socket,id=c0,path={},reconnect-ms=1000", p.display()),
            Attach::AsServer(p) => format!("socket,id=c0,path={},server=on,wait=off", p.display()),
        };
        let err = File::create(dir.join(format!("{}.{generation}.qemu-stderr", self.name)))
            .expect("qemu stderr file");
        let queues = a.queues.max(1);
        let (netdev, device) = if queues > 1 {
            (
                format!("vhost-user,id=n0,chardev=c0,queues={queues}"),
                format!(
                    "virtio-net-pci,netdev=n0,mac={},mq=on,vectors={}",
                    a.mac,
                    2 * queues + 2
                ),
            )
        } else {
            (
                "vhost-user,id=n0,chardev=c0".to_string(),
                format!("virtio-net-pci,netdev=n0,mac={}", a.mac),
            )
        };
        let child = Command::new("qemu-system-x86_64")
            .args(["-accel", "tcg", "-m", "256M", "-nographic"])
            .arg("-smp")
            .arg(queues.to_string())
            // No -no-reboot: it turns the monitor's system_reset into an
            // exit. panic=0 makes a kernel panic hang (visible on the
            // console, ended by the test's timeout) instead of rebooting.
            .args(["-display", "none"])
            .arg("-serial")
            .arg(format!("file:{}", self.console.display()))
            .arg("-monitor")
            .arg(format!(
                "unix:{},server=on,wait=off",
                self.monitor.display()
            ))
            .args(["-bios", "/usr/share/qemu/qboot.rom"])
            .args([
                "-object",
                "memory-backend-memfd,id=mem,size=256M,share=on",
                "-machine",
                "pc,memory-backend=mem",
            ])
            .arg("-kernel")
            .arg(img.join("vmlinux"))
            .arg("-initrd")
            .arg(img.join("initramfs.cpio.gz"))
            .arg("-append")
            .arg(cmdline)
            .arg("-chardev")
            .arg(chardev)
            .arg("-netdev")
            .arg(netdev)
            .arg("-device")
            .arg(device)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("qemu-system-x86_64 starts");
        self.child = Some(child);
    }

    /// The console so far.
    pub fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Lines of the console that carry a marker ("VSG ...").
    pub fn markers(&self) -> Vec<String> {
        self.console()
            .lines()
            .filter_map(|l| l.find("VSG ").map(|i| l[i + 4..].trim().to_string()))
            .collect()
    }

    /// Waits for a marker line starting with `prefix`, at index >= `from`
    /// of `markers()`; returns its index and text, or panics with the
    /// console tail after `timeout`.
    pub fn expect_marker(&self, prefix: &str, from: usize, timeout: Duration) -> (usize, String) {
        let mut found = None;
        let ok = wait_until(timeout, || {
            found = self
                .markers()
                .into_iter()
                .enumerate()
                .skip(from)
                .find(|(_, m)| m.starts_with(prefix));
            found.is_some()
        });
        match (ok, found) {
            (true, Some(f)) => f,
            _ => panic!(
                "guest {}: no `{prefix}` marker (after #{from}) within {timeout:?}; console tail:\n{}",
                self.name,
                tail(&self.console, 3000)
            ),
        }
    }

    /// Sends an HMP command (e.g. `system_reset`) to the QEMU monitor.
    pub fn monitor(&self, command: &str) {
        let mut s = UnixStream::connect(&self.monitor).expect("QEMU monitor socket");
        s.write_all(format!("{command}\n").as_bytes())
            .expect("monitor write");
        // Give QEMU a moment to read the command before the socket closes.
        std::thread::sleep(Duration::from_millis(300));
    }

    /// SIGKILL the QEMU process (the guest's host process dies).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a new QEMU process for this guest (console in a new file).
    pub fn restart(&mut self, dir: &Path, attach: &Attach, generation: u32) {
        self.kill();
        self.spawn(dir, attach, generation);
    }

    /// Whether the QEMU process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Parses "VSG result NAME VALUE[,VALUE...]" markers into numbers.
pub fn result(markers: &[String], name: &str) -> Option<Vec<f64>> {
    let prefix = format!("result {name} ");
    markers.iter().find_map(|m| {
        m.strip_prefix(&prefix).map(|v| {
            v.split(',')
                .map(|x| x.trim().parse::<f64>().unwrap_or(f64::NAN))
                .collect()
        })
    })
}
