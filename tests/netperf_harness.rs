//! Smoke test of the netperf harness (benches/netperf.py), so it cannot
//! rot: one guest pair, 2-second tests, both topologies (one-host; two-host
//! A/B joined by a port-id team of two veths) on vswitchd, and one-host on
//! Open vSwitch with DPDK (the comparison). It checks the harness's
//! JSON: every test of every run has sane non-zero numbers, the two-host
//! run shows the team's uplinks carrying the traffic, and the chart and
//! table exist. Speed is not judged here (BENCHMARKS.md has the numbers).

mod support;

use std::process::Command;

use serde_json::Value;
use support::repo;

#[test]
fn netperf_harness_reports_sane_numbers_for_both_topologies() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the netperf harness needs root (namespaces, QEMU)");
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new("python3")
        .arg(repo().join("benches/netperf.py"))
        .args(["--vswitchd", env!("CARGO_BIN_EXE_vswitchd")])
        .args(["--guests-per-host", "1", "--len", "2", "--accel", "tcg"])
        .args([
            "--policies",
            "port-id",
            "--switches",
            "vswitch,ovs",
            "--quiet",
        ])
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "harness failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("results.json")).expect("results.json"),
    )
    .expect("valid JSON");
    let runs = json["runs"].as_array().expect("runs");
    let layout: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["switch"].as_str().unwrap_or(""),
                r["topology"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        layout,
        ["vswitch one-host", "vswitch two-host", "ovs one-host"],
        "{json}"
    );
    for r in runs {
        let tests = r["tests"].as_array().expect("tests");
        let names: Vec<&str> = tests
            .iter()
            .map(|t| t["test"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(names, ["TCP_STREAM", "TCP_RR", "UDP_STREAM"], "{r}");
        // one-host: one pair, one direction; two-host: both directions.
        let want_streams = if r["topology"] == "one-host" { 1 } else { 2 };
        for t in tests {
            let streams = t["streams"].as_array().expect("streams");
            assert_eq!(streams.len(), want_streams, "{t}");
            let key = t["headline"].as_str().expect("headline");
            let agg = t["aggregate"].as_f64().expect("aggregate");
            let sum: f64 = streams.iter().filter_map(|s| s[key].as_f64()).sum();
            assert!((agg - sum).abs() < 1e-6, "aggregate is the sum: {t}");
            // Mbit/s or transactions/s: above zero, below what any link
            // here could carry.
            assert!(agg > 0.0 && agg < 1_000_000.0, "insane {key}: {t}");
            if t["test"] == "TCP_RR" {
                for s in streams {
                    let p50 = s["P50_LATENCY"].as_f64().unwrap_or(0.0);
                    let p99 = s["P99_LATENCY"].as_f64().unwrap_or(0.0);
                    assert!(p50 > 0.0 && p99 >= p50, "latency percentiles: {s}");
                }
            }
            if r["topology"] == "two-host" && t["test"] == "TCP_STREAM" {
                // The stream crossed the team: A's uplinks carried at least
                // what netperf says went each way (2 s at the reported rate,
                // within a factor of 4 for start-up and headers).
                let up = &t["uplinks"];
                let tx: f64 = ["u0", "u1"]
                    .iter()
                    .filter_map(|m| up[m]["tx_bytes"].as_f64())
                    .sum();
                let a_to_b = streams[0][key].as_f64().unwrap_or(0.0);
                assert!(
                    tx * 8.0 / 1e6 > a_to_b * 2.0 / 4.0,
                    "uplinks of A sent {tx} bytes for {a_to_b} Mbit/s over 2 s: {t}"
                );
            }
        }
    }
    let svg = std::fs::read_to_string(out.path().join("chart.svg")).expect("chart.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("TCP_STREAM"),
        "{svg}"
    );
    assert!(stdout.contains("== vswitch two-host (port-id)"), "{stdout}");
    assert!(stdout.contains("== vswitch / ovs, one-host"), "{stdout}");
}
