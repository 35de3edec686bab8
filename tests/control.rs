//! vswitchd's control socket and live reload, as an operator uses them:
//! real `vswitchd` processes on a temporary runtime directory, driven with
//! the real `vswitchctl`.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Netns, Vswitchd};

const BASE: &str = "\
switches:
  - name: sw0
    port-groups:
      - name: web
        vlan: 10
      - name: trunk
        vlan: { trunk: [10, 20], native: 1 }
    ports:
      - name: vm0
        port-group: web
        mac: 52:54:00:00:00:01
      - name: vm1
        port-group: trunk
";

/// The `ports` of switch `sw` in a status reply.
fn ports(status: &Value, sw: usize) -> Vec<Value> {
    status["switches"][sw]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn port<'a>(ports: &'a [Value], name: &str) -> &'a Value {
    ports
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name} in {ports:?}"))
}

fn names(ports: &[Value]) -> Vec<String> {
    ports
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect()
}

fn sock_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sock"))
        .collect();
    v.sort();
    v
}

#[test]
fn control_socket_is_private_and_status_matches_the_file() {
    let mut d = Vswitchd::start(BASE);
    let ctl = d.path().join("vswitchd.sock");
    let mode = std::fs::metadata(&ctl)
        .expect("control socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode {mode:o}");

    let st = d.status();
    assert_eq!(st["config_file"], d.file().display().to_string());
    assert_eq!(st["control_socket"], ctl.display().to_string());
    assert_eq!(st["switches"][0]["name"], "sw0");
    let p = ports(&st, 0);
    assert_eq!(names(&p), ["vm0", "vm1"]);
    let vm0 = port(&p, "vm0");
    assert_eq!(vm0["type"], "vhost-user");
    assert_eq!(vm0["role"], "server");
    assert_eq!(
        vm0["socket"],
        d.path().join("vm0.sock").display().to_string()
    );
    assert_eq!(vm0["connected"], false);
    assert_eq!(vm0["port_group"], "web");
    assert_eq!(vm0["vlan"]["mode"], "access");
    assert_eq!(vm0["vlan"]["vlan"], 10);
    assert_eq!(vm0["mac"], "52:54:00:00:00:01");
    let vm1 = port(&p, "vm1");
    assert_eq!(vm1["vlan"]["mode"], "trunk");
    assert_eq!(vm1["vlan"]["allowed"], "1,10,20");
    assert_eq!(vm1["vlan"]["native"], 1);

    let human = d.ctl_ok(&["status"]);
    assert!(human.contains("switch sw0 (MTU 1500"), "{human}");
    let vm0_line = human
        .lines()
        .find(|l| l.trim_start().starts_with("vm0 "))
        .unwrap_or_else(|| panic!("{human}"));
    for word in ["vhost-user", "server", "vm0.sock", "no", "web", "VLAN 10"] {
        assert!(vm0_line.contains(word), "{word} in {vm0_line}");
    }
    // `show` is the same command.
    assert_eq!(d.ctl_ok(&["show"]), human);

    let stats = d.ctl_ok(&["stats"]);
    assert!(
        stats.contains("PORT") && stats.contains("DROPPED ON INGRESS"),
        "{stats}"
    );
    let stats: Value = serde_json::from_str(&d.ctl_ok(&["stats", "--json"])).expect("json");
    assert_eq!(stats["switches"][0]["ports"][0]["name"], "vm0");
    assert_eq!(stats["switches"][0]["ports"][0]["rx_packets"], 0);

    // vm0's configured MAC is a static entry of its access VLAN.
    let fdb: Value = serde_json::from_str(&d.ctl_ok(&["mac-table", "--json"])).expect("json");
    let entries = fdb["switches"][0]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["vlan"], 10);
    assert_eq!(entries[0]["mac"], "52:54:00:00:00:01");
    assert_eq!(entries[0]["port"], "vm0");
    assert_eq!(entries[0]["static"], true);
    let fdb = d.ctl_ok(&["mac-table"]);
    assert!(fdb.contains("52:54:00:00:00:01  vm0   static"), "{fdb}");

    let v = d.ctl_ok(&["version"]);
    assert!(
        v.contains("vswitchd 0.1.0") && v.contains("protocol 1"),
        "{v}"
    );

    let rest = d.stop();
    assert!(rest.iter().any(|l| l.starts_with("port vm0:")), "{rest:?}");
    assert!(
        sock_files(d.path()).is_empty(),
        "SIGTERM leaves no sockets: {:?}",
        sock_files(d.path())
    );
}

#[test]
fn reload_adds_and_removes_ports_and_changes_vlans() {
    let d = Vswitchd::start(BASE);
    assert_eq!(
        sock_files(d.path()),
        ["vm0.sock", "vm1.sock", "vswitchd.sock"]
    );
    // vm1 goes, vm2 comes, vm0 moves from VLAN 10 to 20.
    let next = BASE
        .replace(
            "      - name: vm1\n        port-group: trunk\n",
            "      - name: vm2\n        vlan: 30\n",
        )
        .replace("vlan: 10\n", "vlan: 20\n");
    d.write_config(&next);

    let before = d.status_text();
    let dry = d.ctl_ok(&["reload", "--dry-run"]);
    for want in [
        "port vm0: VLAN 10 -> 20",
        "port vm1: removed from switch sw0",
        "port vm2: added to switch sw0",
        "would be applied; nothing changed",
    ] {
        assert!(dry.contains(want), "{want} in {dry}");
    }
    assert_eq!(d.status_text(), before, "a dry run changes nothing");
    assert_eq!(
        sock_files(d.path()),
        ["vm0.sock", "vm1.sock", "vswitchd.sock"]
    );

    let out = d.ctl_ok(&["reload"]);
    assert!(out.contains("3 changes applied"), "{out}");
    assert_eq!(
        sock_files(d.path()),
        ["vm0.sock", "vm2.sock", "vswitchd.sock"],
        "vm2's socket is created, vm1's deleted"
    );
    let st = d.status();
    let p = ports(&st, 0);
    assert_eq!(names(&p), ["vm0", "vm2"]);
    assert_eq!(port(&p, "vm0")["vlan"]["vlan"], 20);
    assert_eq!(port(&p, "vm2")["vlan"]["vlan"], 30);
    assert_eq!(st["reloads"], 1);
    // The MAC table follows: vm0's static entry is now in VLAN 20.
    let fdb: Value = serde_json::from_str(&d.ctl_ok(&["mac-table", "--json"])).expect("json");
    assert_eq!(fdb["switches"][0]["entries"][0]["vlan"], 20);
    // A port keeps its ID; a new one gets a fresh ID.
    assert_eq!(port(&p, "vm0")["id"], 0);
    assert_eq!(port(&p, "vm2")["id"], 2);

    // Reloading the same file again changes nothing.
    let again = d.ctl_ok(&["reload"]);
    assert!(again.contains("no changes"), "{again}");

    // Bringing vm1 back re-creates its socket.
    d.write_config(BASE);
    d.ctl_ok(&["reload"]);
    assert_eq!(
        sock_files(d.path()),
        ["vm0.sock", "vm1.sock", "vswitchd.sock"]
    );
    assert_eq!(port(&ports(&d.status(), 0), "vm1")["id"], 1);
}

#[test]
fn broken_or_unsupported_reloads_change_nothing() {
    // In a namespace with an `eth0` of its own: the uplink the reload
    // below adds must exist, and must not be the host's.
    let ns = Netns::with_veths("reload", &["eth0"]);
    let d = Vswitchd::start_in_netns(&ns.name, BASE);
    let before = d.status_text();

    // A typo: the error names file, line and column, and exit code is 1.
    d.write_config(&BASE.replace("        port-group: trunk\n", "        prot-group: trunk\n"));
    for args in [&["reload"][..], &["reload", "--dry-run"][..]] {
        let out = d.ctl(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:13:9: ", d.file().display());
        assert!(err.contains(&want), "{want} in {err}");
        assert!(
            err.contains("unknown key `prot-group`; did you mean `port-group`?"),
            "{err}"
        );
    }
    assert_eq!(d.status_text(), before, "an invalid file changes nothing");

    // A missing file.
    let out = d.ctl(&["reload", "--config", "/nonexistent/vswitch.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration"),
        "{out:?}"
    );

    // Changes that need a restart refuse the
    // whole reload, even the parts that could be applied.
    d.write_config(&format!(
        "runtime:\n  pmd-cores: [0]\n{}",
        BASE.replace("vlan: 10\n", "vlan: 20\n")
            .replace("  - name: sw0\n", "  - name: sw0\n    mtu: 9000\n")
            + "    uplinks:\n      - name: eth0\n    teams:\n      - name: team0\n        active: [eth0]\n"
    ));
    let out = d.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "reload refused, nothing changed:",
        "needs a restart: runtime: PMD cores none (one unpinned thread) -> 0",
        "needs a restart: switch sw0: MTU 1500 -> 9000 (the PMDs' packet buffers hold at most MTU",
        "needs a restart: uplink eth0: added to switch sw0",
        "needs a restart: team0: team added to switch sw0",
        "(uplinks, teams and internal ports are opened at start; restart vswitchd to change them)",
    ] {
        assert!(err.contains(want), "{want} in {err}");
    }
    assert!(!err.contains("VLAN 10 -> 20"), "only the blockers: {err}");
    assert_eq!(d.status_text(), before, "a refused reload changes nothing");
    assert!(
        d.log().contains("reload refused"),
        "the error is logged too: {}",
        d.log()
    );

    // An uplink whose interface does not exist: the file is refused at
    // the name's position, nothing changes.
    d.write_config(&format!("{BASE}    uplinks:\n      - name: gone0\n"));
    let out = d.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:15:15: switches[0].uplinks[0].name: no network interface `gone0` on this host",
        d.file().display()
    );
    assert!(err.contains(&want), "{want} in {err}");
    assert_eq!(d.status_text(), before, "a refused reload changes nothing");

    // The daemon still works and still reloads.
    d.write_config(&BASE.replace("vlan: 10\n", "vlan: 11\n"));
    d.ctl_ok(&["reload"]);
    assert_eq!(port(&ports(&d.status(), 0), "vm0")["vlan"]["vlan"], 11);
}

#[test]
fn reload_with_another_file_makes_it_the_config() {
    let d = Vswitchd::start(BASE);
    let other = d.path().join("other.yaml");
    std::fs::write(&other, BASE.replace("vm1", "vm9")).expect("write");
    let out = d.ctl_ok(&["reload", "--config", &other.display().to_string()]);
    assert!(out.contains("port vm9: added"), "{out}");
    let st = d.status();
    assert_eq!(st["config_file"], other.display().to_string());
    assert_eq!(names(&ports(&st, 0)), ["vm0", "vm9"]);
    // A plain reload now re-reads other.yaml (unchanged): nothing to do.
    assert!(d.ctl_ok(&["reload"]).contains("no changes"));
}

#[test]
fn sighup_reloads_and_survives_a_bad_file() {
    let d = Vswitchd::start(BASE);
    let before = d.status_text();
    d.write_config("switches:\n  - name: sw0\n    mtu: 99999\n");
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log().contains("99999 is out of range") {
        assert!(Instant::now() < deadline, "no error logged: {}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        d.status_text(),
        before,
        "a bad file on SIGHUP changes nothing"
    );

    d.write_config(&BASE.replace("vlan: 10\n", "vlan: 20\n"));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = d.status();
        if port(&ports(&st, 0), "vm0")["vlan"]["vlan"] == 20 {
            assert_eq!(st["reloads"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn vswitchctl_without_a_daemon_fails_with_code_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--runtime-dir")
        .arg(dir.path())
        .arg("status")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to vswitchd"), "{err}");
}

/// As root: a user that is neither root nor the daemon's user is refused
/// even when the socket's mode would let it connect.
#[test]
fn other_users_are_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run vswitchctl as another user");
        return;
    }
    let d = Vswitchd::start(BASE);
    let ctl = d.path().join("vswitchd.sock");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = {
        use std::os::unix::process::CommandExt;
        Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
            .arg("--socket")
            .arg(&ctl)
            .arg("status")
            .uid(65534)
            .gid(65534)
            .output()
            .expect("runs as nobody")
    };
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied: uid 65534"), "{err}");
    assert!(d.log().contains("refused a peer"), "{}", d.log());
    // Root still gets in.
    d.ctl_ok(&["status"]);
}

#[test]
fn a_second_daemon_on_the_same_runtime_dir_stops_before_touching_anything() {
    let d = Vswitchd::start(BASE);
    let before = d.status_text();
    let vm0 = d.path().join("vm0.sock");
    let inode = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).expect("exists").ino()
    };
    let ino = inode(&vm0);
    let out = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--config")
        .arg(d.file())
        .arg("--runtime-dir")
        .arg(d.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another vswitchd is running"), "{err}");
    assert_eq!(
        inode(&vm0),
        ino,
        "the first daemon's socket was not replaced"
    );
    assert_eq!(d.status_text(), before);
}

#[test]
fn reload_recreates_ports_and_adds_and_removes_switches() {
    let d = Vswitchd::start(BASE);
    // vm1 moves to another socket (re-created), sw0's MTU shrinks and its
    // MAC table ages faster, and a second switch appears.
    let next = BASE
        .replace(
            "        port-group: trunk\n",
            "        port-group: trunk\n        socket: vm1b.sock\n",
        )
        .replace(
            "  - name: sw0\n",
            "  - name: sw0\n    mtu: 1400\n    mac-table: { aging-seconds: 60 }\n",
        )
        + "  - name: sw1\n    ports:\n      - name: vm5\n        mode: client\n      - name: vm6\n";
    d.write_config(&next);
    let out = d.ctl_ok(&["reload"]);
    for want in [
        "switch sw0: MTU 1500 -> 1400",
        "switch sw0: MAC table aging 300 s -> 60 s",
        "port vm1: vhost-user server",
        "(port is re-created)",
        "switch sw1: added (2 ports, 0 uplinks, 0 teams)",
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }
    // vm5 is a client: the switch connects to QEMU's socket, creates none.
    assert_eq!(
        sock_files(d.path()),
        ["vm0.sock", "vm1b.sock", "vm6.sock", "vswitchd.sock"]
    );
    let st = d.status();
    assert_eq!(st["switches"][0]["mtu"], 1400);
    assert_eq!(st["switches"][0]["mac_table"]["aging_seconds"], 60);
    assert_eq!(st["switches"][1]["name"], "sw1");
    let p1 = ports(&st, 1);
    assert_eq!(names(&p1), ["vm5", "vm6"]);
    assert_eq!(port(&p1, "vm5")["role"], "client");
    assert_eq!(port(&p1, "vm5")["connected"], false);
    let stats: Value = serde_json::from_str(&d.ctl_ok(&["stats", "--json"])).expect("json");
    assert_eq!(stats["switches"][1]["ports"][1]["name"], "vm6");

    // Back to the start: sw1 and its socket go, vm1 returns to vm1.sock.
    d.write_config(BASE);
    let out = d.ctl_ok(&["reload"]);
    assert!(out.contains("switch sw1: removed"), "{out}");
    assert_eq!(
        sock_files(d.path()),
        ["vm0.sock", "vm1.sock", "vswitchd.sock"]
    );
    assert_eq!(d.status()["switches"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_socket_path_handed_from_one_port_to_another_stays() {
    let d = Vswitchd::start(BASE);
    // vm1 goes and vm3 takes over its socket path in the same reload.
    d.write_config(&BASE.replace(
        "      - name: vm1\n",
        "      - name: vm3\n        socket: vm1.sock\n",
    ));
    let out = d.ctl_ok(&["reload"]);
    assert!(out.contains("port vm1: removed"), "{out}");
    assert!(out.contains("port vm3: added"), "{out}");
    assert_eq!(
        sock_files(d.path()),
        ["vm0.sock", "vm1.sock", "vswitchd.sock"]
    );
    // And someone listens on it.
    std::os::unix::net::UnixStream::connect(d.path().join("vm1.sock"))
        .expect("vm3 listens on vm1.sock");
    assert_eq!(
        port(&ports(&d.status(), 0), "vm3")["socket"],
        d.path().join("vm1.sock").display().to_string()
    );

    // A port re-created on the same socket file (named through a
    // symlinked directory, so the config sees a new path) keeps its socket.
    std::os::unix::fs::symlink(d.path(), d.path().join("link")).expect("symlink");
    let via_link = d.path().join("link/vm0.sock");
    d.write_config(
        &BASE
            .replace(
                "      - name: vm1\n",
                "      - name: vm3\n        socket: vm1.sock\n",
            )
            .replace(
                "        mac: 52:54:00:00:00:01\n",
                &format!(
                    "        mac: 52:54:00:00:00:01\n        socket: {}\n",
                    via_link.display()
                ),
            ),
    );
    let out = d.ctl_ok(&["reload"]);
    assert!(out.contains("(port is re-created)"), "{out}");
    assert_eq!(
        sock_files(d.path()),
        ["vm0.sock", "vm1.sock", "vswitchd.sock"]
    );
    std::os::unix::net::UnixStream::connect(d.path().join("vm0.sock"))
        .expect("the re-created vm0 listens");
    assert_eq!(
        port(&ports(&d.status(), 0), "vm0")["socket"],
        via_link.display().to_string()
    );
}

/// `fdb flush` keeps static entries (the configured MAC of vm0) and
/// refuses unknown switches, ports and VLANs; `fdb`, `fdb show` and
/// `mac-table` are one command. (That learned entries go is checked with
/// traffic in dataplane's
/// `switch::tests::flush_macs_removes_learned_entries_from_every_pmd_and_keeps_statics`:
/// learning one here would need a guest.)
#[test]
fn fdb_flush_keeps_statics_and_checks_its_filters() {
    let d = Vswitchd::start(BASE);
    let table = d.ctl_ok(&["mac-table", "--json"]);
    assert_eq!(d.ctl_ok(&["fdb", "show", "--json"]), table);
    assert_eq!(d.ctl_ok(&["fdb", "--json"]), table);
    let flushed: Value =
        serde_json::from_str(&d.ctl_ok(&["fdb", "flush", "--json"])).expect("JSON");
    assert_eq!(
        flushed,
        serde_json::json!({"switches": [{"name": "sw0", "flushed": 0}]})
    );
    let text = d.ctl_ok(&[
        "fdb", "flush", "--switch", "sw0", "--vlan", "10", "--port", "vm0",
    ]);
    assert_eq!(text, "switch sw0: 0 learned entries flushed\n");
    let after: Value = serde_json::from_str(&d.ctl_ok(&["fdb", "show", "--json"])).expect("JSON");
    let entries = after["switches"][0]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{after}");
    assert_eq!(entries[0]["mac"], "52:54:00:00:00:01");
    assert_eq!(entries[0]["static"], true);
    assert_eq!(entries[0]["vlan"], 10);
    for (args, want) in [
        (&["--switch", "sw9"][..], "no switch sw9 (switches: sw0)"),
        (&["--port", "vm9"][..], "no port vm9"),
        (&["--vlan", "4095"][..], "4095 is not a VLAN ID (1-4094)"),
    ] {
        let mut a = vec!["fdb", "flush"];
        a.extend_from_slice(args);
        let out = d.ctl(&a);
        assert_eq!(out.status.code(), Some(1), "{a:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), want, "{a:?}");
    }
}

#[test]
fn vlan_show_lists_members_tagged_and_untagged() {
    let yaml = BASE.replace(
        "    ports:\n",
        "      - name: up\n        vlan: { trunk: [20, 30-31] }\n    ports:\n",
    ) + "      - name: vm2\n        vlan: all\n    uplinks:\n      - name: eth0\n        port-group: up\n";
    let ns = Netns::with_veths("vlanshow", &["eth0"]);
    let d = Vswitchd::start_in_netns(&ns.name, &yaml);
    let v: Value = serde_json::from_str(&d.ctl_ok(&["vlan", "show", "--json"])).expect("JSON");
    let sw = &v["switches"][0];
    assert_eq!(sw["name"], "sw0");
    let member = |port: &str, tagged: bool| serde_json::json!({"port": port, "tagged": tagged});
    let vlans: Vec<(u64, Vec<Value>)> = sw["vlans"]
        .as_array()
        .expect("vlans")
        .iter()
        .map(|v| {
            let members = v["members"]
                .as_array()
                .expect("members")
                .iter()
                .map(|m| member(m["port"].as_str().expect("port"), m["tagged"] == true))
                .collect();
            (v["vlan"].as_u64().expect("id"), members)
        })
        .collect();
    assert_eq!(
        vlans,
        vec![
            (1, vec![member("vm1", false), member("vm2", false)]),
            (
                10,
                vec![
                    member("vm0", false),
                    member("vm1", true),
                    member("vm2", true)
                ]
            ),
            (
                20,
                vec![
                    member("vm1", true),
                    member("vm2", true),
                    member("eth0", true)
                ]
            ),
            (30, vec![member("vm2", true), member("eth0", true)]),
            (31, vec![member("vm2", true), member("eth0", true)]),
        ]
    );
    assert_eq!(sw["all_vlans"][0]["port"], "vm2");
    assert_eq!(sw["all_vlans"].as_array().map(Vec::len), Some(1));
    let text = d.ctl_ok(&["vlan", "show"]);
    assert!(text.contains("  10    vm0       vm1, vm2\n"), "{text}");
}

#[test]
fn pmd_show_reports_threads_queues_and_counters() {
    let d = Vswitchd::start(BASE);
    let v: Value = serde_json::from_str(&d.ctl_ok(&["pmd", "show", "--json"])).expect("JSON");
    let sw = &v["switches"][0];
    assert_eq!(sw["name"], "sw0");
    let pmds = sw["pmds"].as_array().expect("pmds");
    assert_eq!(pmds.len(), 1, "{v}");
    let p = &pmds[0];
    assert_eq!(p["index"], 0);
    assert_eq!(p["core"], Value::Null);
    assert_eq!(p["idle"], "adaptive");
    assert_eq!(p["rx_ports"], serde_json::json!(["vm0", "vm1"]));
    assert_eq!(p["tx_ports"], 2);
    for k in [
        "iterations",
        "busy_iterations",
        "idle_sleeps",
        "cpu_time_ns",
    ] {
        assert!(p[k].is_u64(), "{k}: {p}");
    }
    assert!(p["busy_iterations"].as_u64() <= p["iterations"].as_u64());
    let text = d.ctl_ok(&["pmd", "show"]);
    assert!(text.starts_with("switch sw0\n  PMD  CORE  IDLE"), "{text}");
    assert!(text.contains("  0    any   adaptive  vm0, vm1"), "{text}");
}

#[test]
fn config_check_validates_without_a_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, BASE).expect("write");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, BASE.replace("port-group: web", "port-grup: web")).expect("write");
    let check = |f: &Path| {
        Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
            // No daemon there: config check must not need one.
            .arg("--runtime-dir")
            .arg(dir.path())
            .args(["config", "check"])
            .arg(f)
            .output()
            .expect("runs")
    };
    let out = check(&good);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "{}: valid\n  switch sw0: MTU 1500",
            good.display()
        )),
        "{text}"
    );
    let out = check(&bad);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:10:9: switches[0].ports[0].port-grup: unknown key `port-grup`; did you mean `port-group`?",
            bad.display()
        )),
        "{err}"
    );
    let out = check(&dir.path().join("missing.yaml"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// An internal port's TAP interface has its switch's MTU, at start and
/// after a reload that changes it (issue 26: it was always 1500).
#[test]
fn internal_ports_take_the_switch_mtu_and_follow_a_reload() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: creating a TAP interface needs root");
        return;
    }
    let name = format!("vsmtu{}", std::process::id() % 100_000);
    let yaml = |mtu: u16| {
        format!(
            "switches:\n  - name: sw0\n    mtu: {mtu}\n    ports:\n      - {{ name: {name}, type: internal }}\n"
        )
    };
    let link_mtu = || {
        let out = Command::new("ip")
            .args(["-o", "link", "show", &name])
            .output()
            .expect("ip runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .skip_while(|w| *w != "mtu")
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let d = Vswitchd::start(&yaml(9000));
    assert_eq!(link_mtu(), "9000", "{}", d.log());
    d.write_config(&yaml(4000));
    d.ctl_ok(&["reload"]);
    assert_eq!(link_mtu(), "4000", "{}", d.log());
}

/// A beacon team needs three members: with two, `vswitchctl config check`
/// and `vswitchd --check` both refuse the file with the key's position
/// (issue 26: two were accepted silently).
#[test]
fn a_two_member_beacon_team_is_refused_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("beacon.yaml");
    std::fs::write(
        &file,
        "switches:\n  - name: sw0\n    uplinks:\n      - { name: eth1 }\n      - { name: eth2 }\n    teams:\n      - name: bond0\n        active: [eth1, eth2]\n        failure-detection: beacon\n",
    )
    .expect("write");
    let want = format!(
        "{}:9:28: switches[0].teams[0].failure-detection: team `bond0`: beacon probing needs three members or more",
        file.display()
    );
    let check = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--runtime-dir")
        .arg(dir.path())
        .args(["config", "check"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains(&want), "{err}");
    let daemon = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--config")
        .arg(&file)
        .arg("--runtime-dir")
        .arg(dir.path())
        .arg("--check")
        .output()
        .expect("runs");
    assert!(!daemon.status.success(), "{daemon:?}");
    let err = String::from_utf8_lossy(&daemon.stderr);
    assert!(err.contains(&want), "{err}");
}

#[test]
fn sriov_commands_answer_without_sriov_configured() {
    let d = Vswitchd::start(BASE);
    let show = d.ctl_ok(&["sriov", "show"]);
    assert!(!show.trim().is_empty(), "sriov show prints something");
    let v: Value = serde_json::from_str(&d.ctl_ok(&["sriov", "show", "--json"])).expect("json");
    assert!(v.is_object(), "{v}");
    for args in [
        &["sriov", "attach-info", "nosuchpf/0"][..],
        &["sriov", "release", "nosuchpf/0"][..],
    ] {
        let out = d.ctl(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
}

/// An uplink naming an interface the host does not have is refused with
/// its position by `vswitchctl config check`, `vswitchd --check` and
/// `vswitchd` itself, which does not start (issue 26: it started with the
/// member "absent", after a misleading "af-xdp refused" warning).
#[test]
fn an_uplink_whose_interface_is_missing_is_refused_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gone.yaml");
    let ns = Netns::with_veths("gone", &["up0"]);
    std::fs::write(
        &file,
        "switches:\n  - name: sw0\n    uplinks:\n      - { name: up0 }\n      - { name: gone1, driver: af-packet }\n    teams:\n      - name: bond0\n        active: [up0, gone1]\n",
    )
    .expect("write");
    let want = format!(
        "{}:5:17: switches[0].uplinks[1].name: no network interface `gone1` on this host",
        file.display()
    );
    let in_ns = |prog: &str, args: &[&str]| {
        // `timeout`: a daemon that wrongly starts is stopped, and fails.
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, "timeout", "20", prog])
            .args(args)
            .arg(dir.path().join("gone.yaml"))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), err)
    };
    let rd = dir.path().display().to_string();
    let ctl = env!("CARGO_BIN_EXE_vswitchctl");
    let daemon = env!("CARGO_BIN_EXE_vswitchd");
    for (what, (code, err)) in [
        (
            "config check",
            in_ns(ctl, &["--runtime-dir", &rd, "config", "check"]),
        ),
        (
            "vswitchd --check",
            in_ns(daemon, &["--runtime-dir", &rd, "--check", "--config"]),
        ),
        (
            "vswitchd",
            in_ns(daemon, &["--runtime-dir", &rd, "--config"]),
        ),
    ] {
        assert_ne!(code, Some(0), "{what}: {err}");
        assert!(err.contains(&want), "{what}: {want} in {err}");
        assert!(!err.contains("up0`"), "{what}: up0 exists: {err}");
        assert!(!err.contains("af-xdp refused"), "{what}: {err}");
    }
    // The same file is fine where both interfaces exist.
    let ok = Netns::with_veths("gone-ok", &["up0", "gone1"]);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ok.name,
            ctl,
            "--runtime-dir",
            &rd,
            "config",
            "check",
        ])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{out:?}");
}

/// A reload whose `sriov:` names a PF that does not exist (a typo) or an
/// interface without SR-IOV is refused at the key's position before
/// anything changes (issue 23: a typo released the real PF's VFs and the
/// reload exited 0).
#[test]
fn a_reload_naming_a_missing_or_non_sriov_pf_is_refused_with_its_position() {
    let ns = Netns::with_veths("pf", &["eth0"]);
    let d = Vswitchd::start_in_netns(&ns.name, BASE);
    let before = d.status_text();
    for (pf, msg) in [
        (
            "eth0x",
            "sriov[0].pf: no network interface `eth0x` on this host",
        ),
        (
            "eth0",
            "sriov[0].pf: `eth0` is not an SR-IOV PF (its device has no sriov_totalvfs)",
        ),
    ] {
        d.write_config(&format!("{BASE}sriov:\n  - pf: {pf}\n    num-vfs: 2\n"));
        for args in [&["reload"][..], &["reload", "--dry-run"][..]] {
            let out = d.ctl(args);
            assert_eq!(out.status.code(), Some(1), "{args:?} {out:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            let want = format!("{}:15:9: {msg}", d.file().display());
            assert!(err.contains(&want), "{want} in {err}");
        }
        assert_eq!(d.status_text(), before, "a refused reload changes nothing");
    }
}
