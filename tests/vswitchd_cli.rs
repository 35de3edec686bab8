//! vswitchd as a user runs it: the built-in default, `--check`, a config
//! error with file:line:column, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vswitchd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vswitchd"))
}

#[test]
fn check_default_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = vswitchd()
        .args(["--check", "--runtime-dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let sock0 = dir.path().join("vhost0.sock");
    assert!(stdout.contains(&sock0.display().to_string()), "{stdout}");
    assert!(stdout.contains("vhost1.sock"), "{stdout}");
    assert!(stdout.contains("configuration is valid"));
}

#[test]
fn config_error_names_file_line_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "switches:\n  - name: sw0\n    ports:\n      - name: vm0\n        vlan: 4095\n",
    )
    .expect("write");
    let out = vswitchd()
        .arg("--config")
        .arg(&file)
        .arg("--check")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:5:15"), "{stderr}");
    assert!(stderr.contains("4095 is not a VLAN ID"), "{stderr}");
}

#[test]
fn runs_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = vswitchd()
        .arg("--runtime-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = lines
            .next()
            .expect("vswitchd printed its running line")
            .expect("utf8");
        if line.contains("running") {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    let sock = dir.path().join("vhost0.sock");
    assert!(
        sock.exists(),
        "the default config's vhost0.sock is listening"
    );
    assert!(dir.path().join("vhost1.sock").exists());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM).expect("signal");
    let status = child.wait().expect("waits");
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.starts_with("port vhost0:")),
        "{rest:?}"
    );
}

/// Runs vswitchd on the default config with `extra` arguments, its
/// standard error into a file (as a service manager or `2>log` would),
/// stops it with SIGTERM, and returns that file's text.
fn log_of_a_short_run(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("vswitchd.log");
    let mut child = vswitchd()
        .arg("--runtime-dir")
        .arg(dir.path())
        .args(extra)
        .env("VSWITCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawns");
    let sock = dir.path().join("vhost0.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM).expect("signal");
    assert!(child.wait().expect("waits").success());
    std::fs::read_to_string(&log).expect("log")
}

/// Logs written to a file carry no colour codes; `--log-format json`
/// writes one JSON object per line with level, target and message.
#[test]
fn logs_are_plain_in_a_file_and_json_on_request() {
    let text = log_of_a_short_run(&[]);
    assert!(text.contains("INFO"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a file: {text:?}");

    let json = log_of_a_short_run(&["--log-format", "json"]);
    let lines: Vec<&str> = json.lines().collect();
    assert!(!lines.is_empty(), "no log lines");
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string(), "{l}");
        assert!(v["target"].is_string(), "{l}");
        assert!(v["fields"]["message"].is_string(), "{l}");
    }
}
