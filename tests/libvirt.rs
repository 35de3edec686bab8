//! libvirt, for real: Debian's `libvirtd` and `virtlogd` (started here as
//! children, no systemd), two domains defined and started with `virsh`
//! from the README's own snippets, and `vswitchd` between them.
//!
//! - `vm0`: `<interface type='vhostuser'>` with libvirt's `mode='client'`
//!   (QEMU connects, `<reconnect enabled='yes' timeout='1'/>`) to a switch
//!   server port whose socket is `root:kvm 0660` (`socket-group: kvm`,
//!   `socket-mode: "0660"`): QEMU runs as `libvirt-qemu` with group `kvm`
//!   among its groups, and the test checks that it is not root.
//! - `vm1`: libvirt's `mode='server'` (QEMU creates the socket, in a
//!   directory its user may write) and a switch port with `mode: client`.
//!
//! Both are `<domain type='qemu'>` (TCG: no KVM here) with 256 MiB of
//! shared memfd memory, booting the project's test guest (guest/init)
//! directly: they ping each other through the switch. Then the switch is
//! stopped and started again on the same config under the running domains:
//! pings fail, then resume in both. Everything is torn down by guards,
//! also when an assertion fails.
//!
//! The XML fragments and the YAML are the README's ("With libvirt"), with
//! its paths moved under the test's temporary directory; the test checks
//! that README.md still contains each of them verbatim.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::guest::{Daemon, guest_image};
use support::{find_in_path, repo, serial, wait_until};

const BOOT: Duration = Duration::from_secs(120);

/// The README's switch config (verbatim).
const YAML: &str = r#"switches:
  - name: sw0
    socket-group: kvm         # QEMU under libvirt runs in group kvm
    socket-mode: "0660"       # owner and group may connect; others get EACCES
    ports:
      - name: vm0             # server port: /run/vswitch/vm0.sock
        mac: 52:54:00:00:00:01
      - name: vm1             # client port: QEMU (libvirt mode='server') listens
        mode: client
        socket: /var/lib/vswitch/vm1.sock
        mac: 52:54:00:00:00:02
"#;

/// The README's shared-memory backing (verbatim).
const MEMORY: &str = r#"  <memoryBacking>
    <source type='memfd'/>
    <access mode='shared'/>
  </memoryBacking>"#;

/// The README's interface of vm0: QEMU connects to the switch's server port.
const IFACE_CLIENT: &str = r#"    <interface type='vhostuser'>
      <mac address='52:54:00:00:00:01'/>
      <source type='unix' path='/run/vswitch/vm0.sock' mode='client'>
        <reconnect enabled='yes' timeout='1'/>
      </source>
      <model type='virtio'/>
    </interface>"#;

/// The README's interface of vm1: QEMU listens, the switch connects.
const IFACE_SERVER: &str = r#"    <interface type='vhostuser'>
      <mac address='52:54:00:00:00:02'/>
      <source type='unix' path='/var/lib/vswitch/vm1.sock' mode='server'/>
      <model type='virtio'/>
    </interface>"#;

/// The README's domain head: software emulation where there is no KVM.
const DOMAIN_TYPE: &str = "<domain type='qemu'>";

/// The README's paths and where the test puts them.
struct Paths {
    /// /run/vswitch: the switch's runtime directory (root, 0755).
    run: PathBuf,
    /// /var/lib/vswitch: where QEMU creates its server sockets
    /// (libvirt-qemu:kvm, 0750).
    qemu: PathBuf,
}

impl Paths {
    fn apply(&self, s: &str) -> String {
        s.replace("/run/vswitch/", &format!("{}/", self.run.display()))
            .replace("/var/lib/vswitch/", &format!("{}/", self.qemu.display()))
    }
}

/// A daemon started here as a child; SIGTERM (then SIGKILL) on drop.
struct ChildGuard {
    name: &'static str,
    child: Child,
}

impl ChildGuard {
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let stopped = wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            eprintln!("{} did not stop on SIGTERM: killing it", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `virsh` on the test's own libvirtd socket.
struct Virsh {
    uri: String,
}

impl Virsh {
    fn try_run(&self, args: &[&str]) -> std::process::Output {
        Command::new("virsh")
            .arg("-c")
            .arg(&self.uri)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("virsh runs")
    }

    /// `virsh start`: QEMU waits for its vhost-user connection before the
    /// domain runs, so a socket QEMU may not use makes `virsh start` wait
    /// for ever; give it `timeout`, then panic with libvirt's log of the
    /// domain (where QEMU says why).
    fn start(&self, dom: &Domain, timeout: Duration) {
        let mut child = Command::new("virsh")
            .arg("-c")
            .arg(&self.uri)
            .args(["start", &dom.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("virsh runs");
        let mut status = None;
        let done = wait_until(timeout, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if !done {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        assert!(
            done && status.is_some_and(|s| s.success()),
            "virsh start {} {} {err}\nlibvirt's log of it:\n{}",
            dom.name,
            if done {
                "failed:"
            } else {
                "did not return (QEMU waits for its vhost-user connection)"
            },
            tail(&dom.qemu_log(), 1500)
        );
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(
            out.status.success(),
            "virsh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A defined domain: destroyed and undefined on drop (and its libvirt log
/// removed).
struct Domain<'a> {
    virsh: &'a Virsh,
    name: String,
    console: PathBuf,
}

impl Domain<'_> {
    fn markers(&self) -> Vec<String> {
        fs::read_to_string(&self.console)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.find("VSG ").map(|i| l[i + 4..].trim().to_string()))
            .collect()
    }

    /// Waits for a marker starting with `prefix` at index >= `from`; its
    /// index.
    fn expect_marker(&self, prefix: &str, from: usize, timeout: Duration) -> usize {
        let mut found = None;
        let ok = wait_until(timeout, || {
            found = self
                .markers()
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, m)| m.starts_with(prefix))
                .map(|(i, _)| i);
            found.is_some()
        });
        match (ok, found) {
            (true, Some(i)) => i,
            _ => panic!(
                "domain {}: no `{prefix}` marker (after #{from}) within {timeout:?}; console:\n{}\nlibvirt's log of it:\n{}",
                self.name,
                tail(&self.console, 3000),
                tail(&self.qemu_log(), 3000)
            ),
        }
    }

    fn qemu_log(&self) -> PathBuf {
        PathBuf::from(format!("/var/log/libvirt/qemu/{}.log", self.name))
    }

    /// The QEMU process's pid (libvirt's pid file).
    fn qemu_pid(&self) -> u32 {
        let f = format!("/run/libvirt/qemu/{}.pid", self.name);
        let s = fs::read_to_string(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        s.trim().parse().expect("a pid in libvirt's pid file")
    }
}

impl Drop for Domain<'_> {
    fn drop(&mut self) {
        let _ = self.virsh.try_run(&["destroy", &self.name]);
        let _ = self.virsh.try_run(&["undefine", &self.name]);
        let _ = fs::remove_file(self.qemu_log());
    }
}

/// Where a program is: on PATH, or in /usr/sbin (daemons; a non-login
/// root shell may not have it on PATH).
fn program(name: &str) -> Option<PathBuf> {
    find_in_path(name).or_else(|| {
        let p = Path::new("/usr/sbin").join(name);
        p.is_file().then_some(p)
    })
}

fn tail(path: &Path, bytes: usize) -> String {
    let s = fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()));
    let cut = s.len().saturating_sub(bytes);
    let cut = (cut..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[cut..].to_string()
}

/// Uid and the supplementary groups of a process (from /proc).
fn ids(pid: u32) -> (u32, Vec<u32>) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let uid = field("Uid:").first().copied().expect("a Uid line");
    (uid, field("Groups:"))
}

fn gid_of(group: &str) -> u32 {
    nix::unistd::Group::from_name(group)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("group {group} exists (Debian's libvirt packages create it)"))
        .gid
        .as_raw()
}

fn uid_of(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("user {user} exists (Debian's libvirt packages create it)"))
        .uid
        .as_raw()
}

/// Domain XML: the README's fragments around a direct kernel boot of the
/// test guest (qboot as the firmware, as tests/support/guest.rs does).
fn domain_xml(name: &str, img: &Path, cmdline: &str, console: &Path, iface: &str) -> String {
    format!(
        "{DOMAIN_TYPE}
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
{MEMORY}
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader type='rom'>/usr/share/qemu/qboot.rom</loader>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'>
      <source path='{console}'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
{iface}
  </devices>
</domain>
",
        kernel = img.join("vmlinux").display(),
        initrd = img.join("initramfs.cpio.gz").display(),
        console = console.display(),
    )
}

#[test]
fn two_libvirt_domains_in_both_vhostuser_modes_ping_through_vswitchd_and_survive_its_restart() {
    let _one = serial();
    let missing: Vec<&str> = ["libvirtd", "virtlogd", "virsh"]
        .into_iter()
        .filter(|p| program(p).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED: libvirt is not installed ({} missing): run scripts/install-deps.sh",
            missing.join(", ")
        );
        return;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "the libvirt test runs the system libvirtd (qemu:///system): run it as root"
    );
    let started = Instant::now();

    // The README's snippets are what runs here.
    let readme = fs::read_to_string(repo().join("README.md")).expect("README.md");
    for (what, snippet) in [
        ("switch config", YAML),
        ("memory backing", MEMORY),
        ("mode='client' interface", IFACE_CLIENT),
        ("mode='server' interface", IFACE_SERVER),
        ("domain type", DOMAIN_TYPE),
    ] {
        assert!(
            readme.contains(snippet),
            "README.md's libvirt section no longer shows the {what} this test runs:\n{snippet}"
        );
    }

    let img = guest_image();
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    // QEMU runs as libvirt-qemu: it must reach the sockets, so the
    // directories on the way are searchable by others (as /run is).
    fs::set_permissions(t, fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
    let paths = Paths {
        run: t.join("run"),
        qemu: t.join("qemu"),
    };
    // /run/vswitch: what vswitchd.service's RuntimeDirectory makes.
    fs::create_dir(&paths.run).expect("runtime dir");
    fs::set_permissions(&paths.run, fs::Permissions::from_mode(0o755)).expect("chmod run");
    // The directory QEMU creates its server socket in: QEMU's user must
    // be able to write it (`install -d -o libvirt-qemu -g kvm -m 0750`).
    fs::create_dir(&paths.qemu).expect("qemu socket dir");
    chown(
        &paths.qemu,
        Some(uid_of("libvirt-qemu")),
        Some(gid_of("kvm")),
    )
    .expect("chown qemu socket dir");
    fs::set_permissions(&paths.qemu, fs::Permissions::from_mode(0o750)).expect("chmod qemu");
    // libvirt's DAC driver chowns the kernel and initrd to QEMU's user
    // while the domain runs: give it copies, not the shared image.
    let boot = t.join("boot");
    fs::create_dir(&boot).expect("boot dir");
    for f in ["vmlinux", "initramfs.cpio.gz"] {
        fs::copy(img.join(f), boot.join(f)).expect("copy the guest image");
    }

    // libvirtd and virtlogd, as children on a private control socket.
    // Their state directories are the system ones (/run/libvirt,
    // /var/lib/libvirt): a system libvirtd already running there is in
    // the way (the wait below fails with their logs).
    let conf = |name: &str, body: String| {
        let p = t.join(name);
        fs::write(&p, body).expect("write libvirt config");
        p
    };
    let virtlogd_conf = conf(
        "virtlogd.conf",
        format!(
            "log_outputs = \"3:file:{}\"\n",
            t.join("virtlogd.log").display()
        ),
    );
    let libvirtd_conf = conf(
        "libvirtd.conf",
        format!(
            "unix_sock_dir = \"{}\"\nlog_outputs = \"3:file:{}\"\n",
            t.display(),
            t.join("libvirtd.log").display()
        ),
    );
    let spawn = |name: &'static str, conf: &Path| ChildGuard {
        name,
        child: Command::new(program(name).expect("checked above"))
            .arg("--config")
            .arg(conf)
            .arg("--pid-file")
            .arg(t.join(format!("{name}.pid")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(t.join(format!("{name}.stderr"))).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}")),
    };
    let mut virtlogd = spawn("virtlogd", &virtlogd_conf);
    let mut libvirtd = spawn("libvirtd", &libvirtd_conf);
    let virsh = Virsh {
        uri: format!("qemu:///system?socket={}", t.join("libvirt-sock").display()),
    };
    let up = wait_until(Duration::from_secs(60), || {
        libvirtd.running() && virtlogd.running() && virsh.try_run(&["version"]).status.success()
    });
    assert!(
        up,
        "libvirtd did not answer (running: libvirtd {}, virtlogd {}):\n{}\n{}\n{}",
        libvirtd.running(),
        virtlogd.running(),
        tail(&t.join("libvirtd.stderr"), 2000),
        tail(&t.join("libvirtd.log"), 2000),
        tail(&t.join("virtlogd.stderr"), 2000),
    );
    let version = virsh.run(&["version"]);
    eprintln!("{}", version.trim());
    let daemons_up = started.elapsed();

    // The switch, with the README's config (paths moved).
    let mut daemon = Daemon::start(&paths.run, &paths.apply(YAML));
    let vm0_sock = paths.run.join("vm0.sock");
    let meta = fs::metadata(&vm0_sock).expect("vm0.sock exists");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o660,
        "socket-mode applies to the server port's socket"
    );
    assert_eq!(meta.gid(), gid_of("kvm"), "socket-group applies");

    // Two domains: vm0 connects to the switch (client), vm1 listens
    // (server); vm1 first, as `virsh start` of a mode='server' domain
    // returns once QEMU listens and the switch connects.
    let tag = std::process::id();
    let mut domains = Vec::new();
    for (vm, ip, peer, iface) in [
        ("vm1", "10.0.0.2/24", "10.0.0.1", IFACE_SERVER),
        ("vm0", "10.0.0.1/24", "10.0.0.2", IFACE_CLIENT),
    ] {
        let name = format!("vswitch-test-{tag}-{vm}");
        let console = t.join(format!("{vm}.console"));
        let cmdline = format!(
            "console=ttyS0 panic=0 quiet vs.ip={ip} vs.peer={peer} vs.tests=ping vs.wait=120"
        );
        let xml = domain_xml(&name, &boot, &cmdline, &console, &paths.apply(iface));
        let file = t.join(format!("{vm}.xml"));
        fs::write(&file, xml).expect("write domain XML");
        virsh.run(&["define", &file.to_string_lossy()]);
        let dom = Domain {
            virsh: &virsh,
            name,
            console,
        };
        virsh.start(&dom, Duration::from_secs(60));
        domains.push(dom);
    }
    let (vm1, vm0) = (&domains[0], &domains[1]);
    assert!(
        paths.qemu.join("vm1.sock").exists(),
        "QEMU created vm1's socket in the directory its user owns"
    );
    let meta = fs::metadata(paths.qemu.join("vm1.sock")).expect("vm1.sock");
    let mode = meta.permissions().mode() & 0o777;
    eprintln!(
        "vm1.sock (QEMU's): uid {} gid {} mode {mode:o}",
        meta.uid(),
        meta.gid()
    );
    assert_eq!(
        meta.uid(),
        uid_of("libvirt-qemu"),
        "QEMU, as libvirt-qemu, owns the socket it created"
    );
    assert_eq!(mode & 0o002, 0, "others may not connect to QEMU's socket");

    // QEMU is not root: the socket's group is what lets vm0's QEMU in.
    let kvm = gid_of("kvm");
    for dom in [vm0, vm1] {
        let (uid, groups) = ids(dom.qemu_pid());
        assert_ne!(uid, 0, "{}: libvirt runs QEMU as libvirt-qemu", dom.name);
        assert!(
            groups.contains(&kvm),
            "{}: QEMU's groups {groups:?} include kvm ({kvm})",
            dom.name
        );
    }

    for dom in [vm0, vm1] {
        let i = dom.expect_marker("result ping", 0, BOOT);
        assert_eq!(
            dom.markers()[i],
            "result ping 5",
            "{}: five of five pings through the switch",
            dom.name
        );
        dom.expect_marker("ping ok", i, Duration::from_secs(30));
    }
    let first_traffic = started.elapsed();

    // Restart the switch under the running domains: pings fail while it
    // is down, then resume in both (vm0's QEMU reconnects every second,
    // the switch reconnects to vm1's QEMU).
    daemon.stop();
    for dom in [vm0, vm1] {
        let from = dom.markers().len();
        dom.expect_marker("ping fail", from, Duration::from_secs(30));
    }
    assert!(
        paths.qemu.join("vm1.sock").exists(),
        "vm1's socket (QEMU's) outlives the switch"
    );
    daemon.restart();
    for dom in [vm0, vm1] {
        let from = dom.markers().len();
        let i = dom.expect_marker("ping ok", from, Duration::from_secs(60));
        dom.expect_marker("ping ok", i + 1, Duration::from_secs(30));
    }
    let log = support::strip_ansi(&daemon.log());
    for port in ["vm0", "vm1"] {
        let n = log
            .matches(&format!("frontend connected port={port}"))
            .count();
        assert!(
            n >= 2,
            "port {port} connected before and after the restart ({n} times):\n{}",
            daemon.log_tail()
        );
    }
    for dom in [vm0, vm1] {
        let state = virsh.run(&["domstate", &dom.name]);
        assert_eq!(state.trim(), "running", "{} kept running", dom.name);
    }
    let resumed = started.elapsed();

    // Tear down in order: domains, switch, libvirt.
    drop(domains);
    assert!(
        !paths.qemu.join("vm1.sock").exists(),
        "QEMU removed its socket when the domain was destroyed"
    );
    let list = virsh.run(&["list", "--all", "--name"]);
    assert!(
        !list.contains(&format!("vswitch-test-{tag}")),
        "the domains are undefined: {list}"
    );
    daemon.stop();
    assert!(!vm0_sock.exists(), "vswitchd removed its server socket");
    drop(libvirtd);
    drop(virtlogd);
    eprintln!(
        "libvirt test: daemons up {:.1}s, first pings {:.1}s, resumed after restart {:.1}s, total {:.1}s",
        daemons_up.as_secs_f64(),
        first_traffic.as_secs_f64(),
        resumed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
