//! Helpers shared by the integration tests: frames and team set-up.
#![allow(dead_code)]

use teaming::{BUCKETS, Bucket, GuestPort, MacAddr, MemberIndex, Move, Team, TeamSpec, Timestamp};

pub fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

pub fn m(i: u8) -> MemberIndex {
    MemberIndex(i)
}

pub fn mac(last: u8) -> MacAddr {
    MacAddr([0x52, 0x54, 0, 0, 0, last])
}

/// A team with every member's link up at t=0, in member order.
pub fn up_team(spec: TeamSpec) -> Team {
    let mut team = Team::new(spec, t(0)).expect("valid spec");
    for i in 0..team.member_count() {
        team.set_link(m(i as u8), true, t(0))
            .expect("member exists");
    }
    team
}

pub fn set(team: &mut Team, name: &str, up: bool, at: u64) -> Vec<Move> {
    let i = team.member_index(name).expect("member exists");
    team.set_link(i, up, t(at)).expect("member exists")
}

/// The member of every bucket.
pub fn table(team: &Team) -> Vec<Option<MemberIndex>> {
    (0..BUCKETS)
        .map(|b| team.selector().member_for_bucket(Bucket(b as u8)))
        .collect()
}

/// Name of the member guest `port` uses (port-id / explicit failover).
pub fn port_member(team: &Team, port: u16) -> Option<&str> {
    team.select(GuestPort(port), &[])
        .and_then(|i| team.member_name(i))
}

/// Buckets carried by `name`.
pub fn load(team: &Team, name: &str) -> usize {
    let i = team.member_index(name).expect("member exists");
    table(team).iter().filter(|x| **x == Some(i)).count()
}

pub fn eth(dst: MacAddr, src: MacAddr, vlan: Option<u16>, ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some(v) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (IHL 5) with `proto`, fragment field `frag`, then `l4`.
pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    h.extend_from_slice(l4);
    h
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, l4: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src);
    h[24..40].copy_from_slice(&dst);
    h.extend_from_slice(l4);
    h
}

pub fn ports(sp: u16, dp: u16) -> Vec<u8> {
    let mut l4 = vec![0u8; 20];
    l4[0..2].copy_from_slice(&sp.to_be_bytes());
    l4[2..4].copy_from_slice(&dp.to_be_bytes());
    l4
}

/// A TCP/IPv4 frame from guest MAC 1 to MAC 2.
pub fn tcp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
    eth(
        mac(2),
        mac(1),
        None,
        0x0800,
        &ipv4(src, dst, 6, 0, &ports(sp, dp)),
    )
}
