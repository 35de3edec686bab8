//! Parser, validation and diff tests. Positions are asserted exactly.

use std::path::{Path, PathBuf};

use super::*;

/// Removes the first newline and the common indentation, so YAML can be
/// written indented in the test source.
fn dedent(s: &str) -> String {
    let s = s.strip_prefix('\n').unwrap_or(s);
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    s.lines()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    parse_str(&dedent(yaml), "t.yaml")
}

fn ok(yaml: &str) -> Config {
    match parse(yaml) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// Every diagnostic line, without the `t.yaml:` prefix.
fn errors(yaml: &str) -> Vec<String> {
    match parse(yaml) {
        Ok(_) => panic!("expected errors for:\n{}", dedent(yaml)),
        Err(e) => e
            .to_string()
            .lines()
            .map(|l| l.strip_prefix("t.yaml:").unwrap_or(l).to_string())
            .collect(),
    }
}

/// Each case: YAML, and the exact diagnostics it gives (`line:col: path: msg`).
#[test]
fn error_table() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "port VLAN 4095",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                  - name: vm1
                  - name: vm2
                    vlan: 4095
            ",
            &["7:15: switches[0].ports[2].vlan: 4095 is not a VLAN ID (1-4094); use `vlan: all` for guest tagging"],
        ),
        (
            "group VLAN 0",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: g
                    vlan: 0
            ",
            &["5:15: switches[0].port-groups[0].vlan: 0 is not a VLAN ID (1-4094); leave `vlan` out for untagged (VLAN 1)"],
        ),
        (
            "VLAN above 4095",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: g
                    vlan: 5000
            ",
            &["5:15: switches[0].port-groups[0].vlan: 5000 is not a VLAN ID (1-4094)"],
        ),
        (
            "negative VLAN",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: g
                    vlan: -3
            ",
            &["5:15: switches[0].port-groups[0].vlan: -3 is not a VLAN ID (1-4094)"],
        ),
        (
            "trunk ranges reversed and out of range, bad native",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: t
                    vlan: { trunk: [10, 29-20, \"4090-4100\", 0], native: 4095 }
            ",
            &[
                "5:29: switches[0].port-groups[0].vlan.trunk[1]: range 29-20 is reversed; write 20-29",
                "5:36: switches[0].port-groups[0].vlan.trunk[2]: 4100 is not a VLAN ID (1-4094)",
                "5:49: switches[0].port-groups[0].vlan.trunk[3]: 0 is not a VLAN ID (1-4094); leave `vlan` out for untagged (VLAN 1)",
                "5:61: switches[0].port-groups[0].vlan.native: native VLAN 4095 is not a VLAN ID (1-4094); use `vlan: all` for guest tagging",
            ],
        ),
        (
            "trunk without list",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: t
                    vlan: { native: 5 }
            ",
            &["5:15: switches[0].port-groups[0].vlan: a trunk needs a `trunk:` list of VLANs, like `{ trunk: [10, 20-29], native: 1 }`"],
        ),
        (
            "empty trunk",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: t
                    vlan:
                      trunk: []
            ",
            &["6:18: switches[0].port-groups[0].vlan.trunk: the trunk list is empty; list the VLANs it carries, like `[10, 20-29]`"],
        ),
        (
            "VLAN word",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    vlan: any
            ",
            &["5:15: switches[0].ports[0].vlan: `any` is not a VLAN setting: expected a VLAN ID (1-4094), `all` for guest tagging, or a trunk `{ trunk: [10, 20-29], native: 1 }`"],
        ),
        (
            "VLAN bare list",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    vlan: [10, 20]
            ",
            &["5:15: switches[0].ports[0].vlan: a bare list is ambiguous: write a trunk as `vlan: { trunk: [10, 20-29] }`"],
        ),
        (
            "trunk item syntax",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    vlan: { trunk: [10, ten] }
            ",
            &["5:29: switches[0].ports[0].vlan.trunk[1]: invalid value: string \"ten\", expected a number or a range like `20-29`"],
        ),
        (
            "duplicate switch",
            "
            switches:
              - name: sw0
              - name: sw1
              - name: sw0
            ",
            &["4:11: switches[2].name: duplicate switch name `sw0` (first defined at line 2)"],
        ),
        (
            "duplicate port across switches",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
              - name: sw1
                ports:
                  - name: vm0
                    socket: other.sock
            ",
            &["7:15: switches[1].ports[0].name: duplicate port name `vm0` (first defined at line 4)"],
        ),
        (
            "a team is a port of its switch: it cannot share a port's or uplink's name",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                uplinks:
                  - name: eth0
                  - name: eth1
                teams:
                  - name: vm0
                    active: [eth0]
                  - name: eth1
                    active: [eth1]
            ",
            &[
                "9:15: switches[0].teams[0].name: team name `vm0` is already used by port at line 4",
                "11:15: switches[0].teams[1].name: team name `eth1` is already used by uplink at line 7",
            ],
        ),
        (
            "duplicate port group, uplink, team; port named like an uplink",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: g
                  - name: g
                ports:
                  - name: eth0
                uplinks:
                  - name: eth0
                  - name: eth1
                  - name: eth1
                teams:
                  - name: t
                    active: [eth1]
              - name: sw1
                teams:
                  - name: t
                    active: [x]
            ",
            &[
                "5:15: switches[0].port-groups[1].name: duplicate port group name `g` (first defined at line 4)",
                "9:15: switches[0].uplinks[0].name: uplink name `eth0` is already used by port at line 7",
                "11:15: switches[0].uplinks[2].name: duplicate uplink name `eth1` (first defined at line 10)",
                "17:15: switches[1].teams[0].name: duplicate team name `t` (first defined at line 13)",
                "18:18: switches[1].teams[0].active[0]: unknown uplink `x` (there are none)",
            ],
        ),
        (
            "duplicate sockets across switches and with the control socket",
            "
            runtime:
              runtime-dir: /run/vs
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    socket: a.sock
                  - name: vm1
                    socket: vswitchd.sock
              - name: sw1
                ports:
                  - name: vm2
                    socket: /run/vs/a.sock
            ",
            &[
                "9:17: switches[0].ports[1].socket: socket /run/vs/vswitchd.sock is already used by the control socket (line 2)",
                "13:17: switches[1].ports[0].socket: socket /run/vs/a.sock is already used by port vm0 (line 7)",
            ],
        ),
        (
            "derived socket collides with explicit one",
            "
            switches:
              - name: sw0
                ports:
                  - name: a
                    socket: b.sock
                  - name: b
            ",
            &["6:15: switches[0].ports[1].socket: socket /run/vswitch/b.sock is already used by port a (line 5)"],
        ),
        (
            "socket path too long",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    socket: /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock
            ",
            &["5:17: switches[0].ports[0].socket: socket path /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock is 112 bytes; a Unix socket path is at most 107: use a shorter name or runtime-dir"],
        ),
        (
            "unknown port group with and without a suggestion",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: vlan10
                    vlan: 10
                ports:
                  - name: vm0
                    port-group: vlan1O
                  - name: vm1
                    port-group: storage
            ",
            &[
                "8:21: switches[0].ports[0].port-group: unknown port group `vlan1O`; did you mean `vlan10`?",
                "10:21: switches[0].ports[1].port-group: unknown port group `storage` (known: vlan10, default)",
            ],
        ),
        (
            "team members",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                uplinks:
                  - name: eth0
                  - name: eth1
                  - name: eth2
                teams:
                  - name: team0
                    active: [eth0, eht1, eth0]
                    standby: [vm0]
                  - name: team1
                    active: [eth2]
                    unused: [eth0]
                  - name: team2
                    standby: [eth1]
            ",
            &[
                "11:24: switches[0].teams[0].active[1]: unknown uplink `eht1`; did you mean `eth1`?",
                "11:30: switches[0].teams[0].active[2]: uplink `eth0` is listed twice in team `team0` (first in active at line 11)",
                "12:19: switches[0].teams[0].standby[0]: `vm0` is a port, not an uplink; teams group uplinks",
                "15:18: switches[0].teams[1].unused[0]: uplink `eth0` is already a member of team `team0` (line 11); an uplink can be in one team only",
                "16:15: switches[0].teams[2].active: team `team2` has no active member; list at least one uplink under `active:`",
            ],
        ),
        (
            "beacon probing with a hash policy",
            "
            switches:
              - name: sw0
                uplinks:
                  - name: eth0
                  - name: eth1
                  - name: eth2
                teams:
                  - name: team0
                    policy: ip-hash
                    active: [eth0, eth1, eth2]
                    failure-detection: beacon
                  - name: team1
                    policy: port-id
                    active: []
                    failure-detection: beacon
            ",
            &[
                "11:28: switches[0].teams[0].failure-detection: team `team0`: beacon probing does not work with a hash policy (the physical switch bundles the members into one EtherChannel and never returns a beacon); use `failure-detection: link`",
                "12:15: switches[0].teams[1].active: team `team1` has no active member; list at least one uplink under `active:`",
            ],
        ),
        (
            "beacon probing with fewer than three members",
            "
            switches:
              - name: sw0
                uplinks:
                  - name: eth0
                  - name: eth1
                  - name: eth2
                teams:
                  - name: team0
                    active: [eth0]
                    standby: [eth1]
                    unused: [eth2]
                    failure-detection: beacon
            ",
            &[
                "12:28: switches[0].teams[0].failure-detection: team `team0`: beacon probing needs three members or more in `active` and `standby` (it has 2): with two, a broken path leaves both suspect and the team cannot tell which one failed; add a member or use `failure-detection: link`",
            ],
        ),
        (
            "uplink port group inside a team",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: tr
                    vlan: { trunk: [1-100] }
                uplinks:
                  - name: eth0
                    port-group: tr
                teams:
                  - name: team0
                    active: [eth0]
            ",
            &["8:21: switches[0].uplinks[0].port-group: uplink `eth0` is in team `team0`: set `port-group` on the team, not on its members"],
        ),
        (
            "pmd cores",
            "
            runtime:
              pmd-cores: [1, 2-4, 3, 7-5, 2048, 1]
            ",
            &[
                "2:23: runtime.pmd-cores[2]: CPU 3 is listed twice (first at line 2); each PMD thread needs its own CPU",
                "2:26: runtime.pmd-cores[3]: range 7-5 is reversed; write 5-7",
                "2:31: runtime.pmd-cores[4]: 2048 is not a CPU id (0-1023)",
                "2:37: runtime.pmd-cores[5]: CPU 1 is listed twice (first at line 2); each PMD thread needs its own CPU",
            ],
        ),
        (
            "mtu range",
            "
            switches:
              - name: sw0
                mtu: 67
              - name: sw1
                mtu: 9711
              - name: sw2
                mtu: 9710
            ",
            &[
                "3:10: switches[0].mtu: 67 is out of range (68-9710)",
                "5:10: switches[1].mtu: 9711 is out of range (68-9710)",
            ],
        ),
        (
            "mtu type",
            "
            switches:
              - name: sw0
                mtu: jumbo
            ",
            &["3:10: switches[0].mtu: expected an integer, found `jumbo`"],
        ),
        (
            "MACs",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    mac: 52:54:00:00:00:1
                  - name: vm1
                    mac: 01:00:5e:00:00:01
                  - name: vm2
                    mac: 00:00:00:00:00:00
                  - name: vm3
                    mac: 52:54:00:00:00:03
                  - name: vm4
                    mac: 52-54-00-00-00-03
            ",
            &[
                "5:14: switches[0].ports[0].mac: `52:54:00:00:00:1` is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)",
                "7:14: switches[0].ports[1].mac: 01:00:5e:00:00:01 is a multicast address; a port MAC must be unicast (even first byte)",
                "9:14: switches[0].ports[2].mac: 00:00:00:00:00:00 is not a usable MAC address",
                "13:14: switches[0].ports[4].mac: MAC 52:54:00:00:00:03 is already used by port vm3 (line 11)",
            ],
        ),
        (
            "queues",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    queues: 0
                  - name: vm1
                    queues: 17
                  - name: vm2
                    queues: 16
            ",
            &[
                "5:17: switches[0].ports[0].queues: 0 is out of range (1-16)",
                "7:17: switches[0].ports[1].queues: 17 is out of range (1-16)",
            ],
        ),
        (
            "internal port",
            "
            switches:
              - name: sw0
                ports:
                  - name: host0
                    type: internal
                    socket: x.sock
                    queues: 2
                  - name: a-very-long-tap-name
                    type: internal
            ",
            &[
                "6:17: switches[0].ports[0].socket: internal (TAP) ports have no `socket`; remove it or use `type: vhost-user`",
                "7:17: switches[0].ports[0].queues: internal (TAP) ports have no `queues`; remove it or use `type: vhost-user`",
                "8:15: switches[0].ports[1].name: port name `a-very-long-tap-name` is 20 bytes; interface names are at most 15",
            ],
        ),
        (
            "bad names",
            "
            switches:
              - name: ''
              - name: sw 1
                uplinks:
                  - name: eth/0
            ",
            &[
                "2:11: switches[0].name: switch name is empty",
                "3:11: switches[1].name: switch name `sw 1` contains whitespace",
                "5:15: switches[1].uplinks[0].name: uplink name `eth/0` is not a valid interface name (no `/`, `:`, `.` or `..`)",
            ],
        ),
        (
            "mac table",
            "
            switches:
              - name: sw0
                mac-table: { max-entries: 1000, aging-seconds: 0, per-port-limit: 2000 }
            ",
            &[
                "3:52: switches[0].mac-table.aging-seconds: 0 is out of range (1-86400)",
                "3:71: switches[0].mac-table.per-port-limit: per-port-limit 2000 is larger than max-entries 1000",
            ],
        ),
        (
            "unknown keys",
            "
            switches:
              - name: sw0
                port-group:
                  - name: g
            ",
            &["3:5: switches[0].port-group: unknown key `port-group`; did you mean `port-groups`? (expected one of: name, mtu, mac-table, port-groups, ports, uplinks, teams, socket-owner, socket-group, socket-mode)"],
        ),
        (
            "unknown key without a close match",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    colour: blue
            ",
            &["5:9: switches[0].ports[0].colour: unknown key `colour` (expected one of: name, type, socket, mode, port-group, vlan, security, mac, queues, socket-owner, socket-group, socket-mode)"],
        ),
        (
            "unknown key in a vlan mapping",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    vlan: { trunc: [1] }
            ",
            &["5:17: switches[0].ports[0].vlan.trunc: unknown key `trunc`; did you mean `trunk`? (expected one of: trunk, native)"],
        ),
        (
            "unknown key at top level",
            "
            switch:
              - name: sw0
            ",
            &["1:1: switch: unknown key `switch`; did you mean `switches`? (expected one of: runtime, switches, sriov, metrics)"],
        ),
        (
            "unknown values",
            "
            switches:
              - name: sw0
                teams:
                  - name: t
                    policy: ip-hsah
            ",
            &["5:17: switches[0].teams[0].policy: unknown value `ip-hsah`; did you mean `ip-hash`? (expected one of: port-id, ip-hash, src-mac, explicit-failover, l4-hash)"],
        ),
        (
            "unknown security value",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: g
                    security: { forged-transmits: rejct }
            ",
            &["5:39: switches[0].port-groups[0].security.forged-transmits: unknown value `rejct`; did you mean `reject`? (expected one of: accept, reject, true, false)"],
        ),
        (
            "missing name",
            "
            switches:
              - mtu: 1500
            ",
            &["2:5: switches[0]: missing required key `name`"],
        ),
        (
            "duplicate key",
            "
            switches:
              - name: sw0
                mtu: 1500
                mtu: 9000
            ",
            &["4:5: switches[0].mtu: key `mtu` appears twice in the same mapping"],
        ),
        (
            "bad boolean",
            "
            switches:
              - name: sw0
                uplinks: [{ name: eth0 }]
                teams:
                  - name: t
                    active: [eth0]
                    failback: sometimes
            ",
            &["7:19: switches[0].teams[0].failback: expected `true` or `false`, found `sometimes`"],
        ),
        (
            "syntax error",
            "
            switches: [
            ",
            &["1:11: switches: unclosed bracket '['"],
        ),
        (
            "top level is not a mapping",
            "
            - name: sw0
            ",
            &["1:1: the top level must be a mapping with keys `runtime`, `switches`, `sriov` and `metrics`"],
        ),
        (
            "sriov",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: tr
                    vlan: { trunk: [5] }
            sriov:
              - pf: enp1s0f0
                num-vfs: 2
                vfs:
                  - index: 2
                  - index: 0
                    port-group: tr
                  - index: 0
                  - index: 1
                    port-group: vlan5
                    rate: { min-mbps: 100, max-mbps: 10 }
            ",
            &[
                "10:16: sriov[0].vfs[0].index: VF index 2 is out of range: enp1s0f0 has num-vfs 2 (indexes 0-1)",
                "12:21: sriov[0].vfs[1].port-group: port group `tr` is a trunk; a VF takes an access VLAN or `vlan: all`",
                "13:16: sriov[0].vfs[2].index: VF 0 is configured twice (first at line 11)",
                "15:21: sriov[0].vfs[3].port-group: unknown port group `vlan5` (known: default, tr)",
                "16:15: sriov[0].vfs[3].rate: min-mbps 100 is above max-mbps 10",
            ],
        ),
        (
            "sriov VF settings",
            "
            switches:
              - name: sw0
                port-groups:
                  - name: v10
                    vlan: 10
                  - name: all
                    vlan: all
            sriov:
              - pf: enp1s0f0
                num-vfs: 4
                vfs:
                  - index: 0
                    port-group: v10
                    qos: 8
                    vlan-protocol: 802.1x
                  - index: 1
                    qos: 3
                    vlan-protocol: 802.1ad
                    release-mac: 01:00:5e:00:00:01
                  - index: 2
                    port-group: all
                    qos: 1
            ",
            &[
                "14:14: sriov[0].vfs[0].qos: 8 is out of range (0-7)",
                "15:24: sriov[0].vfs[0].vlan-protocol: unknown VLAN protocol `802.1x` (expected 802.1Q or 802.1ad)",
                "17:14: sriov[0].vfs[1].qos: qos needs a VF VLAN: give the VF a port group with an access VLAN",
                "18:24: sriov[0].vfs[1].vlan-protocol: vlan-protocol 802.1ad needs a VF VLAN: give the VF a port group with an access VLAN",
                "19:22: sriov[0].vfs[1].release-mac: 01:00:5e:00:00:01 is a multicast address; a VF MAC must be unicast (even first byte)",
                "22:14: sriov[0].vfs[2].qos: qos needs a VF VLAN: the VF's port group has none",
            ],
        ),
        (
            "sriov VF link state",
            "
            sriov:
              - pf: enp1s0f0
                num-vfs: 1
                vfs:
                  - index: 0
                    link-state: up
            ",
            &["6:21: sriov[0].vfs[0].link-state: unknown value `up` (expected one of: auto, enable, disable)"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, yaml, want) in cases {
        let got = errors(yaml);
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        if got != want {
            failures.push(format!(
                "case `{name}`:\n  got:  {got:#?}\n  want: {want:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn empty_files() {
    for text in ["", "\n\n", "# just a comment\n", "---\n", "~\n", "null"] {
        let e = parse_str(text, "e.yaml").expect_err("empty");
        assert_eq!(
            e.to_string(),
            "e.yaml:1:1: the file is empty; expected a mapping with at least `switches:` \
             (see the config crate's README for a minimal example)",
            "{text:?}"
        );
    }
}

#[test]
fn all_semantic_errors_at_once() {
    let e = parse(
        "
        switches:
          - name: sw0
            mtu: 10
            ports:
              - name: vm0
                vlan: 4095
                queues: 99
        ",
    )
    .expect_err("invalid");
    let d = e.diagnostics();
    assert_eq!(d.len(), 3);
    assert_eq!((d[0].line, d[0].column), (3, 10));
    assert_eq!(d[1].path, "switches[0].ports[0].vlan");
    assert_eq!(d[2].path, "switches[0].ports[0].queues");
    assert!(d.iter().all(|d| d.file == "t.yaml"));
}

#[test]
fn load_file_reports_path() {
    let dir = std::env::temp_dir().join(format!("config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "switches:\n  - name: sw0\n    mtu: 1\n").expect("write");
    let e = load_file(&file).expect_err("bad mtu");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:3:10: switches[0].mtu: 1 is out of range (68-9710)",
            file.display()
        )
    );
    let missing = dir.join("missing.yaml");
    let e = load_file(&missing).expect_err("missing");
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read", missing.display()))
    );
    assert!(e.diagnostics().is_empty());
    std::fs::write(&file, "switches:\n  - name: sw0\n").expect("write");
    let c = load_file_with_runtime_dir(&file, Some(Path::new("/tmp/rt"))).expect("valid");
    assert_eq!(c.runtime.control_socket, Path::new("/tmp/rt/vswitchd.sock"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn default_config_contract() {
    let c = default_config(Path::new("/tmp/vs-test")).expect("the built-in config is valid");
    assert_eq!(c.switches.len(), 1);
    let sw = &c.switches[0];
    assert_eq!(sw.name, "sw0");
    assert_eq!(sw.mtu, 1500);
    let names: Vec<&str> = sw.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["vhost0", "vhost1"]);
    for (p, sock) in sw.ports.iter().zip(["vhost0.sock", "vhost1.sock"]) {
        assert_eq!(
            p.kind,
            PortKind::VhostUser {
                socket: PathBuf::from("/tmp/vs-test").join(sock),
                mode: VhostMode::Server,
                queues: 1,
            }
        );
        assert_eq!(p.vlan, VlanMode::Access(VlanId::DEFAULT));
        assert_eq!(p.security, SecurityPolicy::default());
        assert_eq!(p.port_group, DEFAULT_PORT_GROUP);
    }
    assert!(sw.uplinks.is_empty() && sw.teams.is_empty() && c.sriov.is_empty());
    assert_eq!(c.runtime.runtime_dir, Path::new("/tmp/vs-test"));
    assert_eq!(
        c.runtime.control_socket,
        Path::new("/tmp/vs-test/vswitchd.sock")
    );
    // The default runtime directory works too.
    let c = default_config(Path::new(DEFAULT_RUNTIME_DIR)).expect("valid");
    assert!(matches!(
        &c.switches[0].ports[1].kind,
        PortKind::VhostUser { socket, .. } if socket == Path::new("/run/vswitch/vhost1.sock")
    ));
    // A runtime directory too long for sun_path is an error, not a panic.
    let long = format!("/{}", "d".repeat(120));
    let e = default_config(Path::new(&long)).expect_err("too long");
    assert!(e.to_string().starts_with("<default config>:"), "{e}");
}

/// The ```yaml blocks of README.md.
fn readme_yaml() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in readme.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```yaml") => cur = Some(String::new()),
            (Some(_), "```") => blocks.extend(cur.take()),
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn readme_minimal_example() {
    let blocks = readme_yaml();
    assert_eq!(
        blocks.len(),
        2,
        "README has the minimal and the full example"
    );
    let c = parse_str(&blocks[0], "README.md").expect("minimal example is valid");
    let sw = &c.switches[0];
    assert_eq!(sw.ports.len(), 2);
    assert_eq!(
        sw.ports[0].kind,
        PortKind::VhostUser {
            socket: PathBuf::from("/run/vswitch/vm0.sock"),
            mode: VhostMode::Server,
            queues: 1
        }
    );
    assert_eq!(sw.ports[1].vlan, VlanMode::UNTAGGED);
    assert_eq!(c.runtime.pmd_cores, Vec::<u32>::new());
    assert_eq!(c.runtime.idle, IdlePolicy::Adaptive);
    assert_eq!(sw.mac_table, MacTable::default());
}

#[test]
fn readme_full_example() {
    let blocks = readme_yaml();
    let c =
        parse_str_with(&blocks[1], "README.md", None, &TestHost).expect("full example is valid");
    assert_eq!(c.runtime.pmd_cores, [2, 3]);
    assert_eq!(c.runtime.idle, IdlePolicy::Adaptive);
    assert_eq!(
        c.runtime.control_socket,
        Path::new("/run/vswitch/vswitchd.sock")
    );
    let sw = c.switch("sw0").expect("sw0");
    assert_eq!(sw.mtu, 9000);
    assert_eq!(sw.mac_table, MacTable::default());

    let trunk = sw.port_group("trunk").expect("trunk group");
    let VlanMode::Trunk { allowed, native } = &trunk.vlan else {
        panic!("trunk group is a trunk: {:?}", trunk.vlan)
    };
    assert_eq!(allowed.to_string(), "1,10,20-29,100-110");
    assert_eq!(*native, VlanId::new(1));
    assert!(allowed.contains(105) && !allowed.contains(30));
    assert_eq!(
        sw.port_group("vgt").map(|g| &g.vlan),
        Some(&VlanMode::GuestTagging)
    );
    assert_eq!(
        sw.port_group("vgt").map(|g| g.security),
        Some(SecurityPolicy {
            promiscuous: Verdict::Accept,
            mac_changes: Verdict::Accept,
            forged_transmits: Verdict::Reject,
        })
    );
    // The file's own `default` group replaces the implicit one.
    assert_eq!(
        sw.port_groups
            .iter()
            .filter(|g| g.name == DEFAULT_PORT_GROUP)
            .count(),
        1
    );

    let vm0 = sw.port("vm0").expect("vm0");
    assert_eq!(
        vm0.kind,
        PortKind::VhostUser {
            socket: PathBuf::from("/run/vswitch/vhost0.sock"),
            mode: VhostMode::Server,
            queues: 1,
        }
    );
    assert_eq!(vm0.vlan, VlanMode::Access(VlanId::new(10).expect("10")));
    assert_eq!(vm0.mac, "52:54:00:00:00:01".parse().ok());
    assert_eq!(
        vm0.socket_access,
        Some(SocketAccess {
            owner: Some(Account {
                id: 64055,
                name: None
            }),
            group: kvm(),
            mode: 0o660
        })
    );
    let vm1 = sw.port("vm1").expect("vm1");
    assert_eq!(vm1.socket_access, None, "client mode: the VMM's socket");
    assert!(
        matches!(&vm1.kind, PortKind::VhostUser { socket, mode: VhostMode::Client, .. }
        if socket == Path::new("/var/lib/vms/vm1.sock"))
    );
    assert_eq!(vm1.vlan, trunk.vlan);
    let vm2 = sw.port("vm2").expect("vm2");
    assert_eq!(vm2.port_group, "vlan20");
    assert_eq!(vm2.vlan, VlanMode::Access(VlanId::new(30).expect("30")));
    assert_eq!(vm2.security.forged_transmits, Verdict::Accept);
    assert_eq!(vm2.security.mac_changes, Verdict::Reject);
    assert_eq!(sw.port("host0").map(|p| &p.kind), Some(&PortKind::Internal));
    assert_eq!(
        c.port("vm3").map(|(s, p)| (s.name.as_str(), &p.vlan)),
        Some(("sw0", &VlanMode::GuestTagging))
    );

    assert_eq!(sw.uplinks.len(), 3);
    assert_eq!(
        sw.uplink("eth2").map(|u| u.driver),
        Some(UplinkDriver::AfPacket)
    );
    let team = sw.team("team0").expect("team0");
    assert_eq!(team.policy, TeamPolicy::IpHash);
    assert_eq!(team.active, ["eth0", "eth1"]);
    assert_eq!(team.standby, ["eth2"]);
    assert!(team.unused.is_empty());
    assert!(team.failback && team.notify_switches);
    assert_eq!(team.failure_detection, FailureDetection::Link);
    assert_eq!(team.vlan, trunk.vlan);
    assert_eq!(sw.uplink("eth0").map(|u| &u.vlan), Some(&trunk.vlan));
    assert_eq!(sw.team_of("eth2").map(|t| t.name.as_str()), Some("team0"));

    let pf = &c.sriov[0];
    assert_eq!((pf.pf.as_str(), pf.num_vfs), ("enp1s0f0", 4));
    let vf = &pf.vfs[0];
    assert_eq!(vf.vlan, VlanId::new(10));
    assert!(!vf.trust && vf.spoof_check);
    assert_eq!((vf.min_tx_rate_mbps, vf.max_tx_rate_mbps), (0, 1000));
    assert_eq!((vf.qos, vf.vlan_protocol), (3, VfVlanProtocol::Dot1Q));
    assert_eq!(vf.link_state, Some(VfLinkState::Auto));
    assert!(vf.vfio);
    assert_eq!(
        vf.release_mac.map(|m| m.to_string()).as_deref(),
        Some("02:00:00:00:99:01")
    );

    // Parsing is deterministic, and the same text gives no diff.
    let again = parse_str_with(&blocks[1], "README.md", None, &TestHost).expect("valid");
    assert_eq!(c, again);
    assert!(diff(&c, &again).is_empty());
}

#[test]
fn defaults_and_overrides() {
    let c = ok("
        runtime:
          pmd-cores: [3, 1-2]
          idle: busy
          runtime-dir: /tmp/r
          control-socket: /tmp/ctl.sock
        switches:
          - name: sw0
            mac-table: { max-entries: 100 }
            port-groups:
              - name: g
                vlan: { trunk: [10], native: 99 }
                security: { promiscuous: true }
            uplinks:
              - name: eth0
              - name: eth1
                port-group: g
            teams:
              - name: t0
                active: [eth0]
            ports:
              - name: vm0
                port-group: g
                security: { promiscuous: reject, mac-changes: accept }
    ");
    assert_eq!(c.runtime.pmd_cores, [1, 2, 3]);
    assert_eq!(c.runtime.idle, IdlePolicy::Busy);
    assert_eq!(c.runtime.control_socket, Path::new("/tmp/ctl.sock"));
    let sw = &c.switches[0];
    assert_eq!(sw.mac_table.per_port_limit, 100, "clamped to max-entries");
    let g = sw.port_group("g").expect("g");
    // The native VLAN is carried even though the list does not name it.
    assert!(g.vlan.carries(99) && g.vlan.carries(10) && !g.vlan.carries(11));
    let vm0 = sw.port("vm0").expect("vm0");
    assert_eq!(
        vm0.security,
        SecurityPolicy {
            promiscuous: Verdict::Reject,
            mac_changes: Verdict::Accept,
            forged_transmits: Verdict::Reject
        }
    );
    assert_eq!(
        sw.uplink("eth0").map(|u| &u.vlan),
        Some(&VlanMode::uplink_default())
    );
    assert_eq!(sw.uplink("eth1").map(|u| &u.vlan), Some(&g.vlan));
    let t = sw.team("t0").expect("t0");
    assert_eq!(t.policy, TeamPolicy::PortId);
    assert_eq!(t.failure_detection, FailureDetection::Link);
    assert!(t.failback && t.notify_switches);
}

fn change_words(old: &str, new: &str) -> Vec<String> {
    diff(&ok(old), &ok(new))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn diff_identical_is_empty() {
    let d = default_config(Path::new("/run/vswitch")).expect("valid");
    assert!(diff(&d, &d.clone()).is_empty());
    // Spelled differently, same effective settings: no change.
    let a = "
        switches:
          - name: sw0
            ports:
              - name: vm0
    ";
    let b = "
        runtime: { runtime-dir: /run/vswitch, idle: adaptive }
        switches:
          - name: sw0
            mtu: 1500
            port-groups:
              - name: default
                vlan: 1
                security: { promiscuous: false, forged-transmits: reject }
            ports:
              - name: vm0
                type: vhost-user
                socket: /run/vswitch/vm0.sock
                mode: server
                queues: 1
    ";
    assert_eq!(change_words(a, b), Vec::<String>::new());
}

#[test]
fn diff_words() {
    let old = "
        runtime: { pmd-cores: [1] }
        switches:
          - name: sw0
            port-groups:
              - name: vlan10
                vlan: 10
              - name: vlan20
                vlan: 20
            ports:
              - name: vm7
                port-group: vlan10
              - name: vm8
                port-group: vlan10
              - name: vm9
                port-group: vlan20
              - name: old
            uplinks: [{ name: eth0 }, { name: eth1 }]
            teams:
              - name: team0
                active: [eth0, eth1]
    ";
    let new = "
        runtime: { pmd-cores: [1, 2] }
        switches:
          - name: sw0
            mtu: 9000
            port-groups:
              - name: vlan10
                vlan: 20
              - name: vlan20
                vlan: 20
            ports:
              - name: vm7
                port-group: vlan10
              - name: vm8
                port-group: vlan20
                mac: 52:54:00:00:00:08
                security: { promiscuous: accept }
              - name: vm9
                port-group: vlan20
                vlan: { trunk: [10, 20-29], native: 1 }
              - name: new
                socket: n.sock
            uplinks: [{ name: eth0 }, { name: eth1, driver: af-packet }]
            teams:
              - name: team0
                policy: ip-hash
                active: [eth0]
                standby: [eth1]
                failback: false
    ";
    let words = change_words(old, new);
    assert_eq!(
        words,
        [
            "runtime: PMD cores 1 -> 1,2 (needs restart)",
            "switch sw0: MTU 1500 -> 9000",
            "port vm7: VLAN 10 -> 20",
            "port vm8: port group vlan10 -> vlan20",
            "port vm8: VLAN 10 -> 20",
            "port vm8: promiscuous reject -> accept",
            "port vm8: MAC none -> 52:54:00:00:00:08",
            "port vm9: VLAN 20 -> trunk 1,10,20-29 native 1",
            "port old: removed from switch sw0",
            "port new: added to switch sw0 (vhost-user server /run/vswitch/n.sock (1 queue), VLAN 1, port group default)",
            "uplink eth1: driver af-xdp -> af-packet",
            "team0: policy port-id -> ip-hash",
            "team0: members active eth0, eth1 -> active eth0; standby eth1",
            "team0: failback on -> off",
        ]
    );
    let d = diff(&ok(old), &ok(new));
    assert_eq!(d.iter().filter(|c| c.needs_restart()).count(), 1);
}

#[test]
fn runtime_changes_need_a_restart() {
    let old = "
        switches:
          - name: sw0
    ";
    let new = "
        runtime: { idle: busy, pmd-cores: [3], control-socket: ctl.sock }
        switches:
          - name: sw0
    ";
    assert_eq!(
        change_words(old, new),
        [
            "runtime: PMD cores none (one unpinned thread) -> 3 (needs restart)",
            "runtime: idle policy adaptive -> busy (needs restart)",
            "runtime: control socket /run/vswitch/vswitchd.sock -> /run/vswitch/ctl.sock (needs restart)",
        ]
    );
    assert!(diff(&ok(old), &ok(new)).iter().all(Change::needs_restart));
}

#[test]
fn diff_switches_and_sriov() {
    let old = "
        switches:
          - name: sw0
            mac-table: { aging-seconds: 300 }
            ports: [{ name: a }]
          - name: gone
        sriov:
          - pf: p0
            num-vfs: 2
            vfs: [{ index: 0 }]
          - pf: p1
            num-vfs: 1
    ";
    let new = "
        switches:
          - name: sw0
            mac-table: { aging-seconds: 60 }
            ports: [{ name: a, socket: b.sock, mode: client }]
          - name: sw1
            ports: [{ name: c }]
        sriov:
          - pf: p0
            num-vfs: 4
            vfs: [{ index: 0, trust: true }, { index: 3, mac: 02:00:00:00:00:03 }]
          - pf: p2
            num-vfs: 1
    ";
    assert_eq!(
        change_words(old, new),
        [
            "switch sw0: MAC table aging 300 s -> 60 s",
            "port a: vhost-user server /run/vswitch/a.sock (1 queue) -> vhost-user client /run/vswitch/b.sock (1 queue) (port is re-created)",
            "switch gone: removed, with all its ports",
            "switch sw1: added (1 port, 0 uplinks, 0 teams)",
            "sriov p0: VFs 2 -> 4 (all VFs are re-created)",
            "sriov p0 VF 0: trust off -> on",
            "sriov p0 VF 3: configured (mac 02:00:00:00:00:03, vlan none, trust off, spoof-check on)",
            "sriov p1: no longer managed (configured VFs released, VF count left)",
            "sriov p2: added (1 VF, 0 configured)",
        ]
    );
}

#[test]
fn sriov_vf_settings_parse_and_diff() {
    let old = "
        switches:
          - name: sw0
            port-groups:
              - { name: v100, vlan: 100 }
        sriov:
          - pf: enp1s0
            num-vfs: 2
            vfs:
              - index: 0
                port-group: v100
                qos: 3
                link-state: enable
                vfio: true
                release-mac: 02:00:00:00:99:00
              - index: 1
                port-group: v100
                vlan-protocol: 802.1AD
    ";
    let c = ok(old);
    let vf = &c.sriov[0].vfs[0];
    assert_eq!(vf.vlan, VlanId::new(100));
    assert_eq!(vf.qos, 3);
    assert_eq!(vf.vlan_protocol, VfVlanProtocol::Dot1Q);
    assert_eq!(vf.link_state, Some(VfLinkState::Enable));
    assert!(vf.vfio);
    assert_eq!(vf.release_mac, "02:00:00:00:99:00".parse().ok());
    let vf1 = &c.sriov[0].vfs[1];
    assert_eq!(vf1.vlan_protocol, VfVlanProtocol::Dot1Ad);
    assert!(!vf1.vfio && vf1.link_state.is_none() && vf1.release_mac.is_none());
    assert_eq!(vf1.qos, 0);

    let new = "
        switches:
          - name: sw0
            port-groups:
              - { name: v100, vlan: 100 }
        sriov:
          - pf: enp1s0
            num-vfs: 2
            vfs:
              - index: 0
                port-group: v100
                qos: 5
                link-state: auto
              - index: 1
                port-group: v100
                vlan-protocol: 802.1ad
                vfio: true
                rate: { max-mbps: 100 }
    ";
    assert_eq!(
        change_words(old, new),
        [
            "sriov enp1s0 VF 0: qos 3 -> 5, link state enable -> auto, vfio on -> off, release MAC 02:00:00:00:99:00 -> none",
            "sriov enp1s0 VF 1: max rate 0 Mbit/s -> 100 Mbit/s, vfio off -> on",
        ]
    );
    let added = "
        switches:
          - name: sw0
            port-groups:
              - { name: v100, vlan: 100 }
        sriov:
          - pf: enp1s0
            num-vfs: 2
    ";
    assert_eq!(
        change_words(added, old),
        [
            "sriov enp1s0 VF 0: configured (mac none, vlan 100, trust off, spoof-check on, qos 3, link-state enable, vfio-pci, release-mac 02:00:00:00:99:00)",
            "sriov enp1s0 VF 1: configured (mac none, vlan 100, trust off, spoof-check on, 802.1ad)",
        ]
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn full_example() -> String {
        readme_yaml().swap_remove(1)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC*") {
            let _ = parse_str(&text, "fuzz.yaml");
        }

        #[test]
        fn never_panics_on_yamlish_text(text in "[a-z0-9:\\-\\[\\]{}, \n#'\"&*!|>]{0,200}") {
            let _ = parse_str(&text, "fuzz.yaml");
        }

        /// Byte-level edits of the full example: delete, insert or replace
        /// runs of characters. Errors must come with a position inside the file.
        #[test]
        fn never_panics_on_mutated_example(
            edits in proptest::collection::vec((any::<usize>(), 0usize..4, 0u8..3, "[ -~\n]{0,6}"), 1..6)
        ) {
            let mut text = full_example();
            for (pos, len, op, ins) in edits {
                let at = text.char_indices().map(|(i, _)| i).nth(pos % text.chars().count().max(1)).unwrap_or(0);
                let end = text[at..].char_indices().map(|(i, _)| at + i).nth(len).unwrap_or(text.len());
                match op {
                    0 => text.replace_range(at..end, ""),
                    1 => text.insert_str(at, &ins),
                    _ => text.replace_range(at..end, &ins),
                }
            }
            let lines = text.lines().count() as u64 + 1;
            if let Err(ConfigError::Invalid(diags)) = parse_str(&text, "m.yaml") {
                prop_assert!(!diags.is_empty());
                for d in diags {
                    prop_assert!(d.line <= lines, "{d} beyond {lines} lines");
                    prop_assert!(!d.message.is_empty());
                }
            }
        }
    }
}

#[test]
fn hostile_inputs_give_errors_not_hangs() {
    let deep = format!("switches: {}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(parse_str(&deep, "deep.yaml").is_err());
    let deep_map = format!("switches: {}{}", "{a: ".repeat(3000), "}".repeat(3000));
    assert!(parse_str(&deep_map, "deep.yaml").is_err());
    // Billion laughs: the alias budget stops it.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = (b'a' + i - 1) as char;
        let cur = (b'a' + i) as char;
        bomb.push_str(&format!(
            "{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    let start = std::time::Instant::now();
    assert!(parse_str(&bomb, "bomb.yaml").is_err());
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    // Non-ASCII and tabs.
    assert!(parse_str("switches:\n\t- name: sw0\n", "tab.yaml").is_err());
    let c = ok("
        switches:
          - name: commutateur-é
            ports: [{ name: vm-ü }]
    ");
    assert_eq!(c.switches[0].ports[0].name, "vm-ü");
}

#[test]
fn aliases_resolve_and_errors_point_at_the_use() {
    let c = ok("
        switches:
          - name: sw0
            port-groups:
              - name: g
                vlan: &v10 10
            ports:
              - name: vm0
                vlan: *v10
    ");
    assert_eq!(
        c.switches[0].ports[0].vlan,
        VlanMode::Access(VlanId::new(10).expect("10"))
    );
    assert_eq!(
        errors(
            "
            switches:
              - name: sw0
                mtu: &m 20
              - name: sw1
                mtu: *m
        "
        ),
        [
            "3:13: switches[0].mtu: 20 is out of range (68-9710)",
            "5:10: switches[1].mtu: 20 is out of range (68-9710)",
        ]
    );
}

/// A key indented one column short of its siblings is a syntax error, at
/// the key.
#[test]
fn bad_indentation() {
    let got = errors(
        "
        switches:
          - name: sw0
            ports:
              - name: vm0
               vlan: 10
    ",
    );
    assert_eq!(
        got,
        [
            "5:8: switches[0].ports[0].name: while parsing a block collection, did not find expected '-' indicator"
        ]
    );
}

/// A fixed host: users root (0) and qemu (64055), groups root (0) and
/// kvm (109); `ldap-down` cannot be looked up. Every interface exists
/// but those whose names start with `gone`; `nlfail` cannot be looked up.
/// SR-IOV: `igb0` is a PF with 7 VFs, `plain0` has no SR-IOV; other PFs
/// are not looked up.
struct TestHost;

impl Host for TestHost {
    fn uid(&self, name: &str) -> Result<Option<u32>, String> {
        match name {
            "root" => Ok(Some(0)),
            "qemu" => Ok(Some(64055)),
            "ldap-down" => Err("looking up user `ldap-down`: Connection refused".into()),
            _ => Ok(None),
        }
    }
    fn gid(&self, name: &str) -> Result<Option<u32>, String> {
        match name {
            "root" => Ok(Some(0)),
            "kvm" => Ok(Some(109)),
            _ => Ok(None),
        }
    }
    fn interface_exists(&self, name: &str) -> Result<Option<bool>, String> {
        match name {
            "nlfail" => Err("looking up interface `nlfail`: Too many open files".into()),
            n => Ok(Some(!n.starts_with("gone"))),
        }
    }
    fn sriov_pf(&self, name: &str) -> Result<PfLookup, String> {
        Ok(match name {
            "igb0" => PfLookup::TotalVfs(7),
            "plain0" => PfLookup::NotSriov,
            n if n.starts_with("gone") => PfLookup::Missing,
            _ => PfLookup::NotChecked,
        })
    }
}

/// A mistyped PF, a PF without SR-IOV and a count above what the PF
/// supports are errors at their keys, so a reload naming them is refused
/// before anything changes (issue 23: a typo released the real PF's VFs).
/// A wrong `num-vfs` is one error, not one more per VF; `num-vfs: 0` says
/// "no VFs".
#[test]
fn sriov_pfs_are_checked_against_the_host() {
    let errors = account_errors(
        "
        sriov:
          - pf: gone0x
            num-vfs: 2
          - pf: plain0
            num-vfs: 1
          - pf: igb0
            num-vfs: 8
          - pf: igb1
            num-vfs: 300
            vfs:
              - { index: 0, mac: 02:00:00:00:00:01 }
              - { index: 1, mac: 02:00:00:00:00:01 }
          - pf: igb2
            num-vfs: 0
            vfs:
              - { index: 0 }
        ",
    );
    assert_eq!(
        errors,
        [
            "2:9: sriov[0].pf: no network interface `gone0x` on this host (`ip link` lists them)",
            "4:9: sriov[1].pf: `plain0` is not an SR-IOV PF (its device has no sriov_totalvfs)",
            "7:14: sriov[2].num-vfs: 8 VFs asked, `igb0` supports at most 7",
            "9:14: sriov[3].num-vfs: 300 is out of range (0-256)",
            "12:26: sriov[3].vfs[1].mac: MAC 02:00:00:00:00:01 is already used by VF 0 of igb1 (line 11)",
            "16:18: sriov[4].vfs[0].index: VF index 0 is out of range: igb2 has num-vfs 0 (no VFs)",
        ]
    );
    // A count the PF supports is fine.
    assert!(with_accounts("sriov:\n  - pf: igb0\n    num-vfs: 7\n").is_ok());
}

#[test]
fn an_uplink_whose_interface_is_missing_is_refused_with_its_position() {
    let yaml = "
        switches:
          - name: sw0
            uplinks:
              - name: eth1
              - name: gone0
                driver: af-packet
              - name: nlfail
            teams:
              - name: bond0
                active: [eth1, gone0]
        ";
    assert_eq!(
        account_errors(yaml),
        [
            "5:15: switches[0].uplinks[1].name: no network interface `gone0` on this host \
             (uplinks are opened when the switch starts: create the interface first; \
             `ip link` lists them)",
            "7:15: switches[0].uplinks[2].name: looking up interface `nlfail`: Too many open files",
        ]
    );
    // Without a host to ask (`parse_str`), interfaces are not looked up.
    assert!(parse_str(&dedent(yaml), "t.yaml").is_ok());
}

fn with_accounts(yaml: &str) -> Result<Config, ConfigError> {
    parse_str_with(&dedent(yaml), "t.yaml", None, &TestHost)
}

fn account_errors(yaml: &str) -> Vec<String> {
    match with_accounts(yaml) {
        Ok(_) => panic!("expected errors for:\n{}", dedent(yaml)),
        Err(e) => e
            .to_string()
            .lines()
            .map(|l| l.strip_prefix("t.yaml:").unwrap_or(l).to_string())
            .collect(),
    }
}

fn kvm() -> Option<Account> {
    Some(Account {
        id: 109,
        name: Some("kvm".into()),
    })
}

#[test]
fn socket_access_defaults_and_overrides() {
    // Without any socket-* key: 0600, the daemon's user and group, on
    // server ports only.
    let d = default_config(Path::new("/run/vswitch")).expect("valid");
    for p in &d.switches[0].ports {
        assert_eq!(p.socket_access, Some(SocketAccess::default()), "{}", p.name);
    }
    assert_eq!(SocketAccess::default().mode, 0o600);

    let c = with_accounts(
        "
        switches:
          - name: sw0
            socket-group: kvm
            socket-mode: 0660         # plain or quoted, always octal
            ports:
              - name: a               # the switch's defaults
              - name: b
                socket-owner: qemu
                socket-mode: \"0600\"
              - name: c
                socket-owner: 64055
                socket-group: 0
                socket-mode: 0o640
              - name: d
                mode: client          # the VMM's socket: not ours
              - name: e
                type: internal
          - name: sw1
            ports:
              - name: f
                socket-mode: 660
        ",
    )
    .expect("valid");
    let access = |n: &str| c.port(n).and_then(|(_, p)| p.socket_access.clone());
    assert_eq!(
        access("a"),
        Some(SocketAccess {
            owner: None,
            group: kvm(),
            mode: 0o660
        })
    );
    assert_eq!(
        access("b"),
        Some(SocketAccess {
            owner: Some(Account {
                id: 64055,
                name: Some("qemu".into())
            }),
            group: kvm(),
            mode: 0o600
        })
    );
    assert_eq!(
        access("c"),
        Some(SocketAccess {
            owner: Some(Account {
                id: 64055,
                name: None
            }),
            group: Some(Account { id: 0, name: None }),
            mode: 0o640
        })
    );
    assert_eq!(access("d"), None);
    assert_eq!(access("e"), None);
    // Another switch's defaults do not leak.
    assert_eq!(
        access("f"),
        Some(SocketAccess {
            mode: 0o660,
            ..SocketAccess::default()
        })
    );
    assert_eq!(
        access("a").map(|a| a.to_string()).as_deref(),
        Some("mode 0660, owner default, group kvm (109)")
    );

    // Numeric ids need no account database.
    let n = parse(
        "
        switches:
          - name: sw0
            ports:
              - name: a
                socket-owner: 0
                socket-group: 109
    ",
    )
    .expect("numeric ids parse without a database");
    assert_eq!(
        n.switches[0].ports[0]
            .socket_access
            .as_ref()
            .and_then(|a| a.group.clone()),
        Some(Account {
            id: 109,
            name: None
        })
    );
}

#[test]
fn socket_access_errors_are_positioned() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown group",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    socket-group: kvmm
            ",
            &[
                "5:23: switches[0].ports[0].socket-group: unknown group `kvmm`: no such group on this host (use an existing group name or a numeric gid)",
            ],
        ),
        (
            "unknown user on the switch",
            "
            switches:
              - name: sw0
                socket-owner: libvirt-qemu
                ports:
                  - name: vm0
            ",
            &[
                "3:19: switches[0].socket-owner: unknown user `libvirt-qemu`: no such user on this host (use an existing user name or a numeric uid)",
            ],
        ),
        (
            "lookup failure",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    socket-owner: ldap-down
            ",
            &[
                "5:23: switches[0].ports[0].socket-owner: looking up user `ldap-down`: Connection refused",
            ],
        ),
        (
            "ids out of range, empty",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    socket-owner: 4294967295
                    socket-group: ''
            ",
            &[
                "5:23: switches[0].ports[0].socket-owner: 4294967295 is out of range for a uid (0-4294967294)",
                "6:23: switches[0].ports[0].socket-group: expected a group name or a numeric gid, found an empty value",
            ],
        ),
        (
            "bad modes",
            "
            switches:
              - name: sw0
                socket-mode: rw-rw----
                ports:
                  - name: a
                    socket-mode: 0669
                  - name: b
                    socket-mode: \"04660\"
                  - name: c
                    socket-mode: 0666
                  - name: d
                    socket-mode: 0o\n
            ",
            &[
                "3:18: switches[0].socket-mode: `rw-rw----` is not a mode: expected octal permission bits like \"0660\"",
                "6:22: switches[0].ports[0].socket-mode: `0669` is not a mode: expected octal permission bits like \"0660\"",
                "8:22: switches[0].ports[1].socket-mode: mode 04660 has bits outside 0777 (setuid, setgid and sticky mean nothing on a socket)",
                "10:22: switches[0].ports[2].socket-mode: mode 0666 lets every local user connect (write permission for others); give the VMM's group access instead: socket-group with a mode like \"0660\"",
                "12:22: switches[0].ports[3].socket-mode: `0o` is not a mode: expected octal permission bits like \"0660\"",
            ],
        ),
        (
            "client and internal ports have no socket of ours",
            "
            switches:
              - name: sw0
                ports:
                  - name: vm0
                    mode: client
                    socket-mode: 0660
                  - name: tap0
                    type: internal
                    socket-group: kvm
            ",
            &[
                "6:22: switches[0].ports[0].socket-mode: `socket-mode` applies to server-mode ports only: in client mode the VMM creates the socket and sets its permissions",
                "9:23: switches[0].ports[1].socket-group: internal (TAP) ports have no `socket-group`; remove it or use `type: vhost-user`",
            ],
        ),
    ];
    for (what, yaml, want) in cases {
        assert_eq!(account_errors(yaml), *want, "case: {what}");
    }

    // Without an account database (parse_str), a name is refused at its
    // position, with the way out.
    assert_eq!(
        errors(
            "
            switches:
              - name: sw0
                socket-group: kvm
            "
        ),
        [
            "3:19: switches[0].socket-group: cannot look up group `kvm` here (no account database); use a numeric gid"
        ]
    );
}

#[test]
fn socket_access_diff() {
    let old = "
        switches:
          - name: sw0
            ports:
              - name: vm0
              - name: vm1
              - name: vm2
                mode: client
    ";
    let new = "
        switches:
          - name: sw0
            socket-group: 109
            socket-mode: 0660
            ports:
              - name: vm0
              - name: vm1
                socket-owner: 64055
                socket-mode: 0600
              - name: vm2
                mode: client
    ";
    assert_eq!(
        change_words(old, new),
        [
            "port vm0: socket mode 0600 -> 0660, group default -> 109",
            "port vm1: socket owner default -> 64055, group default -> 109",
        ]
    );
    let c = ok(new);
    let d = diff(&ok(old), &c);
    assert!(
        d.iter()
            .all(|c| matches!(c, Change::PortSocketAccessChanged { .. }) && !c.needs_restart()),
        "{d:?}"
    );
    // A port re-created on another socket takes its access with it: one
    // change, not two.
    let moved = "
        switches:
          - name: sw0
            ports:
              - name: vm0
                socket: other.sock
                socket-mode: 0640
              - name: vm1
              - name: vm2
                mode: client
    ";
    assert_eq!(
        change_words(old, moved),
        [
            "port vm0: vhost-user server /run/vswitch/vm0.sock (1 queue) -> vhost-user server /run/vswitch/other.sock (1 queue) (port is re-created)"
        ]
    );
}

#[test]
fn metrics_listen_parses_defaults_and_is_off_when_absent() {
    let base = "
        switches:
          - name: sw0
    ";
    assert_eq!(ok(base).metrics, None);
    let c = ok("
        metrics: {}
        switches:
          - name: sw0
    ");
    assert_eq!(
        c.metrics.map(|m| m.listen.to_string()).as_deref(),
        Some(DEFAULT_METRICS_LISTEN)
    );
    for (text, want) in [
        ("10.0.0.1:9100", "10.0.0.1:9100"),
        ("\"[::1]:9477\"", "[::1]:9477"),
        ("0.0.0.0:80", "0.0.0.0:80"),
    ] {
        let c = ok(&format!(
            "
            metrics:
              listen: {text}
            switches:
              - name: sw0
            "
        ));
        assert_eq!(
            c.metrics.map(|m| m.listen.to_string()).as_deref(),
            Some(want)
        );
    }
}

#[test]
fn metrics_listen_errors_are_positioned() {
    let cases: &[(&str, &str)] = &[
        (
            "localhost:9477",
            "2:11: metrics.listen: `localhost:9477` is not an IP address and port like 127.0.0.1:9477 or [::1]:9477 (host names are not resolved; write an IP address)",
        ),
        (
            "127.0.0.1",
            "2:11: metrics.listen: `127.0.0.1` is not an IP address and port like 127.0.0.1:9477 or [::1]:9477 (the port is missing)",
        ),
        (
            "127.0.0.1:70000",
            "2:11: metrics.listen: `127.0.0.1:70000` is not an IP address and port like 127.0.0.1:9477 or [::1]:9477",
        ),
        (
            "\"::1:9477\"",
            "2:11: metrics.listen: `::1:9477` is not an IP address and port like 127.0.0.1:9477 or [::1]:9477 (an IPv6 address goes in brackets, the port after them: [::1]:9477)",
        ),
        (
            "127.0.0.1:0",
            "2:11: metrics.listen: `127.0.0.1:0`: port 0 is not a port to listen on; pick one, like 9477",
        ),
    ];
    for (value, want) in cases {
        let yaml = format!(
            "
            metrics:
              listen: {value}
            switches:
              - name: sw0
            "
        );
        assert_eq!(errors(&yaml), [want.to_string()], "{value}");
    }
    // An unknown key in the section is refused at its position too.
    let e = errors(
        "
        metrics:
          port: 9477
        switches:
          - name: sw0
        ",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("2:3:"), "{e:?}");
    assert!(e[0].contains("port"), "{e:?}");
}

#[test]
fn metrics_diff_words_and_live() {
    let off = "
        switches:
          - name: sw0
    ";
    let a = "
        metrics: { listen: 127.0.0.1:9477 }
        switches:
          - name: sw0
    ";
    let b = "
        metrics: { listen: \"[::1]:9500\" }
        switches:
          - name: sw0
    ";
    assert_eq!(
        change_words(a, b),
        ["metrics: listen 127.0.0.1:9477 -> [::1]:9500"]
    );
    assert_eq!(
        change_words(off, a),
        ["metrics: listen off -> 127.0.0.1:9477"]
    );
    assert_eq!(
        change_words(a, off),
        ["metrics: listen 127.0.0.1:9477 -> off"]
    );
    assert!(change_words(a, a).is_empty());
    assert!(!diff(&ok(a), &ok(b)).iter().any(Change::needs_restart));
}
