//! vswitchctl: asks a running vswitchd for its state and reloads it.
//!
//! Exit codes: 0 success; 1 the daemon refused or failed the request (its
//! message on stderr, e.g. `file:line:column: ...` for a bad config);
//! 2 bad command line; 3 no daemon answers on the control socket or it
//! answered something unexpected.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vswitch::client::{self, ClientError};
use vswitch::protocol::Request;

/// Control a running vswitchd.
#[derive(Parser, Debug)]
#[command(name = "vswitchctl", version, about)]
struct Args {
    /// The daemon's control socket (default: RUNTIME_DIR/vswitchd.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The daemon's runtime directory, where its control socket is.
    #[arg(long, global = true, value_name = "DIR", default_value = config::DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Print the daemon's JSON answer as it came, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Switches and ports: type, socket, connected, port group, VLAN.
    #[command(alias = "show")]
    Status,
    /// Per-port counters, drops by reason, PMD threads.
    Stats,
    /// The MAC tables: VLAN, MAC, port, static or dynamic, age.
    #[command(alias = "fdb")]
    MacTable,
    /// Re-read the configuration and apply what changed, without a restart.
    Reload {
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
        /// Read FILE instead of the daemon's own file; on success it becomes
        /// the daemon's file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Versions of vswitchctl, vswitchd and the control protocol.
    Version,
}

fn run(args: Args) -> Result<String, ClientError> {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| client::default_socket(Some(&args.runtime_dir)));
    let req = match &args.cmd {
        Cmd::Status => Request::Status,
        Cmd::Stats => Request::Stats,
        Cmd::MacTable => Request::MacTable,
        Cmd::Version => Request::Version,
        Cmd::Reload { dry_run, config } => Request::Reload {
            dry_run: *dry_run,
            // The daemon runs elsewhere: send an absolute path.
            config: config.as_deref().map(std::path::absolute).transpose()?,
        },
    };
    let v = client::request(&socket, &req)?;
    if args.json {
        let mut s =
            serde_json::to_string_pretty(&v).map_err(|e| ClientError::Protocol(e.to_string()))?;
        s.push('\n');
        return Ok(s);
    }
    Ok(match args.cmd {
        Cmd::Status => client::format_status(&client::decode(v)?),
        Cmd::Stats => client::format_stats(&client::decode(v)?),
        Cmd::MacTable => client::format_mac_table(&client::decode(v)?),
        Cmd::Reload { .. } => client::format_reload(&client::decode(v)?),
        Cmd::Version => client::format_version(env!("CARGO_PKG_VERSION"), &client::decode(v)?),
    })
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(ClientError::Daemon(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("vswitchctl: {e}");
            ExitCode::from(3)
        }
    }
}
