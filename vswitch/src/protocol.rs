//! The control protocol between `vswitchctl` and `vswitchd`: line-delimited
//! JSON over a Unix socket. The client writes one [`Request`] object per
//! line; the daemon answers each with one [`Response`] line:
//!
//! ```text
//! -> {"cmd":"status"}
//! <- {"ok":true,"result":{"version":"0.1.0",...}}
//! -> {"cmd":"reload","dry_run":true,"config":"/etc/vswitch/new.yaml"}
//! <- {"ok":false,"error":"new.yaml:7:15: switches[0].ports[2].vlan: 4095 is not a VLAN ID ..."}
//! ```
//!
//! The `result` of each command has its own type here ([`StatusReply`],
//! [`StatsReply`], [`MacTableReply`], [`FdbFlushReply`], [`VlanShowReply`],
//! [`PmdShowReply`], [`TeamShowReply`], [`TeamExplainReply`],
//! [`ReloadReply`], [`VersionReply`]);
//! the daemon serializes them and `vswitchctl --json` prints them as they
//! came. Fields are only ever added, never renamed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Version of this protocol, reported by `version`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the daemon reads (bytes, newline included).
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Switches and ports with their configuration and connection state.
    Status,
    /// Per-port counters, drops by reason, per-PMD counters.
    Stats,
    /// The MAC tables.
    MacTable,
    /// Forget learned (dynamic) MAC entries; static ones stay.
    FdbFlush {
        /// Only this switch (default: every switch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        switch: Option<String>,
        /// Only this VLAN.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vlan: Option<u16>,
        /// Only entries on this port (or uplink).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<String>,
    },
    /// VLAN membership per switch.
    VlanShow,
    /// PMD threads: cores, idle policy, the ports they poll, counters.
    PmdShow,
    /// Re-read the configuration and apply what changed.
    Reload {
        /// Only report what would change.
        #[serde(default)]
        dry_run: bool,
        /// Read this file (an absolute path) instead of the daemon's own;
        /// on success it becomes the daemon's file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<PathBuf>,
    },
    /// Teams: members, their state and counters, which member each guest
    /// uses and why, recent failovers.
    TeamShow {
        /// Only this team (default: every team).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        team: Option<String>,
    },
    /// Which member of a team one frame (described by its fields) leaves
    /// on, and why.
    TeamExplain {
        /// The team.
        team: String,
        /// The frame.
        flow: TeamFlow,
    },
    /// SR-IOV PFs and VFs: settings as read back, driver, IOMMU group,
    /// who holds each VF.
    SriovShow,
    /// How to hand a VF to a VM (QEMU argument, libvirt `<hostdev>`).
    SriovAttachInfo {
        /// `PF/INDEX` or a PCI address.
        vf: String,
    },
    /// Give a VF clean settings and its host driver back, now.
    SriovRelease {
        /// `PF/INDEX` or a PCI address.
        vf: String,
    },
    /// Daemon and protocol versions.
    Version,
}

/// A frame as `team explain` describes it: the sending port and whichever
/// header fields the policy reads (missing ones are zero).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamFlow {
    /// Sending port (a guest or internal port of the team's switch).
    pub port: String,
    /// Source MAC (default: the port's configured MAC, else 02:00:00:00:00:01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_mac: Option<String>,
    /// Destination MAC (default 02:00:00:00:00:02).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_mac: Option<String>,
    /// Source IPv4 or IPv6 address (no address: a non-IP frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    /// Destination IP address (same family as `src_ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<String>,
    /// `tcp` or `udp` (with ports) for the 5-tuple policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// Source port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
}

/// Reply to [`Request::TeamShow`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamShowReply {
    /// The teams, by switch then name.
    pub teams: Vec<TeamStatus>,
}

/// One team in [`TeamShowReply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamStatus {
    /// Switch.
    pub switch: String,
    /// Team name.
    pub name: String,
    /// Its port ID in the switch (the team is one port).
    pub id: u16,
    /// Load-balancing policy.
    pub policy: String,
    /// What the physical switch must be configured with.
    pub switch_requirement: String,
    /// Failback on or off.
    pub failback: bool,
    /// `link` or `beacon`.
    pub failure_detection: String,
    /// RARP/GARP announcements on failover.
    pub notify_switches: bool,
    /// The member that passes broadcast/multicast to guests (non-aggregated
    /// policies), if any is usable.
    pub designated_receiver: Option<String>,
    /// Seconds since the daemon started (the clock of every `*_secs`).
    pub now_secs: f64,
    /// Members in failover order: active, standby, unused.
    pub members: Vec<TeamMemberStatus>,
    /// Frames dropped because no member was usable.
    pub no_member_drops: u64,
    /// Announcement frames (RARP/GARP) sent after moves.
    pub announcements_sent: u64,
    /// Per guest MAC seen on the switch: its member and why.
    pub guests: Vec<TeamGuestStatus>,
    /// Recent failovers, failbacks and other changes, oldest first.
    pub events: Vec<TeamEventStatus>,
}

/// One member in [`TeamStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMemberStatus {
    /// Interface name.
    pub name: String,
    /// `active`, `standby` or `unused`.
    pub role: String,
    /// Whether the interface could be opened (a missing one carries nothing).
    pub present: bool,
    /// Carrier.
    pub link_up: bool,
    /// Time of the last link change, `t=..s`.
    pub link_since: String,
    /// Beacon verdict and since when, if probed.
    pub beacon: Option<String>,
    /// Whether it may carry traffic now.
    pub usable: bool,
    /// Buckets (of 256) it carries.
    pub buckets: usize,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Broadcast/multicast dropped because another member is the
    /// designated receiver.
    pub rx_filtered: u64,
    /// Beacons received.
    pub rx_beacons: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames the member could not take.
    pub tx_dropped: u64,
}

/// A guest MAC in [`TeamStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamGuestStatus {
    /// Port it lives on.
    pub port: String,
    /// Its MAC.
    pub mac: String,
    /// VLAN.
    pub vlan: u16,
    /// Member its traffic leaves on (`None`: per flow, or no member).
    pub member: Option<String>,
    /// The explanation, in words.
    pub why: String,
    /// Its IPv4 address, learned from its own ARP frames: announced by a
    /// gratuitous ARP with its RARP when it moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
}

/// An event in [`TeamStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamEventStatus {
    /// When, `t=..s` since the daemon started.
    pub at: String,
    /// What happened.
    pub what: String,
}

/// Reply to [`Request::TeamExplain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamExplainReply {
    /// The member chosen (`None`: the frame would be dropped).
    pub member: Option<String>,
    /// The explanation, in words.
    pub why: String,
}

/// One response: `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The command's reply when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// What went wrong when not `ok`, in words (config errors as
    /// `file:line:column: path: message`, one per line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A success carrying `result`.
    pub fn success<T: Serialize>(result: &T) -> Response {
        match serde_json::to_value(result) {
            Ok(v) => Response {
                ok: true,
                result: Some(v),
                error: None,
            },
            Err(e) => Response::failure(format!("internal error: cannot encode the reply: {e}")),
        }
    }

    /// A failure with `message`.
    pub fn failure(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            result: None,
            error: Some(message.into()),
        }
    }
}

/// Reply to [`Request::Version`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReply {
    /// The daemon's version.
    pub version: String,
    /// [`PROTOCOL_VERSION`] of the daemon.
    pub protocol: u32,
}

/// Reply to [`Request::Status`]. Holds nothing that changes by itself
/// (no clocks, no counters): two replies differ only if the configuration
/// or a connection changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// The daemon's version.
    pub version: String,
    /// The file the daemon runs (`None`: the built-in default).
    pub config_file: Option<PathBuf>,
    /// Directory of relative socket paths.
    pub runtime_dir: PathBuf,
    /// This control socket.
    pub control_socket: PathBuf,
    /// PMD threads per switch.
    pub pmd_threads: Vec<PmdStatus>,
    /// Successful reloads since start.
    pub reloads: u64,
    /// The switches, in file order.
    pub switches: Vec<SwitchStatus>,
}

/// One PMD thread of every switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmdStatus {
    /// CPU it is pinned to, if any.
    pub core: Option<usize>,
    /// `busy` or `adaptive`.
    pub idle: String,
}

/// One switch in [`StatusReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchStatus {
    /// Name.
    pub name: String,
    /// MTU.
    pub mtu: u16,
    /// MAC table limits.
    pub mac_table: MacTableLimits,
    /// Port groups, in file order.
    pub port_groups: Vec<PortGroupStatus>,
    /// Guest and internal ports, in file order.
    pub ports: Vec<PortStatus>,
    /// Uplinks, in file order.
    pub uplinks: Vec<UplinkStatus>,
}

/// MAC table limits of a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacTableLimits {
    /// Entries in the whole table.
    pub max_entries: u32,
    /// Seconds until an entry not seen again is forgotten.
    pub aging_seconds: u32,
    /// Dynamic entries one port may hold.
    pub per_port_limit: u32,
}

/// A port group in [`SwitchStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortGroupStatus {
    /// Name.
    pub name: String,
    /// VLAN mode.
    pub vlan: Vlan,
    /// Security policy.
    pub security: Security,
}

/// A VLAN mode, structured for scripts, with its words for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vlan {
    /// `access`, `trunk` or `guest-tagging`.
    pub mode: String,
    /// Access VLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Trunk: the VLANs carried, like `1,10,20-29` (native included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
    /// Trunk: the native VLAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<u16>,
    /// As `vswitchctl` prints it: `VLAN 10`, `trunk 1,10 native 1`, ...
    pub text: String,
}

impl From<&config::VlanMode> for Vlan {
    fn from(m: &config::VlanMode) -> Vlan {
        let text = m.to_string();
        match m {
            config::VlanMode::Access(v) => Vlan {
                mode: "access".into(),
                vlan: Some(v.get()),
                allowed: None,
                native: None,
                text,
            },
            config::VlanMode::Trunk { allowed, native } => Vlan {
                mode: "trunk".into(),
                vlan: None,
                allowed: Some(allowed.to_string()),
                native: native.map(config::VlanId::get),
                text,
            },
            config::VlanMode::GuestTagging => Vlan {
                mode: "guest-tagging".into(),
                vlan: None,
                allowed: None,
                native: m.native().map(config::VlanId::get),
                text,
            },
        }
    }
}

/// A security policy: each setting `accept` or `reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// Promiscuous mode.
    pub promiscuous: String,
    /// MAC address changes.
    pub mac_changes: String,
    /// Forged transmits.
    pub forged_transmits: String,
}

impl From<&config::SecurityPolicy> for Security {
    fn from(s: &config::SecurityPolicy) -> Security {
        Security {
            promiscuous: s.promiscuous.to_string(),
            mac_changes: s.mac_changes.to_string(),
            forged_transmits: s.forged_transmits.to_string(),
        }
    }
}

/// A guest or internal port in [`SwitchStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    /// Name.
    pub name: String,
    /// Stable numeric ID (counters and MAC table entries use it).
    pub id: u16,
    /// `vhost-user` or `internal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// vhost-user: `server` (the switch listens) or `client`.
    pub role: Option<String>,
    /// vhost-user: the socket path.
    pub socket: Option<PathBuf>,
    /// vhost-user: queue pairs configured.
    pub queues: Option<u16>,
    /// vhost-user: queue pairs whose two rings run now (the guest enabled
    /// them); `None` without a running backend.
    #[serde(default)]
    pub queues_running: Option<u16>,
    /// vhost-user: a frontend (QEMU) is connected now; internal port: its
    /// TAP device is open and attached. `None` when the daemon runs no
    /// backend for the port.
    pub connected: Option<bool>,
    /// Its port group.
    pub port_group: String,
    /// Effective VLAN mode.
    pub vlan: Vlan,
    /// Effective security policy.
    pub security: Security,
    /// The guest's configured MAC.
    pub mac: Option<String>,
}

/// An uplink in [`SwitchStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkStatus {
    /// Interface name.
    pub name: String,
    /// Stable numeric ID.
    pub id: u16,
    /// `af-xdp` or `af-packet`.
    pub driver: String,
    /// Team it belongs to.
    pub team: Option<String>,
    /// Effective VLAN mode.
    pub vlan: Vlan,
    /// Whether its device is open and frames flow through it.
    pub running: bool,
}

/// Reply to [`Request::Stats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    /// Per switch.
    pub switches: Vec<SwitchStats>,
}

/// Counters of one switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchStats {
    /// Switch name.
    pub name: String,
    /// Ports and uplinks, in file order.
    pub ports: Vec<PortStats>,
    /// The switch's PMD threads.
    pub pmds: Vec<PmdStats>,
}

/// Counters of one port, summed over the PMDs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStats {
    /// Port name.
    pub name: String,
    /// Frames received from the port.
    pub rx_packets: u64,
    /// Bytes received from the port.
    pub rx_bytes: u64,
    /// Frames sent to the port.
    pub tx_packets: u64,
    /// Bytes sent to the port.
    pub tx_bytes: u64,
    /// Frames the port could not take (ring full, not connected).
    pub tx_dropped: u64,
    /// Frames received from the port and dropped, by reason name
    /// (`forged_transmit`, `vlan_tagged_on_access`, ...); reasons with a
    /// zero count are left out.
    pub drops: BTreeMap<String, u64>,
    /// Sum of `drops`.
    pub drops_total: u64,
    /// Source MACs not learned: the port reached its limit.
    pub mac_learn_limit: u64,
    /// Source MACs not learned: the table was full.
    pub mac_table_full: u64,
    /// MACs that moved to this port.
    pub mac_moves: u64,
    /// vhost-user ports: the port's own counters (guest-caused and ring
    /// drops, connects, resets), by name; zero counts left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<BTreeMap<String, u64>>,
    /// Ports on kernel sockets (uplinks, internal ports; a team: the sum
    /// of its members): why the socket side dropped frames, every reason
    /// with its count (`tx_queue_full`, `tx_link_down`, `tx_oversize`,
    /// `tx_errors`, `rx_oversize`, `rx_no_buffer`, `rx_errors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netdev: Option<BTreeMap<String, u64>>,
    /// A team's members, each with its own `netdev` reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStats>,
}

/// The socket drop reasons of one team member, in [`PortStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStats {
    /// Member (uplink) name.
    pub name: String,
    /// Every reason with its count, as [`PortStats::netdev`].
    pub netdev: BTreeMap<String, u64>,
}

/// Counters of one PMD thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmdStats {
    /// Index in the switch.
    pub index: usize,
    /// Loop iterations.
    pub iterations: u64,
    /// Iterations that received something.
    pub busy_iterations: u64,
    /// Idle sleeps (adaptive policy).
    pub idle_sleeps: u64,
    /// CPU time used, nanoseconds (sampled).
    pub cpu_time_ns: u64,
}

/// Reply to [`Request::MacTable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacTableReply {
    /// Per switch.
    pub switches: Vec<SwitchMacTable>,
}

/// One switch's MAC table (as PMD 0 sees it; the replicas converge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchMacTable {
    /// Switch name.
    pub name: String,
    /// Entries sorted by VLAN, then MAC.
    pub entries: Vec<MacEntry>,
}

/// One MAC table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacEntry {
    /// VLAN.
    pub vlan: u16,
    /// Address.
    pub mac: String,
    /// Port name.
    pub port: String,
    /// Configured (never ages) rather than learned.
    #[serde(rename = "static")]
    pub is_static: bool,
    /// Seconds since last seen (0 for static entries).
    pub age: u32,
    /// IPv4 address the host announced in its own ARP frames on this
    /// port (what a team's gratuitous ARPs carry), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
}

/// Reply to [`Request::FdbFlush`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbFlushReply {
    /// The switches flushed.
    pub switches: Vec<SwitchFlush>,
}

/// What a flush removed from one switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchFlush {
    /// Switch name.
    pub name: String,
    /// Learned entries removed (as PMD 0 counted them).
    pub flushed: u64,
}

/// Reply to [`Request::VlanShow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlanShowReply {
    /// Per switch, in file order.
    pub switches: Vec<SwitchVlans>,
}

/// VLAN membership of one switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchVlans {
    /// Switch name.
    pub name: String,
    /// Every VLAN some port is an access port of, the native VLAN of, or
    /// lists in its trunk (a trunk carrying all of 1-4094 does not add
    /// them all), ascending; with every port that carries it.
    pub vlans: Vec<VlanMembers>,
    /// Ports and uplinks that carry every VLAN (guest tagging, or a trunk
    /// of 1-4094), with their mode in words.
    pub all_vlans: Vec<VlanMember>,
}

/// One VLAN and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlanMembers {
    /// VLAN ID.
    pub vlan: u16,
    /// Ports and uplinks carrying it, in file order (ports first).
    pub members: Vec<VlanMember>,
}

/// A port's membership in a VLAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlanMember {
    /// Port or uplink name.
    pub port: String,
    /// Frames of the VLAN leave the port tagged (trunk, guest tagging)
    /// rather than untagged (access, native VLAN).
    pub tagged: bool,
    /// The port's VLAN mode in words (`VLAN 10`, `trunk 10,20 native 1`).
    pub mode: String,
}

/// Reply to [`Request::PmdShow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmdShowReply {
    /// Per switch (each switch runs its own PMD threads), in file order.
    pub switches: Vec<SwitchPmds>,
}

/// The PMD threads of one switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchPmds {
    /// Switch name.
    pub name: String,
    /// Its PMD threads, by index.
    pub pmds: Vec<PmdInfo>,
}

/// One PMD thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmdInfo {
    /// Index in the switch.
    pub index: usize,
    /// CPU it is pinned to (`None`: any CPU).
    pub core: Option<usize>,
    /// `busy` or `adaptive`.
    pub idle: String,
    /// vhost-user ports whose receive queue this PMD polls.
    pub rx_ports: Vec<String>,
    /// Ports it has a transmit queue to (every PMD has one queue pair of
    /// every running port).
    pub tx_ports: usize,
    /// Loop iterations.
    pub iterations: u64,
    /// Iterations that received something: `busy_iterations /
    /// iterations` is the busy share.
    pub busy_iterations: u64,
    /// Idle sleeps (adaptive policy).
    pub idle_sleeps: u64,
    /// CPU time used, nanoseconds (sampled about twice a second).
    pub cpu_time_ns: u64,
}

/// Reply to [`Request::Reload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReply {
    /// Only reported, nothing applied.
    pub dry_run: bool,
    /// The file that was read (`None`: the built-in default).
    pub config_file: Option<PathBuf>,
    /// What changed, in words (`port vm7: VLAN 10 -> 20`), in diff order.
    pub changes: Vec<String>,
    /// Changes accepted without effect, with why (e.g. a file setting the
    /// command line overrides).
    pub ignored: Vec<String>,
    /// Whether the changes were applied (false for a dry run).
    pub applied: bool,
    /// What SR-IOV reconciliation did on this reload (on a dry run: what
    /// it would do, drift included): changes, then `warning: ...` and
    /// `error: ...` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sriov: Vec<String>,
}

impl ReloadReply {
    /// SR-IOV lines by kind: (changes, warnings, errors).
    pub fn sriov_counts(&self) -> (usize, usize, usize) {
        let errors = self
            .sriov
            .iter()
            .filter(|l| l.starts_with("error: "))
            .count();
        let warnings = self
            .sriov
            .iter()
            .filter(|l| l.starts_with("warning: "))
            .count();
        (self.sriov.len() - errors - warnings, warnings, errors)
    }

    /// The closing line: what the file changed, then what SR-IOV
    /// reconciliation did (drift it corrected counts as changes there,
    /// and a setting the driver refused as an error).
    pub fn summary(&self) -> String {
        let n = self.changes.len();
        let s = if n == 1 { "" } else { "s" };
        let from = self.config_file.as_ref().map_or_else(
            || "the built-in default".to_string(),
            |p| p.display().to_string(),
        );
        let mut out = match (self.dry_run, n) {
            (true, 0) => format!("dry run: {from}: no changes"),
            (true, _) => {
                format!("dry run: {from}: {n} change{s} would be applied; nothing changed")
            }
            (false, 0) => format!("reloaded {from}: no changes"),
            (false, _) => format!("reloaded {from}: {n} change{s} applied"),
        };
        let (changes, warnings, errors) = self.sriov_counts();
        let mut parts = Vec::new();
        let plural = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
        if changes > 0 {
            parts.push(plural(changes, "change"));
        }
        if warnings > 0 {
            parts.push(plural(warnings, "warning"));
        }
        if errors > 0 {
            parts.push(plural(errors, "error"));
        }
        if !parts.is_empty() {
            out.push_str(&format!("; SR-IOV: {}", parts.join(", ")));
            if self.dry_run {
                out.push_str(" (would be made)");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23: the summary agrees with the SR-IOV lines ("no changes"
    /// was printed after drift was corrected, "1 change applied" when the
    /// change was refused).
    #[test]
    fn a_reload_summary_counts_sriov_changes_warnings_and_errors() {
        let mut r = ReloadReply {
            dry_run: false,
            config_file: Some(PathBuf::from("/etc/vswitch.yaml")),
            changes: Vec::new(),
            ignored: Vec::new(),
            applied: true,
            sriov: vec![
                "enp1s0 VF 0: vlan 100 (was vlan 0)".into(),
                "enp1s0 VF 1: mac 02:00:00:00:00:11 (was 00:00:00:00:00:00)".into(),
            ],
        };
        assert_eq!(
            r.summary(),
            "reloaded /etc/vswitch.yaml: no changes; SR-IOV: 2 changes"
        );
        r.changes.push("sriov enp1s0: VFs 3 -> 2".into());
        r.sriov = vec![
            "warning: enp1s0 VF 0: link-state enable: not supported by the driver".into(),
            "error: enp1s0: VF count 3 -> 2 refused: VF 1 is in use by qemu (pid 7)".into(),
        ];
        assert_eq!(r.sriov_counts(), (0, 1, 1));
        assert_eq!(
            r.summary(),
            "reloaded /etc/vswitch.yaml: 1 change applied; SR-IOV: 1 warning, 1 error"
        );
    }

    #[test]
    fn requests_round_trip_as_documented() {
        let cases = [
            (r#"{"cmd":"status"}"#, Request::Status),
            (r#"{"cmd":"mac-table"}"#, Request::MacTable),
            (r#"{"cmd":"vlan-show"}"#, Request::VlanShow),
            (r#"{"cmd":"pmd-show"}"#, Request::PmdShow),
            (
                r#"{"cmd":"fdb-flush","switch":"sw0","vlan":10,"port":"vm0"}"#,
                Request::FdbFlush {
                    switch: Some("sw0".into()),
                    vlan: Some(10),
                    port: Some("vm0".into()),
                },
            ),
            (
                r#"{"cmd":"fdb-flush"}"#,
                Request::FdbFlush {
                    switch: None,
                    vlan: None,
                    port: None,
                },
            ),
            (
                r#"{"cmd":"reload","dry_run":true,"config":"/etc/v.yaml"}"#,
                Request::Reload {
                    dry_run: true,
                    config: Some(PathBuf::from("/etc/v.yaml")),
                },
            ),
            (
                r#"{"cmd":"reload"}"#,
                Request::Reload {
                    dry_run: false,
                    config: None,
                },
            ),
        ];
        for (text, want) in cases {
            let got: Request = serde_json::from_str(text).expect(text);
            assert_eq!(got, want);
            let again: Request =
                serde_json::from_str(&serde_json::to_string(&got).expect("encodes")).expect("back");
            assert_eq!(again, want);
        }
        for bad in [
            r#"{"cmd":"stauts"}"#,
            r#"{"cmd":"reload","dryrun":true}"#,
            r#"{}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_have_the_documented_shape() {
        let ok = Response::success(&VersionReply {
            version: "1.2.3".into(),
            protocol: 1,
        });
        assert_eq!(
            serde_json::to_string(&ok).expect("encodes"),
            r#"{"ok":true,"result":{"version":"1.2.3","protocol":1}}"#
        );
        let err = Response::failure("no");
        assert_eq!(
            serde_json::to_string(&err).expect("encodes"),
            r#"{"ok":false,"error":"no"}"#
        );
    }
}
