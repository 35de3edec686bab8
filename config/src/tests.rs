use super::*;
#[test]
fn scratch() {
    for y in [
        "",
        "~",
        "hello",
        "switches: [\n",
        "switches:\n  - name: sw0\n    nmae: x\n",
        "switches:\n  - name: sw0\n    mtu: big\n",
        "switches:\n  - name: sw0\n    mtu: 70000\n    ports:\n      - name: vm0\n        vlan: 4095\n      - name: vm1\n        vlan: { trunk: [10, 29-20, 5000], native: 0 }\n      - name: vm0\n        port-group: vlan1O\n        mac: 01:00:5e:00:00:01\n",
        "switches:\n  - name: sw0\n    port-groups:\n      - name: vlan10\n        vlan: 10\n    ports:\n      - name: vm0\n        port-group: vlan1O\n    uplinks:\n      - name: eth0\n    teams:\n      - name: t0\n        active: [eth0, eth0, eth1]\n      - name: t1\n        standby: [eth0]\n",
        "switches:\n  - name: sw0\n    teams:\n      - name: t0\n        failback: yes\n",
        "switches:\n  - name: sw0\n    teams:\n      - name: t0\n        failback: maybe\n",
        "switches:\n  - name: sw0\n    ports:\n      - name: a\n        queues: 1\n        queues: 2\n",
        "switches:\n  - mtu: 1500\n",
        "runtime:\n  pmd-cores: [1, 2-4, 3, 9-8]\n",
    ] {
        println!("---- {y:?}");
        match parse_str(y, "t.yaml") {
            Ok(c) => println!("OK {:?}", c.switches.len()),
            Err(e) => println!("{e}"),
        }
    }
    println!("{:#?}", default_config(Path::new("/tmp/x")));
}
