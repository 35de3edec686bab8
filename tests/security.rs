//! Port security end to end, with DPDK testpmd as the guests: each guest
//! is a virtio-user port on the switch, paired in testpmd (io forwarding)
//! with a `net_pcap` port whose input file holds hand-made frames, so the
//! guest transmits exactly those frames (forged sources, 802.1Q tags,
//! double tags) and whatever the switch delivers to it is counted.
//!
//! VMware semantics, the defaults (all three rejected), on access VLAN 10:
//! - forged transmits: a frame whose source is not the port's `mac:` is
//!   dropped (`forged_transmit`);
//! - MAC changes: a guest allowed to send from another MAC (forged
//!   transmits accepted) does not get that MAC learned, nor receive
//!   frames sent to it;
//! - promiscuous (rejected): a guest receives unicast only for its own
//!   MAC, never another guest's or an unknown one (testpmd asks for
//!   promiscuous mode; virtio-user cannot, and the switch decides anyway);
//! - VLAN hopping: a tagged frame (`vlan_tagged_on_access`) or a
//!   double-tagged one behind a priority tag (`vlan_double_tagged`) never
//!   reaches VLAN 20.
//!
//! Needs root and `dpdk-testpmd` with its pcap driver (Debian dpdk-dev).

mod support;

use std::collections::BTreeMap;

use support::frontend::*;
use support::serial;
use vswitch::protocol::{MacTableReply, Request};

const G: &str = "02:00:00:00:00:47";
const M: &str = "02:00:00:00:00:4d";
const O: &str = "02:00:00:00:00:4f";
/// The MAC `m` changes to.
const M2: &str = "02:00:00:00:00:e2";
/// A MAC nobody has.
const FORGED: &str = "02:00:00:00:00:99";
const UNKNOWN: &str = "02:00:00:00:00:77";

const CONFIG: &str = "switches:
  - name: sw0
    port-groups:
      - name: v10
        vlan: 10
      - name: v20
        vlan: 20
    ports:
      - name: g          # default security: everything rejected
        port-group: v10
        mac: 02:00:00:00:00:47
      - name: m          # may send from other MACs, but not change its own
        port-group: v10
        mac: 02:00:00:00:00:4d
        security: { forged-transmits: accept }
      - name: o
        port-group: v10
        mac: 02:00:00:00:00:4f
      - name: w          # VLAN 20: the target of the hopping attempts
        port-group: v20
";

const TPID_8021Q: u16 = 0x8100;
const TPID_8021AD: u16 = 0x88a8;

fn n_of(n: usize, f: Vec<u8>) -> Vec<Vec<u8>> {
    vec![f; n]
}

#[test]
fn forged_transmits_mac_changes_promiscuous_and_vlan_hopping_are_blocked() {
    require_testpmd();
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path(), CONFIG);
    let bc = [0xff; 6];
    let (g, m, o) = (mac(G), mac(M), mac(O));

    // What each guest sends.
    let from_g: Vec<Vec<u8>> = [
        n_of(5, eth_frame(o, mac(FORGED))),
        n_of(3, tagged_frame(bc, g, &[(TPID_8021Q, 20)])),
        n_of(3, tagged_frame(bc, g, &[(TPID_8021Q, 0), (TPID_8021Q, 20)])),
        n_of(
            3,
            tagged_frame(bc, g, &[(TPID_8021Q, 10), (TPID_8021Q, 20)]),
        ),
        n_of(
            2,
            tagged_frame(bc, g, &[(TPID_8021AD, 20), (TPID_8021Q, 20)]),
        ),
        n_of(4, eth_frame(o, g)),
    ]
    .concat();
    let from_m: Vec<Vec<u8>> = [n_of(3, eth_frame(o, mac(M2))), n_of(2, eth_frame(o, m))].concat();
    let from_o: Vec<Vec<u8>> = [
        n_of(4, eth_frame(mac(M2), o)),
        n_of(4, eth_frame(mac(UNKNOWN), o)),
        n_of(2, eth_frame(g, o)),
        n_of(2, eth_frame(m, o)),
    ]
    .concat();
    let mut vdevs = Vec::new();
    for (i, (name, frames, own)) in [("g", &from_g, G), ("m", &from_m, M), ("o", &from_o, O)]
        .into_iter()
        .enumerate()
    {
        let input = dir.path().join(format!("{name}-in.pcap"));
        write_pcap(&input, frames);
        vdevs.push(format!(
            "net_pcap{i},rx_pcap={},tx_pcap={}",
            input.display(),
            dir.path().join(format!("{name}-out.pcap")).display()
        ));
        vdevs.push(format!(
            "net_virtio_user{i},path={},mac={own}",
            d.socket(name).display()
        ));
    }
    // Ports: 0 pcap-g, 1 g, 2 pcap-m, 3 m, 4 pcap-o, 5 o; paired: a pcap
    // port's frames go out of its guest, what the guest receives goes to
    // the pcap port's output file.
    let mut pmd = Testpmd::start_vdevs(
        &vdevs,
        // `start` would otherwise drain (and lose) the pcap input.
        &["--no-flush-rx".to_string()],
        "paired",
        "security",
    );
    pmd.run("set fwd io", None);

    // Phase 1: g and m send (o is not polled yet: what reaches it waits
    // in its ring).
    pmd.run("set portlist 0,1,2,3", None);
    pmd.run("start", None);
    let (ng, nm, no) = (
        from_g.len() as u64,
        from_m.len() as u64,
        from_o.len() as u64,
    );
    pmd.wait_stats("g and m send", &[ng, 0, nm, 0, 0, 0], &[0, ng, 0, nm, 0, 0]);
    pmd.run("stop", Some("Done."));
    // Phase 2: o sends and everyone receives.
    pmd.run("set portlist 0,1,2,3,4,5", None);
    pmd.run("start", None);
    // g gets o's 2 frames to G; m gets o's 2 to M; o gets g's 4 good
    // frames and m's 5 (3 from its changed MAC, forged transmits being
    // accepted on m).
    let s = pmd.wait_stats("o sends", &[ng, 2, nm, 2, no, 9], &[2, ng, 2, nm, 9, no]);
    pmd.run("stop", Some("Done."));
    pmd.quit();
    for p in &s {
        assert_eq!((p.rx_missed, p.rx_errors, p.tx_errors), (0, 0, 0), "{s:?}");
    }

    let ports: BTreeMap<String, _> = d.stats().into_iter().map(|p| (p.name.clone(), p)).collect();
    for (name, p) in &ports {
        println!(
            "{name}: rx {} tx {} tx_dropped {} drops {:?}",
            p.rx_packets, p.tx_packets, p.tx_dropped, p.drops
        );
    }
    let drops = |port: &str| -> BTreeMap<String, u64> { ports[port].drops.clone() };
    let want_g: BTreeMap<String, u64> = [
        ("forged_transmit", 5),
        ("vlan_tagged_on_access", 3 + 3 + 2),
        ("vlan_double_tagged", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(drops("g"), want_g, "g's drops by reason");
    assert_eq!(ports["g"].rx_packets, ng);
    assert_eq!(ports["g"].tx_packets, 2, "g receives only its own MAC");
    // m's changed MAC was never learned: o's frames to it and to an
    // unknown MAC found no port (g and m receive only their own MACs,
    // promiscuous or not).
    assert_eq!(
        drops("o"),
        BTreeMap::from([("no_destination".to_string(), 8)]),
        "o's drops by reason"
    );
    assert!(drops("m").is_empty(), "{:?}", drops("m"));
    assert_eq!(ports["m"].tx_packets, 2, "m receives only its assigned MAC");
    // Nothing crossed into VLAN 20.
    assert_eq!(
        (ports["w"].tx_packets, ports["w"].tx_dropped),
        (0, 0),
        "w (VLAN 20)"
    );

    let v = vswitch::client::request(&d.dir.join("vswitchd.sock"), &Request::MacTable)
        .expect("mac table");
    let table: MacTableReply = serde_json::from_value(v).expect("mac table reply");
    let learned: BTreeMap<String, (u16, String)> = table
        .switches
        .iter()
        .flat_map(|s| &s.entries)
        .map(|e| (e.mac.to_lowercase(), (e.vlan, e.port.clone())))
        .collect();
    println!("MAC table: {learned:?}");
    for (mac, port) in [(G, "g"), (M, "m"), (O, "o")] {
        assert_eq!(
            learned.get(mac),
            Some(&(10, port.to_string())),
            "{learned:?}"
        );
    }
    for mac in [M2, FORGED] {
        assert!(!learned.contains_key(mac), "{mac} learned: {learned:?}");
    }
}
