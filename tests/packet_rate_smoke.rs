//! Smoke test of the packet-rate harness (`benches/packet_rate.py`), so it
//! cannot rot: one short run (64-byte frames, 1 s warm-up, 2 s window) of
//! every switch it knows: vswitchd (debug build), dpdk-testpmd, Open
//! vSwitch with DPDK, and the 2-member team path over veths. It checks the
//! harness's JSON, not speed: every switch forwarded (non-zero, sane Mpps),
//! the summary has the ratios to testpmd and to OVS, each side ran where
//! it was pinned, the team row names its policy and uplink kind, and the
//! namespace and processes are gone afterwards. `BENCHMARKS.md` has the
//! numbers.
//!
//! Needs root (DPDK EAL, hugepages, namespaces); without it the test is
//! skipped with a message. Everything else (dpdk-testpmd,
//! openvswitch-switch-dpdk, ip, ethtool) comes from
//! `scripts/install-deps.sh`: a missing one fails the test.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;
use support::repo;

const SWITCHES: [&str; 4] = ["vswitch", "testpmd", "ovs", "vswitch-team"];

fn is_root() -> bool {
    // The effective UID: the second field of `Uid:`.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The vswitchd of this build (vswitchctl sits next to it: the harness
/// uses both).
fn vswitchd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vswitchd"))
}

fn netns_list() -> String {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn packet_rate_harness_measures_every_switch() {
    if !is_root() {
        eprintln!(
            "skipped: the packet-rate harness needs root (DPDK EAL, hugepages, network namespaces)"
        );
        return;
    }
    let vswitchd = vswitchd();
    let out = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    // --min-cpu 0 and --wait-quiet 0: a busy CI machine is fine here (no
    // run is flagged, nobody waits for quiet CPUs).
    let child = Command::new("python3")
        .current_dir(repo())
        .arg("benches/packet_rate.py")
        .arg("--vswitchd")
        .arg(&vswitchd)
        .args([
            "--runs", "1", "--sizes", "64", "--warmup", "1", "--window", "2",
        ])
        .args(["--switches", &SWITCHES.join(",")])
        .args(["--min-cpu", "0", "--wait-quiet", "0"])
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let harness_pid = child.id();
    let run = child.wait_with_output().expect("harness output");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    eprintln!(
        "harness took {:.1} s:\n{stdout}{stderr}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        run.status.success(),
        "harness failed ({}):\n{stdout}\n{stderr}",
        run.status
    );

    // Torn down: the team row's namespace (pr<harness pid>-...) is gone.
    let left = netns_list();
    assert!(
        !left
            .lines()
            .any(|l| l.starts_with(&format!("pr{harness_pid}-"))),
        "namespace left behind:\n{left}"
    );

    let mut files: Vec<PathBuf> = std::fs::read_dir(out.path())
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let json_path = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap_or_else(|| panic!("no JSON among {files:?}"));
    let table = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| std::fs::read_to_string(p).expect("table"))
        .unwrap_or_else(|| panic!("no table among {files:?}"));
    assert!(table.contains("vs OVS"), "{table}");
    assert!(table.contains("CPU placement"), "{table}");
    // The chart of the summary, next to the table: a bar group per size.
    let svg = std::fs::read_to_string(out.path().join("chart.svg")).expect("chart.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains(">64 B<") && svg.contains(">testpmd<"),
        "{svg}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).expect("json")).expect("JSON");

    let runs = json["runs"].as_array().expect("runs");
    let ran: Vec<&str> = runs.iter().filter_map(|r| r["switch"].as_str()).collect();
    assert_eq!(ran, SWITCHES, "one run per switch, in order");
    let switch_cpu = json["meta"]["switch_cpu"].as_u64().expect("switch_cpu");
    let gen_cpu = json["meta"]["gen_cpu"].as_u64().expect("gen_cpu");
    for r in runs {
        let name = r["switch"].as_str().unwrap_or("?");
        let mpps = r["mpps"].as_f64().expect("mpps");
        assert!(
            mpps > 0.0 && mpps < 100.0,
            "{name}: {mpps} Mpps is not a sane rate"
        );
        assert!(r["rx_frames"].as_u64().unwrap_or(0) > 0, "{name}: {r}");
        // Each side's forwarding thread ran on its CPU, and every thread of
        // the switch process was pinned there.
        let sw = &r["switch_thread"];
        assert_eq!(
            sw["ran_on_cpus"],
            serde_json::json!([switch_cpu]),
            "{name}: {sw}"
        );
        assert_eq!(
            sw["process_allowed_cpus"],
            serde_json::json!([switch_cpu.to_string()]),
            "{name}: {sw}"
        );
        let generator = &r["generator_thread"];
        assert_eq!(
            generator["ran_on_cpus"],
            serde_json::json!([gen_cpu]),
            "{name}: {generator}"
        );
    }
    let ovs = runs.iter().find(|r| r["switch"] == "ovs").expect("ovs run");
    assert!(
        ovs["switch_thread"]["thread"]
            .as_str()
            .is_some_and(|t| t.starts_with("pmd-c")),
        "OVS's PMD thread: {ovs}"
    );
    let team = runs
        .iter()
        .find(|r| r["switch"] == "vswitch-team")
        .expect("team run");
    let setup = team["setup"].as_str().unwrap_or("");
    assert!(
        setup.contains("port-id") && (setup.contains("AF_XDP") || setup.contains("AF_PACKET")),
        "team row must name its policy and uplink kind: {setup:?}"
    );
    assert_eq!(team["switch_thread"]["threads"], 2, "{team}");
    // Frames crossed the team: some member of each team sent them.
    for t in ["ta", "tb"] {
        let sent: u64 = team["team_member_tx"][t]
            .as_object()
            .unwrap_or_else(|| panic!("team {t} members: {team}"))
            .values()
            .filter_map(Value::as_u64)
            .sum();
        assert!(sent > 0, "team {t} sent nothing: {team}");
    }

    let summary = json["summary"].as_array().expect("summary");
    assert!(
        summary.iter().any(|r| r["switch"] == "ovs"),
        "no ovs row: {summary:?}"
    );
    for row in summary {
        let name = row["switch"].as_str().unwrap_or("?");
        for key in ["ratio_to_testpmd", "ratio_to_ovs"] {
            let v = row[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: no {key}: {row}"));
            assert!(v > 0.0, "{name}: {key} {v}");
        }
    }
}
