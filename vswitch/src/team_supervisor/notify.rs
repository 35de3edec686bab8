//! Announcements: the guests a team's members carry, and the RARP (and
//! GARP) frames that tell the physical switches where a moved guest is.

use std::collections::BTreeSet;

use dataplane::PortId;
use dataplane::mac_table::MacTableRow;
use dataplane::vlan::Egress;
use teaming::{GuestAddr, GuestPort, Move, Vlan};

use super::{Outgoing, TeamRuntime};

impl TeamRuntime {
    /// The guests on this switch that `rows` (the MAC table) shows, as the
    /// notify plan needs them: every MAC on a port that is not an uplink or
    /// team, in a VLAN the team carries, tagged as the team sends it.
    pub fn guests(&self, rows: &[MacTableRow], uplinks: &BTreeSet<PortId>) -> Vec<GuestAddr> {
        rows.iter()
            .filter(|r| !uplinks.contains(&r.port) && r.port != self.port)
            .filter_map(|r| {
                let vlan = match self.vlan.egress(r.vid)? {
                    Egress::Untagged => None,
                    Egress::Tagged => Some(Vlan::new(r.vid)?),
                };
                Some(GuestAddr {
                    port: GuestPort(r.port.0),
                    mac: r.mac,
                    vlan,
                    ipv4: r.ipv4,
                })
            })
            .collect()
    }

    /// The RARP/GARP frames that announce the guests whose traffic `moves`
    /// moved, each out of its new member (none with notify-switches off).
    pub fn announcements(&mut self, moves: &[Move], guests: &[GuestAddr]) -> Vec<Outgoing> {
        if !self.notify || moves.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for a in self.team.announcements(moves, guests) {
            let Some(member) = self.members.get(a.member.get()) else {
                continue;
            };
            for frame in a.frames() {
                out.push(Outgoing {
                    member: member.clone(),
                    frame,
                });
            }
        }
        self.announcements_sent += out.len() as u64;
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dataplane::PortId;
    use dataplane::mac_table::MacTableRow;
    use teaming::{GuestPort, MemberIndex, Timestamp};

    use super::super::testing::{FakeIo, cfg, row, runtime};
    use super::super::{Outgoing, supervise};

    #[test]
    fn a_guest_whose_address_is_known_is_announced_by_rarp_and_gratuitous_arp() {
        let c = cfg(config::TeamPolicy::PortId, true, true);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth0".into(), true);
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::from([PortId(9)]);
        let table = vec![
            MacTableRow {
                ipv4: Some(std::net::Ipv4Addr::new(10, 0, 0, 7)),
                ..row(1, 1, 1)
            },
            row(1, 2, 2),
        ];
        let mut rows = || table.clone();
        let out = supervise(
            &mut rt,
            &mut io,
            &mut rows,
            &uplinks,
            Timestamp::from_millis(0),
        );
        let of =
            |last: u8| -> Vec<&Outgoing> { out.iter().filter(|o| o.frame[11] == last).collect() };
        let one = of(1);
        assert_eq!(
            one.len(),
            2,
            "RARP and GARP for the guest with an address: {out:?}"
        );
        assert_eq!(&one[0].frame[12..14], &[0x80, 0x35], "RARP first");
        let garp = &one[1].frame;
        assert_eq!(&garp[12..14], &[0x08, 0x06], "then ARP");
        assert_eq!(&garp[..6], &[0xff; 6], "broadcast");
        assert_eq!(&garp[28..32], &[10, 0, 0, 7], "sender address");
        assert_eq!(&garp[38..42], &[10, 0, 0, 7], "target address = sender");
        assert_eq!(one[0].member, one[1].member, "out of the same member");
        assert_eq!(of(2).len(), 1, "RARP only without an address");
        // team show's guest lines carry the address.
        let st = rt.show(&table, &uplinks, &|_| None, Timestamp::from_millis(0));
        let ip = |last: u8| {
            st.guests
                .iter()
                .find(|g| g.mac == format!("52:54:00:00:00:0{last}"))
                .map(|g| g.ipv4.clone())
        };
        assert_eq!(ip(1), Some(Some("10.0.0.7".to_string())));
        assert_eq!(ip(2), Some(None));
    }

    #[test]
    fn failover_publishes_and_announces_only_the_moved_guests_out_of_the_new_member() {
        let c = cfg(config::TeamPolicy::PortId, true, true);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth0".into(), true);
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::from([PortId(9)]);
        // Guests on ports 1..=4, VLAN 1 (native, untagged) and 20 (tagged).
        let table = vec![
            row(1, 1, 1),
            row(1, 2, 2),
            row(20, 3, 3),
            row(1, 4, 4),
            row(1, 5, 9),
        ];
        let mut rows = || table.clone();
        let t = Timestamp::from_millis;
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(0));
        let sel = rt.shared.selector();
        let on = |p: u16| sel.member_for_bucket(teaming::port_bucket(GuestPort(p)));
        // Links coming up give every guest a member: each is announced
        // once, out of it (a restarted switch re-teaches the network); the
        // team's own port (9) is no guest.
        assert_eq!(out.len(), 4, "{out:?}");
        for o in &out {
            let port = u16::from(o.frame[11]);
            let want = on(port).map(|m| format!("eth{}", m.0));
            assert_eq!(Some(o.member.clone()), want, "guest {port}");
        }
        let on_eth0: Vec<u16> = (1..=4).filter(|&p| on(p) == Some(MemberIndex(0))).collect();
        assert!(
            !on_eth0.is_empty() && on_eth0.len() < 4,
            "guests spread: {on_eth0:?}"
        );

        io.links.insert("eth0".into(), false);
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(1500));
        // Exactly the eth0 guests are announced, each once, out of eth1.
        assert_eq!(out.len(), on_eth0.len(), "{out:?}");
        assert!(out.iter().all(|o| o.member == "eth1"), "{out:?}");
        let macs: BTreeSet<u8> = out.iter().map(|o| o.frame[11]).collect();
        let want: BTreeSet<u8> = on_eth0.iter().map(|&p| p as u8).collect();
        assert_eq!(macs, want);
        for o in &out {
            let tagged = o.frame[12..14] == [0x81, 0x00];
            assert_eq!(tagged, o.frame[11] == 3, "only the VLAN 20 guest is tagged");
            let ty = if tagged {
                &o.frame[16..18]
            } else {
                &o.frame[12..14]
            };
            assert_eq!(ty, &[0x80, 0x35], "RARP");
        }
        assert!(rt.shared.selector().designated_receiver() == Some(MemberIndex(1)));
        let ev: Vec<String> = rt.events.iter().map(|(_, w)| w.clone()).collect();
        assert!(ev.iter().any(|e| e == "eth0 link down"), "{ev:?}");
        assert!(
            ev.iter()
                .any(|e| e.starts_with("moved: ") && e.contains("eth0 -> eth1")),
            "{ev:?}"
        );

        // Failback: they come home, announced out of eth0.
        io.links.insert("eth0".into(), true);
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(3000));
        assert_eq!(out.len(), on_eth0.len());
        assert!(out.iter().all(|o| o.member == "eth0"));
    }
}
