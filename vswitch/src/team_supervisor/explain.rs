//! `team explain`: the frame a described flow would be.

use dataplane::MacAddr;

use crate::protocol;

/// A frame with the fields of `flow`, for `team explain`: Ethernet,
/// then IPv4 or IPv6 when addresses are given, then the TCP/UDP ports.
/// `port_mac` is the sending port's configured MAC (the default source).
pub fn flow_frame(flow: &protocol::TeamFlow, port_mac: Option<MacAddr>) -> Result<Vec<u8>, String> {
    let mac = |s: &Option<String>, default: MacAddr, what: &str| -> Result<MacAddr, String> {
        match s {
            None => Ok(default),
            Some(t) => t
                .parse::<MacAddr>()
                .map_err(|_| format!("{what} {t:?} is not a MAC address")),
        }
    };
    let src = mac(
        &flow.src_mac,
        port_mac.unwrap_or(MacAddr([2, 0, 0, 0, 0, 1])),
        "source MAC",
    )?;
    let dst = mac(
        &flow.dst_mac,
        MacAddr([2, 0, 0, 0, 0, 2]),
        "destination MAC",
    )?;
    let ip = |s: &Option<String>, what: &str| -> Result<Option<std::net::IpAddr>, String> {
        s.as_deref()
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("{what} {t:?} is not an IP address"))
            })
            .transpose()
    };
    let (sip, dip) = (
        ip(&flow.src_ip, "source IP")?,
        ip(&flow.dst_ip, "destination IP")?,
    );
    let proto = match flow.proto.as_deref() {
        None => None,
        Some("tcp") => Some(6u8),
        Some("udp") => Some(17u8),
        Some(other) => return Err(format!("protocol {other:?}: use tcp or udp")),
    };
    let mut l4 = vec![0u8; 8];
    l4[0..2].copy_from_slice(&flow.src_port.unwrap_or(0).to_be_bytes());
    l4[2..4].copy_from_slice(&flow.dst_port.unwrap_or(0).to_be_bytes());
    let mut f = Vec::with_capacity(96);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    match (sip, dip) {
        (None, None) => {
            // A non-IP frame (IEEE local experimental ethertype 2).
            f.extend_from_slice(&[0x88, 0xb6]);
            f.resize(60, 0);
        }
        (Some(std::net::IpAddr::V4(a)), Some(std::net::IpAddr::V4(b))) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&(20u16 + 8).to_be_bytes());
            h[8] = 64;
            h[9] = proto.unwrap_or(253);
            h[12..16].copy_from_slice(&a.octets());
            h[16..20].copy_from_slice(&b.octets());
            f.extend_from_slice(&h);
            f.extend_from_slice(&l4);
        }
        (Some(std::net::IpAddr::V6(a)), Some(std::net::IpAddr::V6(b))) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&8u16.to_be_bytes());
            h[6] = proto.unwrap_or(253);
            h[7] = 64;
            h[8..24].copy_from_slice(&a.octets());
            h[24..40].copy_from_slice(&b.octets());
            f.extend_from_slice(&h);
            f.extend_from_slice(&l4);
        }
        _ => return Err("give both source and destination IP, of one family".to_string()),
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_frames_parse_back_to_the_fields_given() {
        let flow = protocol::TeamFlow {
            port: "vm0".into(),
            src_ip: Some("10.0.0.1".into()),
            dst_ip: Some("10.0.1.2".into()),
            proto: Some("tcp".into()),
            src_port: Some(40000),
            dst_port: Some(5201),
            ..Default::default()
        };
        let f = flow_frame(&flow, Some(MacAddr([0x52, 0x54, 0, 0, 0, 7]))).expect("valid");
        let key = teaming::parse_flow_key(&f);
        assert_eq!(key.src_mac, MacAddr([0x52, 0x54, 0, 0, 0, 7]));
        assert_eq!(key.ports, Some((40000, 5201)));
        assert_eq!(key.protocol, Some(6));
        let v6 = protocol::TeamFlow {
            port: "vm0".into(),
            src_ip: Some("2001:db8::1".into()),
            dst_ip: Some("2001:db8::2".into()),
            ..Default::default()
        };
        assert_eq!(flow_frame(&v6, None).expect("valid").len(), 14 + 40 + 8);
        for (bad, want) in [
            (
                protocol::TeamFlow {
                    src_ip: Some("10.0.0.1".into()),
                    ..Default::default()
                },
                "both",
            ),
            (
                protocol::TeamFlow {
                    src_ip: Some("x".into()),
                    dst_ip: Some("10.0.0.1".into()),
                    ..Default::default()
                },
                "not an IP",
            ),
            (
                protocol::TeamFlow {
                    src_mac: Some("zz".into()),
                    ..Default::default()
                },
                "not a MAC",
            ),
            (
                protocol::TeamFlow {
                    src_ip: Some("10.0.0.1".into()),
                    dst_ip: Some("10.0.0.2".into()),
                    proto: Some("sctp".into()),
                    ..Default::default()
                },
                "tcp or udp",
            ),
        ] {
            let e = flow_frame(&bad, None).expect_err("invalid");
            assert!(e.contains(want), "{e}");
        }
    }
}
