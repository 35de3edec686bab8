//! The validated model: plain Rust types, every default filled in, every
//! reference resolved. `vswitch` translates these into the specs of the
//! `dataplane`, `teaming` and `sriov` crates.

use std::fmt;
use std::path::PathBuf;

/// The MAC address type of the whole workspace (the `wire` crate's).
pub use wire::{MacAddr, MacParseError};

/// Runtime directory used when neither the file nor the caller gives one.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/vswitch";
/// Control socket file name (under the runtime directory) by default.
pub const DEFAULT_CONTROL_SOCKET: &str = "vswitchd.sock";
/// Name of the port group a port gets when it names none. A file may define
/// a group with this name to change what "no port group" means.
pub const DEFAULT_PORT_GROUP: &str = "default";
/// Default MTU of a switch.
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest MTU accepted (IPv4 minimum).
pub const MIN_MTU: u16 = 68;
/// Largest MTU accepted.
pub const MAX_MTU: u16 = 9710;
/// Most queue pairs a vhost-user port may ask for.
pub const MAX_QUEUES: u16 = 16;
/// Permission bits of a server-role vhost-user socket when the file sets
/// no `socket-mode`: only its owner (the daemon's user) may connect.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Daemon-wide settings.
    pub runtime: Runtime,
    /// The switches, in file order.
    pub switches: Vec<Switch>,
    /// SR-IOV physical functions and their VFs.
    pub sriov: Vec<SriovPf>,
    /// The Prometheus endpoint (`None`: no listener).
    pub metrics: Option<Metrics>,
}

/// Address the Prometheus endpoint listens on when `metrics:` names none.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9477";

/// The `metrics:` section: an HTTP endpoint serving `GET /metrics` in the
/// Prometheus text format. It has no authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    /// TCP address and port to listen on.
    pub listen: std::net::SocketAddr,
}

impl Config {
    /// The switch called `name`.
    pub fn switch(&self, name: &str) -> Option<&Switch> {
        self.switches.iter().find(|s| s.name == name)
    }

    /// The port called `name` (port names are unique across all switches)
    /// and the switch it is on.
    pub fn port(&self, name: &str) -> Option<(&Switch, &Port)> {
        self.switches
            .iter()
            .find_map(|s| s.port(name).map(|p| (s, p)))
    }
}

/// Daemon-wide settings: PMD threads and paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// CPU ids the PMD threads are pinned to, one thread per CPU, sorted.
    /// Empty: one PMD thread, not pinned.
    pub pmd_cores: Vec<u32>,
    /// What a PMD thread does when its queues are idle.
    pub idle: IdlePolicy,
    /// Directory for sockets given as relative paths.
    pub runtime_dir: PathBuf,
    /// Control socket of `vswitchd` (resolved under `runtime_dir`).
    pub control_socket: PathBuf,
}

/// What a PMD thread does when a poll round finds no packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdlePolicy {
    /// Spin at 100% CPU: lowest latency.
    Busy,
    /// Back off (pause, then short sleeps) after a run of empty polls.
    Adaptive,
}

impl fmt::Display for IdlePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdlePolicy::Busy => "busy",
            IdlePolicy::Adaptive => "adaptive",
        })
    }
}

/// One virtual switch: its own MAC table and flood domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// Unique switch name.
    pub name: String,
    /// MTU of every port of the switch (L3 size, without Ethernet header).
    pub mtu: u16,
    /// MAC learning limits.
    pub mac_table: MacTable,
    /// Port groups, in file order; always holds [`DEFAULT_PORT_GROUP`]
    /// (implicit, untagged VLAN 1, default security, if the file has none).
    pub port_groups: Vec<PortGroup>,
    /// Guest and internal ports.
    pub ports: Vec<Port>,
    /// Uplinks (netdevs) of this switch.
    pub uplinks: Vec<Uplink>,
    /// Teams of uplinks.
    pub teams: Vec<Team>,
}

impl Switch {
    /// The port called `name`.
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The port group called `name`.
    pub fn port_group(&self, name: &str) -> Option<&PortGroup> {
        self.port_groups.iter().find(|g| g.name == name)
    }

    /// The uplink called `name`.
    pub fn uplink(&self, name: &str) -> Option<&Uplink> {
        self.uplinks.iter().find(|u| u.name == name)
    }

    /// The team called `name`.
    pub fn team(&self, name: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.name == name)
    }

    /// The team `uplink` is a member of (active, standby or unused).
    pub fn team_of(&self, uplink: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.members().any(|m| m == uplink))
    }
}

/// MAC learning limits of a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacTable {
    /// Entries in the whole table.
    pub max_entries: u32,
    /// Seconds after which an entry not seen again is forgotten.
    pub aging_seconds: u32,
    /// Entries one port may learn (a guard against MAC floods).
    pub per_port_limit: u32,
}

impl Default for MacTable {
    fn default() -> Self {
        MacTable {
            max_entries: 65536,
            aging_seconds: 300,
            per_port_limit: 4096,
        }
    }
}

impl fmt::Display for MacTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max {} entries, aging {} s, {} per port",
            self.max_entries, self.aging_seconds, self.per_port_limit
        )
    }
}

/// A named VLAN and security policy shared by ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    /// Name, unique within the switch.
    pub name: String,
    /// VLAN mode of the ports in the group.
    pub vlan: VlanMode,
    /// Security policy of the ports in the group.
    pub security: SecurityPolicy,
}

impl PortGroup {
    /// The implicit default group: untagged (VLAN 1), default security.
    pub fn implicit_default() -> PortGroup {
        PortGroup {
            name: DEFAULT_PORT_GROUP.to_string(),
            vlan: VlanMode::UNTAGGED,
            security: SecurityPolicy::default(),
        }
    }
}

/// An 802.1Q VLAN ID, 1-4094.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VlanId(u16);

impl VlanId {
    /// VLAN 1, what untagged ports use.
    pub const DEFAULT: VlanId = VlanId(1);

    /// `Some` for 1-4094 (0 is priority tagging, 4095 reserved).
    pub const fn new(id: u16) -> Option<VlanId> {
        if id >= 1 && id <= 4094 {
            Some(VlanId(id))
        } else {
            None
        }
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A set of VLAN IDs, kept as sorted, disjoint, non-adjacent inclusive
/// ranges (so two equal sets compare equal, and a trunk of 1-4094 is small).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct VlanSet {
    ranges: Vec<(u16, u16)>,
}

impl VlanSet {
    /// The empty set.
    pub const fn new() -> VlanSet {
        VlanSet { ranges: Vec::new() }
    }

    /// Every VLAN, 1-4094.
    pub fn all() -> VlanSet {
        VlanSet {
            ranges: vec![(1, 4094)],
        }
    }

    /// Adds one VLAN.
    pub fn insert(&mut self, id: VlanId) {
        self.insert_range(id, id);
    }

    /// Adds `lo..=hi` (nothing if `lo > hi`).
    pub fn insert_range(&mut self, lo: VlanId, hi: VlanId) {
        if lo > hi {
            return;
        }
        let (mut lo, mut hi) = (lo.0, hi.0);
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for &(a, b) in &self.ranges {
            if b + 1 < lo {
                out.push((a, b));
            } else if hi + 1 < a {
                if !placed {
                    out.push((lo, hi));
                    placed = true;
                }
                out.push((a, b));
            } else {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        if !placed {
            out.push((lo, hi));
        }
        out.sort_unstable();
        self.ranges = out;
    }

    /// Whether `id` is in the set. Any number outside 1-4094 is not.
    pub fn contains(&self, id: u16) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < id);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= id)
    }

    /// Number of VLANs in the set.
    pub fn len(&self) -> usize {
        self.ranges
            .iter()
            .map(|&(lo, hi)| usize::from(hi - lo) + 1)
            .sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The VLANs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = VlanId> + '_ {
        self.ranges
            .iter()
            .flat_map(|&(lo, hi)| (lo..=hi).map(VlanId))
    }

    /// The set as sorted, disjoint, non-adjacent inclusive ranges.
    pub fn ranges(&self) -> impl Iterator<Item = (VlanId, VlanId)> + '_ {
        self.ranges.iter().map(|&(lo, hi)| (VlanId(lo), VlanId(hi)))
    }
}

impl fmt::Display for VlanSet {
    /// `10,20-29,100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, (lo, hi)) in self.ranges().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VlanSet({self})")
    }
}

/// How a port treats 802.1Q tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged to the guest, in this VLAN on the switch; tagged frames from
    /// the guest are dropped.
    Access(VlanId),
    /// Tagged frames of the allowed VLANs pass. Untagged frames belong to the
    /// native VLAN if there is one (and are dropped otherwise); frames of the
    /// native VLAN leave untagged. `allowed` always contains `native`.
    Trunk {
        /// VLANs carried (including the native VLAN).
        allowed: VlanSet,
        /// VLAN of untagged frames.
        native: Option<VlanId>,
    },
    /// Guest tagging (VMware's VLAN 4095): every VLAN passes tagged as the
    /// guest wrote it, except the native VLAN 1: untagged (and
    /// priority-tagged) frames from the guest belong to VLAN 1, and frames
    /// of VLAN 1 reach the guest untagged, as they travel on an uplink that
    /// keeps [`VlanMode::uplink_default`]. A guest-tagging port whose
    /// untagged frames belong elsewhere is a trunk of `1-4094` with that
    /// native VLAN.
    GuestTagging,
}

impl VlanMode {
    /// Access VLAN 1: what "no VLAN configuration" means for a port.
    pub const UNTAGGED: VlanMode = VlanMode::Access(VlanId::DEFAULT);

    /// What an uplink carries when nothing says otherwise: every VLAN
    /// tagged, VLAN 1 untagged.
    pub fn uplink_default() -> VlanMode {
        VlanMode::Trunk {
            allowed: VlanSet::all(),
            native: Some(VlanId::DEFAULT),
        }
    }

    /// The VLAN of untagged frames, which leaves the port untagged: the
    /// access VLAN, a trunk's native VLAN, or VLAN 1 for guest tagging.
    pub fn native(&self) -> Option<VlanId> {
        match self {
            VlanMode::Access(v) => Some(*v),
            VlanMode::Trunk { native, .. } => *native,
            VlanMode::GuestTagging => Some(VlanId::DEFAULT),
        }
    }

    /// Whether frames of VLAN `id` may use a port in this mode.
    pub fn carries(&self, id: u16) -> bool {
        match self {
            VlanMode::Access(v) => v.0 == id,
            VlanMode::Trunk { allowed, .. } => allowed.contains(id),
            VlanMode::GuestTagging => VlanId::new(id).is_some(),
        }
    }
}

impl fmt::Display for VlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VlanMode::Access(v) => write!(f, "VLAN {v}"),
            VlanMode::Trunk { allowed, native } => {
                write!(f, "trunk {allowed}")?;
                match native {
                    Some(n) => write!(f, " native {n}"),
                    None => f.write_str(" no native"),
                }
            }
            VlanMode::GuestTagging => f.write_str("guest tagging (all VLANs, native 1)"),
        }
    }
}

/// Accept or reject, as a security policy setting reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Allowed.
    Accept,
    /// Refused (frames dropped).
    Reject,
}

impl Verdict {
    pub(crate) fn from_bool(accept: bool) -> Verdict {
        if accept {
            Verdict::Accept
        } else {
            Verdict::Reject
        }
    }

    /// `true` for [`Verdict::Accept`].
    pub fn accepts(self) -> bool {
        self == Verdict::Accept
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
        })
    }
}

/// Layer-2 security policy of a port (VMware's three switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityPolicy {
    /// Accept: the port sees every frame of its VLANs.
    pub promiscuous: Verdict,
    /// Reject: frames to the guest are dropped if the guest changed its
    /// effective MAC away from the configured one.
    pub mac_changes: Verdict,
    /// Reject: frames from the guest whose source MAC is not the port's MAC
    /// are dropped.
    pub forged_transmits: Verdict,
}

impl Default for SecurityPolicy {
    /// Reject, reject, reject (the VMware distributed switch defaults).
    fn default() -> Self {
        SecurityPolicy {
            promiscuous: Verdict::Reject,
            mac_changes: Verdict::Reject,
            forged_transmits: Verdict::Reject,
        }
    }
}

impl fmt::Display for SecurityPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "promiscuous {}, mac-changes {}, forged-transmits {}",
            self.promiscuous, self.mac_changes, self.forged_transmits
        )
    }
}

/// A guest or host-internal port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Name, unique across all switches (and distinct from uplink names).
    pub name: String,
    /// What backs the port.
    pub kind: PortKind,
    /// The port group it belongs to ([`DEFAULT_PORT_GROUP`] if none given).
    pub port_group: String,
    /// Effective VLAN mode: the port's own `vlan:` or else its group's.
    pub vlan: VlanMode,
    /// Effective security: the port's own settings, key by key, over its
    /// group's.
    pub security: SecurityPolicy,
    /// The guest's configured MAC, if given: forged-transmits and
    /// mac-changes compare against it, and the switch knows where it lives
    /// without learning. Without it those two policies cannot apply.
    pub mac: Option<MacAddr>,
    /// Owner, group and mode of the socket file: `Some` exactly for
    /// vhost-user ports in server mode (the switch creates their socket);
    /// the port's `socket-*` keys over its switch's, key by key.
    pub socket_access: Option<SocketAccess>,
}

/// Who may connect to a socket the switch creates: its owner, group and
/// permission bits (connecting needs write permission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAccess {
    /// Owner; `None`: the daemon's user.
    pub owner: Option<Account>,
    /// Group; `None`: the daemon's group.
    pub group: Option<Account>,
    /// Permission bits, at most `0o775` (never writable by others).
    pub mode: u32,
}

impl Default for SocketAccess {
    /// The daemon's user and group, [`DEFAULT_SOCKET_MODE`].
    fn default() -> Self {
        SocketAccess {
            owner: None,
            group: None,
            mode: DEFAULT_SOCKET_MODE,
        }
    }
}

impl fmt::Display for SocketAccess {
    /// `mode 0660, owner default, group kvm (109)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mode {:04o}, owner {}, group {}",
            self.mode,
            Account::or_default(self.owner.as_ref()),
            Account::or_default(self.group.as_ref())
        )
    }
}

/// A user or group, resolved to its numeric id when the file was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The uid or gid.
    pub id: u32,
    /// The name as written, if the file gave a name rather than a number.
    pub name: Option<String>,
}

impl Account {
    /// `default` for `None`, else the account.
    pub fn or_default(a: Option<&Account>) -> String {
        a.map_or_else(|| "default".to_string(), ToString::to_string)
    }
}

impl fmt::Display for Account {
    /// `kvm (109)`, or `109` for a number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} ({})", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// What a configuration names on the host it runs on: the users and
/// groups of `socket-owner` and `socket-group`, and the network
/// interfaces of uplinks. The config crate reads no account database and
/// opens no socket itself: `vswitch` passes the system's, tests a table.
pub trait Host {
    /// The uid of user `name`: `Ok(None)` if there is no such user, `Err`
    /// with a reason if the lookup itself failed.
    fn uid(&self, name: &str) -> Result<Option<u32>, String>;
    /// The gid of group `name`, likewise.
    fn gid(&self, name: &str) -> Result<Option<u32>, String>;
    /// Whether network interface `name` exists: `Ok(None)` when this host
    /// does not look (the default: a file checked away from the host it
    /// is for), `Err` with a reason if the lookup itself failed.
    fn interface_exists(&self, _name: &str) -> Result<Option<bool>, String> {
        Ok(None)
    }
    /// What network interface `name` is as an SR-IOV PF (for `sriov[].pf`
    /// and its `num-vfs`): the default does not look.
    fn sriov_pf(&self, _name: &str) -> Result<PfLookup, String> {
        Ok(PfLookup::NotChecked)
    }
}

/// What [`Host::sriov_pf`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PfLookup {
    /// Not looked up (a file checked away from its host).
    NotChecked,
    /// No network interface of that name.
    Missing,
    /// An interface without SR-IOV (no `sriov_totalvfs` in sysfs).
    NotSriov,
    /// An SR-IOV PF that supports this many VFs.
    TotalVfs(u16),
}

/// Resolves no names: only numeric uids and gids are accepted, and
/// interfaces are not looked up. What [`crate::parse_str`] and
/// [`crate::load_file`] use.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumericIdsOnly;

impl Host for NumericIdsOnly {
    fn uid(&self, name: &str) -> Result<Option<u32>, String> {
        Err(format!(
            "cannot look up user `{name}` here (no account database); use a numeric uid"
        ))
    }
    fn gid(&self, name: &str) -> Result<Option<u32>, String> {
        Err(format!(
            "cannot look up group `{name}` here (no account database); use a numeric gid"
        ))
    }
}

/// What backs a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// A vhost-user socket to a VMM.
    VhostUser {
        /// Socket path (absolute, or relative to the current directory if
        /// the runtime directory is relative).
        socket: PathBuf,
        /// Who listens on the socket.
        mode: VhostMode,
        /// Queue pairs offered (1-16).
        queues: u16,
    },
    /// A TAP device on the host named after the port.
    Internal,
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortKind::VhostUser {
                socket,
                mode,
                queues,
            } => write!(
                f,
                "vhost-user {mode} {} ({queues} queue{})",
                socket.display(),
                if *queues == 1 { "" } else { "s" }
            ),
            PortKind::Internal => f.write_str("internal (TAP)"),
        }
    }
}

/// Which side of a vhost-user socket listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VhostMode {
    /// The switch creates and listens on the socket; the VMM connects.
    Server,
    /// The VMM listens; the switch connects (and reconnects).
    Client,
}

impl fmt::Display for VhostMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VhostMode::Server => "server",
            VhostMode::Client => "client",
        })
    }
}

/// A host netdev the switch uses as an uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// Kernel interface name (at most 15 bytes).
    pub name: String,
    /// How frames are exchanged with the netdev.
    pub driver: UplinkDriver,
    /// Port group named on the uplink itself, or on its team.
    pub port_group: Option<String>,
    /// Effective VLAN mode: from its team's port group, else its own, else
    /// [`VlanMode::uplink_default`].
    pub vlan: VlanMode,
}

/// Socket type of an uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UplinkDriver {
    /// AF_XDP (copy mode on veths).
    AfXdp,
    /// AF_PACKET: slower, works everywhere.
    AfPacket,
}

impl fmt::Display for UplinkDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UplinkDriver::AfXdp => "af-xdp",
            UplinkDriver::AfPacket => "af-packet",
        })
    }
}

/// A team (bond) of uplinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Name, unique across all switches.
    pub name: String,
    /// Load-balancing policy.
    pub policy: TeamPolicy,
    /// Members carrying traffic, in failover order. Never empty.
    pub active: Vec<String>,
    /// Members used, in order, when active ones fail.
    pub standby: Vec<String>,
    /// Members never used.
    pub unused: Vec<String>,
    /// Whether traffic moves back to a recovered active member.
    pub failback: bool,
    /// How member failure is detected.
    pub failure_detection: FailureDetection,
    /// Send RARP/GARP per guest MAC out the new member on failover.
    pub notify_switches: bool,
    /// Port group of the team, if given.
    pub port_group: Option<String>,
    /// Effective VLAN mode of the members.
    pub vlan: VlanMode,
}

impl Team {
    /// Every member: active, then standby, then unused.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.active
            .iter()
            .chain(&self.standby)
            .chain(&self.unused)
            .map(String::as_str)
    }
}

/// Load-balancing policy of a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TeamPolicy {
    /// Route based on originating virtual port ID.
    PortId,
    /// Route based on IP hash (src/dst IP; non-IP falls back to MAC hash).
    IpHash,
    /// Route based on source MAC hash.
    SrcMac,
    /// Use the first active member that is up.
    ExplicitFailover,
    /// Route based on the L4 5-tuple hash.
    L4Hash,
}

impl fmt::Display for TeamPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TeamPolicy::PortId => "port-id",
            TeamPolicy::IpHash => "ip-hash",
            TeamPolicy::SrcMac => "src-mac",
            TeamPolicy::ExplicitFailover => "explicit-failover",
            TeamPolicy::L4Hash => "l4-hash",
        })
    }
}

/// How a team notices a member failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureDetection {
    /// Link status (carrier) only.
    Link,
    /// Link status and beacon probes between members.
    Beacon,
}

impl fmt::Display for FailureDetection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureDetection::Link => "link",
            FailureDetection::Beacon => "beacon",
        })
    }
}

/// An SR-IOV physical function: how many VFs it has, and the settings of
/// the VFs the file names (the others are left as the kernel made them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SriovPf {
    /// Netdev name of the PF.
    pub pf: String,
    /// Number of VFs to create.
    pub num_vfs: u16,
    /// Per-VF settings, sorted by index.
    pub vfs: Vec<SriovVf>,
}

/// Settings of one VF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SriovVf {
    /// VF index (< `num_vfs`).
    pub index: u16,
    /// MAC to set, if any.
    pub mac: Option<MacAddr>,
    /// Port group whose VLAN the VF takes, if any.
    pub port_group: Option<String>,
    /// Access VLAN the NIC tags with; `None`: untagged or guest tagging.
    pub vlan: Option<VlanId>,
    /// 802.1p priority of the VF VLAN (0-7; 0 without a VLAN).
    pub qos: u8,
    /// Tag protocol of the VF VLAN.
    pub vlan_protocol: VfVlanProtocol,
    /// VF trust (may change MAC, enter promiscuous mode).
    pub trust: bool,
    /// MAC spoof checking by the NIC.
    pub spoof_check: bool,
    /// Administrative link state; `None`: left as it is.
    pub link_state: Option<VfLinkState>,
    /// Guaranteed TX rate in Mbit/s (0: none).
    pub min_tx_rate_mbps: u32,
    /// TX rate cap in Mbit/s (0: none).
    pub max_tx_rate_mbps: u32,
    /// Hand the VF to vfio-pci for passthrough (else the host driver).
    pub vfio: bool,
    /// MAC the VF gets when released (`None`: zero, no MAC).
    pub release_mac: Option<MacAddr>,
}

/// The tag protocol of a VF VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VfVlanProtocol {
    /// 802.1Q (C-tag, 0x8100).
    #[default]
    Dot1Q,
    /// 802.1ad (S-tag, 0x88a8): QinQ, where the driver supports it.
    Dot1Ad,
}

impl fmt::Display for VfVlanProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VfVlanProtocol::Dot1Q => "802.1Q",
            VfVlanProtocol::Dot1Ad => "802.1ad",
        })
    }
}

/// The administrative link state of a VF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VfLinkState {
    /// Follows the PF.
    Auto,
    /// Always up.
    Enable,
    /// Always down.
    Disable,
}

impl fmt::Display for VfLinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VfLinkState::Auto => "auto",
            VfLinkState::Enable => "enable",
            VfLinkState::Disable => "disable",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_set() {
        let mut s = VlanSet::new();
        assert!(s.is_empty());
        s.insert_range(VlanId(20), VlanId(29));
        s.insert(VlanId(10));
        s.insert(VlanId(30));
        assert!(s.contains(10) && s.contains(25) && s.contains(30));
        assert!(!s.contains(11) && !s.contains(0) && !s.contains(4095) && !s.contains(9999));
        assert_eq!(s.len(), 12);
        assert_eq!(s.to_string(), "10,20-30");
        assert_eq!(VlanSet::all().len(), 4094);
        assert_eq!(VlanSet::all().to_string(), "1-4094");
        let mut t = VlanSet::new();
        for (lo, hi) in [(50, 60), (10, 12), (13, 13), (70, 80), (55, 75), (1, 1)] {
            t.insert_range(VlanId(lo), VlanId(hi));
        }
        assert_eq!(t.to_string(), "1,10-13,50-80");
        assert_eq!(t.iter().count(), t.len());
        let mut u = VlanSet::new();
        for v in t.iter() {
            u.insert(v);
        }
        assert_eq!(t, u);
    }

    #[test]
    fn vlan_id() {
        assert!(VlanId::new(0).is_none());
        assert!(VlanId::new(4095).is_none());
        assert_eq!(VlanId::new(4094).map(VlanId::get), Some(4094));
    }

    #[test]
    fn mac() {
        let m: MacAddr = "52:54:00:AB:cd:01".parse().expect("valid");
        assert_eq!(m.to_string(), "52:54:00:ab:cd:01");
        assert!(!m.is_multicast());
        assert!(
            "01-00-5e-00-00-01"
                .parse::<MacAddr>()
                .expect("valid")
                .is_multicast()
        );
        for bad in [
            "",
            "52:54:00:00:00",
            "52:54:00:00:00:01:02",
            "5:54:00:00:00:01",
            "zz:54:00:00:00:01",
            "+1:54:00:00:00:01",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn modes_display() {
        assert_eq!(VlanMode::UNTAGGED.to_string(), "VLAN 1");
        assert_eq!(
            VlanMode::uplink_default().to_string(),
            "trunk 1-4094 native 1"
        );
        assert!(VlanMode::GuestTagging.carries(4094));
        assert!(!VlanMode::GuestTagging.carries(4095));
    }
}
