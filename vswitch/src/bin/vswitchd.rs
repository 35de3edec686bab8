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
    std::fs::create_dir_all(&cfg.runtime.runtime_dir)
        .with_context(|| format!("creating runtime dir {}", cfg.runtime.runtime_dir.display()))?;
    let mut switches = Vec::new();
    let mut vhost_ports = Vec::new();
    let mut server_sockets = Vec::new();
    for (sw, spec) in cfg.switches.iter().zip(specs) {
        let s =
            Switch::start(spec, &pmds).with_context(|| format!("starting switch {}", sw.name))?;
        for (i, p) in sw.ports.iter().enumerate() {
            let Some(id) = ids.get(&p.name) else { continue };
            match &p.kind {
                config::PortKind::VhostUser { socket, mode, .. } => {
                    let role = match mode {
                        config::VhostMode::Server => dataplane::vhost::SocketRole::Server,
                        config::VhostMode::Client => dataplane::vhost::SocketRole::Client,
                    };
                    let mut vspec =
                        dataplane::vhost::VhostUserSpec::new(&p.name, socket, role, pmds.len());
                    // Spread the ports' receive polling over the PMDs.
                    vspec.rx_pmd = i % pmds.len().max(1);
                    let (handle, queues) = dataplane::vhost::VhostUserPort::new(vspec)
                        .with_context(|| {
                            format!("port {}: vhost-user socket {}", p.name, socket.display())
                        })?;
                    s.attach_port(id, queues)
                        .with_context(|| format!("attaching port {}", p.name))?;
                    if role == dataplane::vhost::SocketRole::Server {
                        server_sockets.push(socket.clone());
                        println!(
                            "port {}: attach a QEMU guest with -chardev socket,id={0},path={},reconnect-ms=1000 -netdev vhost-user,id=n-{0},chardev={0} -device virtio-net-pci,netdev=n-{0} (guest memory must be shared: -object memory-backend-memfd,id=mem,size=512M,share=on -machine memory-backend=mem)",
                            p.name,
                            socket.display()
                        );
                    } else {
                        println!(
                            "port {}: connecting to {} (client role, reconnects)",
                            p.name,
                            socket.display()
                        );
                    }
                    vhost_ports.push(handle);
                }
                config::PortKind::Internal => {
                    tracing::warn!(port = %p.name, "internal (TAP) ports are not implemented yet: no device is created");
                }
            }
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
    // Stop the vhost-user control threads first, then the PMDs.
    drop(vhost_ports);
    for path in &server_sockets {
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(socket = %path.display(), error = %e, "cannot remove socket");
        }
    }
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
