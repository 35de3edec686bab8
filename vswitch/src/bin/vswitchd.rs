//! vswitchd: builds the switches described by a YAML file (or the built-in
//! default) and runs their PMD threads until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dataplane::{IdlePolicy, PmdConfig, Switch};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use vswitch::translate::{PortIds, switch_spec};

/// The switch daemon.
#[derive(Parser, Debug)]
#[command(name = "vswitchd", version, about)]
struct Args {
    /// YAML configuration; without it the built-in default runs: one switch
    /// with vhost-user server ports vhost0.sock and vhost1.sock, untagged.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Directory for sockets (overrides the file's runtime-dir).
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// CPUs for PMD threads, e.g. `1` or `2,3` (overrides the file).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pmd_cores: Option<Vec<usize>>,
    /// Idle policy of the PMDs (overrides the file).
    #[arg(long, value_parser = ["busy", "adaptive"])]
    idle: Option<String>,
    /// Validate the configuration, print what would run, and exit.
    #[arg(long)]
    check: bool,
}

const DEFAULT_RUNTIME_DIR: &str = "/run/vswitch";

fn load(args: &Args) -> Result<config::Config, config::ConfigError> {
    match (&args.config, &args.runtime_dir) {
        (Some(f), dir) => config::load_file_with_runtime_dir(f, dir.as_deref()),
        (None, dir) => config::default_config(
            dir.as_deref()
                .unwrap_or_else(|| std::path::Path::new(DEFAULT_RUNTIME_DIR)),
        ),
    }
}

fn pmd_configs(args: &Args, cfg: &config::Config) -> Vec<PmdConfig> {
    let idle = match args.idle.as_deref() {
        Some("busy") => IdlePolicy::Busy,
        Some(_) => IdlePolicy::adaptive(),
        None => match cfg.runtime.idle {
            config::IdlePolicy::Busy => IdlePolicy::Busy,
            config::IdlePolicy::Adaptive => IdlePolicy::adaptive(),
        },
    };
    let cores: Vec<Option<usize>> = match &args.pmd_cores {
        Some(list) => list.iter().map(|&c| Some(c)).collect(),
        None if cfg.runtime.pmd_cores.is_empty() => vec![None],
        None => cfg
            .runtime
            .pmd_cores
            .iter()
            .map(|&c| Some(c as usize))
            .collect(),
    };
    // Buffers must hold the largest frame of any switch: MTU + Ethernet
    // header + two tags, after the headroom.
    let max_mtu = cfg
        .switches
        .iter()
        .map(|s| usize::from(s.mtu))
        .max()
        .unwrap_or(1500);
    let buf_size = (dataplane::packet::HEADROOM + max_mtu + 22).max(PmdConfig::default().buf_size);
    cores
        .into_iter()
        .map(|core| PmdConfig {
            core,
            idle,
            buf_size,
            ..PmdConfig::default()
        })
        .collect()
}

fn describe(cfg: &config::Config, pmds: &[PmdConfig]) {
    let cores: Vec<String> = pmds
        .iter()
        .map(|p| p.core.map_or("any CPU".to_string(), |c| format!("CPU {c}")))
        .collect();
    println!(
        "vswitchd: {} PMD thread(s) on {}, idle policy {}, runtime dir {}",
        pmds.len(),
        cores.join(", "),
        match pmds.first().map(|p| p.idle) {
            Some(IdlePolicy::Busy) => "busy",
            _ => "adaptive",
        },
        cfg.runtime.runtime_dir.display()
    );
    for sw in &cfg.switches {
        println!("switch {} (MTU {}):", sw.name, sw.mtu);
        for p in &sw.ports {
            println!(
                "  port {}: {}; port group {}; {}; {}",
                p.name, p.kind, p.port_group, p.vlan, p.security
            );
        }
        for u in &sw.uplinks {
            println!("  uplink {}: {}", u.name, u.vlan);
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let pmds = pmd_configs(&args, &cfg);
    let mut ids = PortIds::default();
    let specs = cfg
        .switches
        .iter()
        .map(|sw| switch_spec(sw, &mut ids))
        .collect::<Result<Vec<_>, _>>()?;
    describe(&cfg, &pmds);
    if args.check {
        println!("configuration is valid");
        return Ok(ExitCode::SUCCESS);
    }

    // Installed before anything starts, so an early SIGTERM still stops cleanly.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    let mut switches = Vec::new();
    for (sw, spec) in cfg.switches.iter().zip(specs) {
        let s =
            Switch::start(spec, &pmds).with_context(|| format!("starting switch {}", sw.name))?;
        for p in &sw.ports {
            // The vhost-user and TAP backends land with their own issues;
            // until then a port is configured in the dataplane (its frames
            // are counted as tx drops) but nothing attaches to it.
            tracing::warn!(port = %p.name, kind = %p.kind, "port backend not implemented yet: no socket or device is created");
        }
        for u in &sw.uplinks {
            tracing::warn!(uplink = %u.name, "uplink backend not implemented yet");
        }
        switches.push(s);
    }
    println!("vswitchd: running; SIGTERM or Ctrl-C stops it");
    for sig in signals.forever() {
        match sig {
            SIGHUP => tracing::warn!(
                "SIGHUP: live reload is not implemented yet; configuration unchanged"
            ),
            _ => break,
        }
    }
    tracing::info!("shutting down");
    for (sw, s) in cfg.switches.iter().zip(switches.iter_mut()) {
        s.shutdown();
        for p in &sw.ports {
            if let Some(id) = ids.get(&p.name) {
                let st = s.port_stats(id);
                println!(
                    "port {}: rx {} frames, tx {} frames, tx dropped {}, dropped on ingress {}",
                    p.name,
                    st.rx_packets,
                    st.tx_packets,
                    st.tx_dropped,
                    st.total_drops()
                );
            }
        }
    }
    // Let log lines flush before exit.
    std::thread::sleep(Duration::from_millis(10));
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VSWITCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vswitchd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
