//! The client address a request is limited by (API.md, "Abuse and slow clients"): the peer's,
//! or, when the peer is one of `rate_limit.trusted_proxies`, the address its `X-Forwarded-For`
//! names: the right-most entry that is not itself a trusted proxy (entries to its left were
//! written by the client and prove nothing).

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use ipnet::IpNet;

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: &[IpNet]) -> Self {
        Self(networks.to_vec())
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client address of `request` (`None`: no peer address, as in some unit tests).
    pub fn client_of(&self, request: &ServiceRequest) -> Option<IpAddr> {
        let peer = canonical(request.peer_addr()?.ip());
        if !self.contains(peer) {
            return Some(peer);
        }
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        Some(self.client_from_forwarded(peer, &forwarded))
    }

    /// The right-most forwarded address that is not a trusted proxy; a malformed entry ends the
    /// walk (the address that wrote it is the client as far as we can tell).
    fn client_from_forwarded(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            if !self.contains(client) {
                break;
            }
            match entry.parse::<IpAddr>() {
                Ok(address) => client = canonical(address),
                Err(_) => break,
            }
        }
        client
    }
}

/// An IPv4 address carried in IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(&list.iter().map(|n| n.parse().unwrap()).collect::<Vec<_>>())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The proxy appended the address it saw; what the client wrote to the left is ignored.
        assert_eq!(
            trusted.client_from_forwarded(ip("10.0.0.2"), &["1.1.1.1", "203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Two trusted hops.
        assert_eq!(
            trusted.client_from_forwarded(ip("10.0.0.2"), &["203.0.113.7", "10.9.9.9"]),
            ip("203.0.113.7")
        );
        // No header: the proxy itself.
        assert_eq!(
            trusted.client_from_forwarded(ip("10.0.0.2"), &[]),
            ip("10.0.0.2")
        );
        assert_eq!(
            trusted.client_from_forwarded(ip("10.0.0.2"), &["junk"]),
            ip("10.0.0.2")
        );
        assert!(trusted.contains(ip("::ffff:10.1.2.3")));
        assert!(!trusted.contains(ip("127.0.0.1")));
    }
}
