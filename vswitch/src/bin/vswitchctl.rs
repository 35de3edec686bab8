//! vswitchctl: asks a running vswitchd for its state and reloads it;
//! `config check FILE` validates a file without a daemon.
//!
//! Exit codes: 0 success; 1 the daemon refused or failed the request, or
//! `config check` found the file invalid (the message on stderr, e.g.
//! `file:line:column: ...` for a bad config);
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
    /// The MAC tables: VLAN, MAC, port, static or dynamic, age (same as
    /// `fdb show`).
    MacTable,
    /// The MAC tables (forwarding databases): `fdb show` (the default),
    /// `fdb flush`.
    Fdb {
        #[command(subcommand)]
        cmd: Option<FdbCmd>,
    },
    /// VLAN membership: `vlan show`.
    Vlan {
        #[command(subcommand)]
        cmd: Option<ShowCmd>,
    },
    /// Uplink teams: `team show [TEAM]`, `team explain TEAM --port P ...`.
    Team {
        #[command(subcommand)]
        cmd: Option<TeamCmd>,
    },
    /// SR-IOV: `sriov show`, `sriov attach-info VF`, `sriov release VF`.
    Sriov {
        #[command(subcommand)]
        cmd: Option<SriovCmd>,
    },
    /// PMD threads: `pmd show`.
    Pmd {
        #[command(subcommand)]
        cmd: Option<ShowCmd>,
    },
    /// Configuration files: `config check FILE` (no daemon needed).
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Re-read the configuration and apply what changed, without a restart.
    Reload {
        /// Only print what would change, with the SR-IOV drift a reload
        /// would correct (VFs read back; nothing is written).
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

#[derive(Subcommand, Debug)]
enum FdbCmd {
    /// Per switch: VLAN, MAC, port, static or dynamic, age.
    Show,
    /// Forget learned (dynamic) entries; static entries stay.
    Flush {
        /// Only this switch.
        #[arg(long, value_name = "NAME")]
        switch: Option<String>,
        /// Only this VLAN.
        #[arg(long, value_name = "N")]
        vlan: Option<u16>,
        /// Only entries on this port or uplink.
        #[arg(long, value_name = "NAME")]
        port: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum TeamCmd {
    /// Members, their link/beacon state and counters, each guest's member
    /// and why, recent failovers.
    Show {
        /// Only this team.
        team: Option<String>,
    },
    /// Which member a frame from PORT with these fields leaves on, and why.
    Explain {
        /// The team.
        team: String,
        /// The sending guest or internal port.
        #[arg(long, value_name = "NAME")]
        port: String,
        /// Source MAC (default: the port's configured MAC).
        #[arg(long, value_name = "MAC")]
        src_mac: Option<String>,
        /// Destination MAC.
        #[arg(long, value_name = "MAC")]
        dst_mac: Option<String>,
        /// Source IPv4/IPv6 address.
        #[arg(long, value_name = "IP")]
        src_ip: Option<String>,
        /// Destination IPv4/IPv6 address.
        #[arg(long, value_name = "IP")]
        dst_ip: Option<String>,
        /// tcp or udp.
        #[arg(long, value_name = "PROTO")]
        proto: Option<String>,
        /// Source port.
        #[arg(long, value_name = "N")]
        src_port: Option<u16>,
        /// Destination port.
        #[arg(long, value_name = "N")]
        dst_port: Option<u16>,
    },
}

#[derive(Subcommand, Debug)]
enum SriovCmd {
    /// PFs and VFs: settings as read back, driver, IOMMU group, holder.
    Show,
    /// How to hand VF (`PF/INDEX` or a PCI address) to a VM.
    AttachInfo {
        /// The VF.
        vf: String,
    },
    /// Reset VF's settings and give it back to its host driver now.
    Release {
        /// The VF.
        vf: String,
    },
}

#[derive(Subcommand, Debug)]
enum ShowCmd {
    /// Show it.
    Show,
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Validate FILE locally: prints `FILE: valid` and a summary (switches,
    /// SR-IOV PFs with their VF counts), or the
    /// errors as `file:line:column: path: message` and exits 1.
    Check {
        /// The YAML file.
        file: PathBuf,
    },
}

/// `config check`: runs locally, no daemon involved.
fn config_check(file: &std::path::Path, json: bool) -> Result<String, ClientError> {
    // Names in socket-owner / socket-group resolve on this host, as the
    // daemon's would.
    match config::load_file_with(file, None, &vswitch::daemon::SystemHost) {
        Ok(cfg) if json => {
            let v = serde_json::json!({
                "file": file,
                "valid": true,
                "switches": cfg.switches.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
            });
            let mut s = serde_json::to_string_pretty(&v)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            s.push('\n');
            Ok(s)
        }
        Ok(cfg) => Ok(client::format_config_summary(file, &cfg)),
        Err(e) => Err(ClientError::Daemon(e.to_string())),
    }
}

fn run(args: Args) -> Result<String, ClientError> {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| client::default_socket(Some(&args.runtime_dir)));
    let req = match &args.cmd {
        Cmd::Status => Request::Status,
        Cmd::Stats => Request::Stats,
        Cmd::MacTable
        | Cmd::Fdb {
            cmd: None | Some(FdbCmd::Show),
        } => Request::MacTable,
        Cmd::Fdb {
            cmd: Some(FdbCmd::Flush { switch, vlan, port }),
        } => Request::FdbFlush {
            switch: switch.clone(),
            vlan: *vlan,
            port: port.clone(),
        },
        Cmd::Vlan { .. } => Request::VlanShow,
        Cmd::Pmd { .. } => Request::PmdShow,
        Cmd::Sriov {
            cmd: None | Some(SriovCmd::Show),
        } => Request::SriovShow,
        Cmd::Sriov {
            cmd: Some(SriovCmd::AttachInfo { vf }),
        } => Request::SriovAttachInfo { vf: vf.clone() },
        Cmd::Sriov {
            cmd: Some(SriovCmd::Release { vf }),
        } => Request::SriovRelease { vf: vf.clone() },
        Cmd::Team {
            cmd: None | Some(TeamCmd::Show { team: None }),
        } => Request::TeamShow { team: None },
        Cmd::Team {
            cmd: Some(TeamCmd::Show { team }),
        } => Request::TeamShow { team: team.clone() },
        Cmd::Team {
            cmd:
                Some(TeamCmd::Explain {
                    team,
                    port,
                    src_mac,
                    dst_mac,
                    src_ip,
                    dst_ip,
                    proto,
                    src_port,
                    dst_port,
                }),
        } => Request::TeamExplain {
            team: team.clone(),
            flow: vswitch::protocol::TeamFlow {
                port: port.clone(),
                src_mac: src_mac.clone(),
                dst_mac: dst_mac.clone(),
                src_ip: src_ip.clone(),
                dst_ip: dst_ip.clone(),
                proto: proto.clone(),
                src_port: *src_port,
                dst_port: *dst_port,
            },
        },
        // Local: no daemon involved.
        Cmd::Config {
            cmd: ConfigCmd::Check { file },
        } => return config_check(file, args.json),
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
    Ok(match req {
        Request::Status => client::format_status(&client::decode(v)?),
        Request::Stats => client::format_stats(&client::decode(v)?),
        Request::MacTable => client::format_mac_table(&client::decode(v)?),
        Request::FdbFlush { .. } => client::format_fdb_flush(&client::decode(v)?),
        Request::VlanShow => client::format_vlans(&client::decode(v)?),
        Request::PmdShow => client::format_pmds(&client::decode(v)?),
        Request::TeamShow { .. } => client::format_teams(&client::decode(v)?),
        Request::SriovShow => client::format_sriov_show(&client::decode(v)?),
        Request::SriovAttachInfo { .. } => client::format_sriov_attach_info(&client::decode(v)?),
        Request::SriovRelease { .. } => {
            let o: sriov::VfOutcome = client::decode(v)?;
            let mut out = String::new();
            for l in o.change_lines().iter().chain(&o.warning_lines()) {
                out.push_str(l);
                out.push('\n');
            }
            let errors = o.error_lines();
            if !errors.is_empty() {
                return Err(ClientError::Daemon(format!("{out}{}", errors.join("\n"))));
            }
            if out.is_empty() {
                out.push_str("released\n");
            }
            out
        }
        Request::TeamExplain { .. } => client::format_team_explain(&client::decode(v)?),
        Request::Reload { .. } => {
            // Applied, but SR-IOV settings failed: say so with exit code 1.
            let r: vswitch::protocol::ReloadReply = client::decode(v)?;
            let text = client::format_reload(&r);
            if r.sriov_counts().2 > 0 {
                return Err(ClientError::Daemon(text.trim_end().to_string()));
            }
            text
        }
        Request::Version => client::format_version(env!("CARGO_PKG_VERSION"), &client::decode(v)?),
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
