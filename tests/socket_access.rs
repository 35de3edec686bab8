//! Who may connect to the vhost-user sockets vswitchd creates: a real
//! vswitchd, the files' modes and owners as the kernel reports them, and
//! connection attempts by an unprivileged process (`setpriv` as nobody
//! running a two-line Python connector). A local user who could connect
//! would hold the port's single connection and keep the VM out.
//!
//! Needs root (to run the connector as another user); skipped otherwise.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use support::Vswitchd;

const PYTHON: &str = "/usr/bin/python3";
const CONNECT: &str = "import socket, sys\n\
                       s = socket.socket(socket.AF_UNIX)\n\
                       s.connect(sys.argv[1])\n";
/// A gid nobody is in.
const OTHER_GID: u32 = 65533;

/// (mode bits, uid, gid, inode) of a socket file.
fn stat(p: &Path) -> (u32, u32, u32, u64) {
    let m = std::fs::symlink_metadata(p).expect("socket exists");
    assert!(
        std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()),
        "{} is a socket",
        p.display()
    );
    (m.mode() & 0o7777, m.uid(), m.gid(), m.ino())
}

/// Connects to `sock` as uid 65534 (nobody) with only group `gid`.
fn connect_as_nobody(sock: &Path, gid: u32) -> Result<(), String> {
    let out = Command::new("setpriv")
        .arg("--reuid=65534")
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(PYTHON)
        .arg("-c")
        .arg(CONNECT)
        .arg(sock)
        .output()
        .expect("setpriv runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn refused(r: Result<(), String>) {
    match r {
        Ok(()) => panic!("nobody connected"),
        Err(e) => assert!(
            e.contains("PermissionError") && e.contains("Errno 13"),
            "EACCES expected: {e}"
        ),
    }
}

/// A group of this host to give the sockets: kvm, or else nogroup.
fn some_group() -> (String, u32) {
    for name in ["kvm", "nogroup"] {
        if let Ok(Some(g)) = nix::unistd::Group::from_name(name) {
            return (name.to_string(), g.gid.as_raw());
        }
    }
    panic!("neither group kvm nor nogroup exists");
}

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to connect as another user");
        return false;
    }
    let ok = Path::new(PYTHON).exists()
        && Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: needs setpriv and {PYTHON}");
    }
    ok
}

#[test]
fn sockets_get_their_mode_and_group_and_keep_others_out() {
    if !can_run() {
        return;
    }
    let (group, gid) = some_group();
    let yaml = |shared_mode: &str, private_extra: &str, shared_group: &str| {
        format!(
            "switches:
  - name: sw0
    ports:
      - name: private{private_extra}
      - name: shared
        socket-group: {shared_group}
        socket-mode: \"{shared_mode}\"
      - name: client
        mode: client
        socket: /nonexistent/qemu.sock
"
        )
    };
    let mut d = Vswitchd::start_searchable(&yaml("0660", "", &group));
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );

    // The default: 0600, the daemon's user and group.
    let (mode, uid, g, private_ino) = stat(&d.sock("private"));
    assert_eq!((mode, uid, g), (0o600, euid, egid), "mode {mode:o}");
    // socket-mode and socket-group.
    let (mode, uid, g, shared_ino) = stat(&d.sock("shared"));
    assert_eq!((mode, uid, g), (0o660, euid, gid), "mode {mode:o}");
    // Nothing is left of the private directories the sockets were made in.
    let leftovers: Vec<String> = std::fs::read_dir(d.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".vs-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The point of it: an unprivileged local process cannot connect to a
    // default socket, nor to a group socket unless it is in the group.
    refused(connect_as_nobody(&d.sock("private"), gid));
    refused(connect_as_nobody(&d.sock("shared"), OTHER_GID));
    connect_as_nobody(&d.sock("shared"), gid).expect("a member of the group connects");

    // A reload that changes only owner, group or mode applies it to the
    // same socket files, in place.
    let private_extra = format!("\n        socket-group: {group}\n        socket-mode: 0660");
    std::fs::write(d.file(), yaml("0640", &private_extra, &group)).expect("write");
    let out = d.ctl(&["reload"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!(
            "port private: socket mode 0600 -> 0660, group default -> {group} ({gid})"
        )),
        "{said}"
    );
    assert!(
        said.contains("port shared: socket mode 0660 -> 0640"),
        "{said}"
    );
    assert_eq!(stat(&d.sock("private")), (0o660, euid, gid, private_ino));
    assert_eq!(stat(&d.sock("shared")), (0o640, euid, gid, shared_ino));
    connect_as_nobody(&d.sock("private"), gid).expect("the group may connect now");
    refused(connect_as_nobody(&d.sock("shared"), gid));

    // An unknown group: the reload is refused at the key's position, and
    // nothing changes.
    std::fs::write(
        d.file(),
        yaml("0660", &private_extra, "no-such-group-for-vswitch"),
    )
    .expect("write");
    let out = d.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:8:23: switches[0].ports[1].socket-group: unknown group `no-such-group-for-vswitch`",
        d.file().display()
    );
    assert!(err.contains(&want), "{want} in {err}");
    assert_eq!(stat(&d.sock("shared")), (0o640, euid, gid, shared_ino));
    let status = d.ctl(&["status"]);
    assert!(status.status.success(), "still serving: {status:?}");

    // `config check` resolves names the same way, without the daemon.
    let out = d.ctl(&["config", "check", &d.file().display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&want),
        "{out:?}"
    );

    // A socket file someone replaced is not touched: the reload is
    // refused, and the change already made to another port is undone.
    std::fs::remove_file(d.sock("shared")).expect("rm");
    let impostor = std::os::unix::net::UnixListener::bind(d.sock("shared")).expect("bind");
    std::fs::set_permissions(d.sock("shared"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let private_0640 = format!("\n        socket-group: {group}\n        socket-mode: 0640");
    std::fs::write(d.file(), yaml("0600", &private_0640, &group)).expect("write");
    let out = d.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reload refused, nothing changed")
            && err.contains("no longer the port's socket"),
        "{err}"
    );
    assert_eq!(stat(&d.sock("private")), (0o660, euid, gid, private_ino));
    assert_eq!(stat(&d.sock("shared")).0, 0o644);
    drop(impostor);
    std::fs::remove_file(d.sock("shared")).expect("rm");

    d.stop();
    assert!(!d.sock("private").exists());
}
