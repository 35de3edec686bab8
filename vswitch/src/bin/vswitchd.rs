//! vswitchd: builds the switches described by a YAML file (or the built-in
//! default), runs their PMD threads, serves the control socket, reloads on
//! SIGHUP, and stops cleanly on SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use vswitch::control::ControlListener;
use vswitch::daemon::{self, Daemon, Options, SharedDaemon};

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
    /// Directory for state that outlives the daemon (the SR-IOV settings
    /// it applied, so the next daemon releases only what it configured).
    #[arg(long, value_name = "DIR", default_value = daemon::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Idle policy of the PMDs (overrides the file).
    #[arg(long, value_parser = ["busy", "adaptive"])]
    idle: Option<String>,
    /// Validate the configuration, print what would run, and exit.
    #[arg(long)]
    check: bool,
    /// Log line format on standard error: `text` (coloured only on a
    /// terminal) or `json` (one object per line, for log collectors).
    /// Levels and targets are chosen with the VSWITCH_LOG variable
    /// (default `info`; e.g. `VSWITCH_LOG=debug` or
    /// `VSWITCH_LOG=info,dataplane::vhost=debug`).
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = Options {
        // Reloads re-read this path from wherever the daemon's cwd is.
        config_file: args
            .config
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .context("resolving --config")?,
        runtime_dir: args.runtime_dir,
        state_dir: args.state_dir,
        pmd_cores: args.pmd_cores,
        idle: args.idle.as_deref().map(|s| match s {
            "busy" => config::IdlePolicy::Busy,
            _ => config::IdlePolicy::Adaptive,
        }),
    };
    let cfg = match daemon::load_config(&opts, opts.config_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    print!(
        "{}",
        daemon::describe(&cfg, &daemon::pmd_configs(&opts, &cfg))
    );
    if args.check {
        // Also proves the file fits the dataplane.
        let mut ids = vswitch::translate::PortIds::default();
        for sw in &cfg.switches {
            vswitch::translate::switch_spec(sw, &mut ids)?;
        }
        println!("configuration is valid");
        return Ok(ExitCode::SUCCESS);
    }

    // Installed before anything starts, so an early SIGTERM still stops cleanly.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    daemon::create_runtime_dir(&cfg.runtime.runtime_dir)
        .with_context(|| format!("creating runtime dir {}", cfg.runtime.runtime_dir.display()))?;
    // Bound first: a second daemon on the same runtime dir stops here,
    // before it takes over any vhost-user socket.
    let listener =
        ControlListener::bind(&cfg.runtime.control_socket).context("opening the control socket")?;
    // Bound before the switches start too: a taken address stops here.
    let metrics = cfg
        .metrics
        .map(|m| {
            vswitch::metrics::bind(m.listen)
                .with_context(|| format!("metrics: cannot listen on {}", m.listen))
        })
        .transpose()?;
    let shared = SharedDaemon::new(Daemon::start(opts, cfg)?);
    if let Some(l) = metrics {
        shared
            .lock()
            .serve_metrics(l)
            .context("serving the metrics endpoint")?;
    }
    for hint in shared.lock().attach_hints() {
        println!("{hint}");
    }
    let control = listener
        .serve(Arc::new(shared.clone()))
        .context("serving the control socket")?;
    let upkeep_stop = Arc::new(AtomicBool::new(false));
    let upkeep = {
        let (shared, stop) = (shared.clone(), upkeep_stop.clone());
        std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(daemon::HOUSEKEEPING_INTERVAL);
                    shared.lock().housekeeping();
                }
            })
            .context("starting the housekeeping thread")?
    };
    println!(
        "vswitchd: running; control socket {}; SIGHUP reloads; SIGTERM or Ctrl-C stops it",
        control.path().display()
    );
    for sig in signals.forever() {
        if sig != SIGHUP {
            break;
        }
        tracing::info!("SIGHUP: reloading the configuration");
        // Errors are logged by reload; the daemon keeps its configuration.
        if let Ok(r) = shared.lock().reload(None, false) {
            tracing::info!("SIGHUP: {}", r.summary());
        }
    }
    tracing::info!("shutting down");
    upkeep_stop.store(true, Ordering::Relaxed);
    let _ = upkeep.join();
    drop(control);
    for line in shared.lock().shutdown() {
        println!("{line}");
    }
    // Let log lines flush before exit.
    std::thread::sleep(Duration::from_millis(10));
    Ok(ExitCode::SUCCESS)
}

/// Logs to standard error at the levels VSWITCH_LOG selects (default
/// `info`): text, with colours only when standard error is a terminal
/// (a file, a pipe or journald gets plain lines), or JSON lines.
fn init_logging(format: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("VSWITCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        fmt.json().with_current_span(false).init();
    } else {
        fmt.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_format);
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vswitchd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
