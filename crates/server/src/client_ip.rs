//! Whose request is it? The address every per-address limit is keyed by (P9). Behind a reverse
//! proxy every connection comes from the proxy, so for peers in the configured trusted set the
//! client is taken from `X-Forwarded-For` — the rightmost address that is not itself a trusted
//! proxy (entries further left are the client's own word). IPv6 clients are keyed by their
//! prefix (a /64 by default): one subscriber gets a whole /64 for free.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct ClientIp {
    trusted: Vec<IpNet>,
    v6_prefix: u8,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientIpError {
    #[error("not an address or network: {0}")]
    BadNet(String),
    #[error("an IPv6 prefix is 0 to 128 bits")]
    BadPrefix,
}

impl ClientIp {
    /// `trusted`: addresses or networks (`10.0.0.0/8`, `::1`); `v6_prefix`: bits of an IPv6
    /// address that name one client.
    pub fn new(trusted: &[String], v6_prefix: u8) -> Result<Self, ClientIpError> {
        if v6_prefix > 128 {
            return Err(ClientIpError::BadPrefix);
        }
        let trusted = trusted
            .iter()
            .map(|t| {
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| ClientIpError::BadNet(t.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { trusted, v6_prefix })
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// The key for `peer`'s request, given its `X-Forwarded-For` header (if any).
    pub fn key(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let mut client = canonical(peer);
        if self.is_trusted(client) {
            let hops = forwarded_for.unwrap_or("").rsplit(',');
            for hop in hops {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) => {
                        client = canonical(ip);
                        if !self.is_trusted(client) {
                            break;
                        }
                    }
                    // Garbage in the header: stop at the last address a trusted hop vouched for.
                    Err(_) => break,
                }
            }
        }
        self.masked(client)
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let mask = match self.v6_prefix {
                    0 => 0,
                    p => u128::MAX << (128 - u32::from(p)),
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        }
    }
}

/// An IPv4 address that arrived mapped into IPv6 counts as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let c = ClientIp::new(&["127.0.0.1".into(), "10.0.0.0/8".into()], 64).unwrap();
        // From the proxy: the client it names.
        assert_eq!(
            c.key(ip("127.0.0.1"), Some("203.0.113.7")),
            ip("203.0.113.7")
        );
        // A chain of trusted proxies: the rightmost untrusted hop; the client's own claims to the
        // left of it are ignored.
        assert_eq!(
            c.key(ip("127.0.0.1"), Some("1.1.1.1, 203.0.113.7, 10.1.2.3")),
            ip("203.0.113.7")
        );
        // From anyone else the header is the sender's word: ignored.
        assert_eq!(
            c.key(ip("198.51.100.9"), Some("203.0.113.7")),
            ip("198.51.100.9")
        );
        // No header, or garbage: the last trusted hop.
        assert_eq!(c.key(ip("127.0.0.1"), None), ip("127.0.0.1"));
        assert_eq!(c.key(ip("127.0.0.1"), Some("bogus")), ip("127.0.0.1"));
        assert_eq!(
            c.key(ip("::ffff:127.0.0.1"), Some("203.0.113.8")),
            ip("203.0.113.8")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_prefix() {
        let c = ClientIp::new(&[], 64).unwrap();
        assert_eq!(
            c.key(ip("2001:db8:1:2:aaaa::1"), None),
            c.key(ip("2001:db8:1:2:ffff::9"), None)
        );
        assert_ne!(
            c.key(ip("2001:db8:1:2::1"), None),
            c.key(ip("2001:db8:1:3::1"), None)
        );
        let exact = ClientIp::new(&[], 128).unwrap();
        assert_eq!(exact.key(ip("2001:db8::1"), None), ip("2001:db8::1"));
        assert!(ClientIp::new(&["not-a-net".into()], 64).is_err());
        assert!(ClientIp::new(&[], 129).is_err());
    }
}
