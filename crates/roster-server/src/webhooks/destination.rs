//! Where webhooks may be delivered: public addresses only, unless the operator allows private
//! ones (`--webhook-allow-private-addresses`, for receivers on the same host or network).
//!
//! A webhook URL is chosen by whoever holds an admin key or the console, and the server
//! POSTs to it from inside the operator's network: without this, `http://169.254.169.254/…`
//! (cloud metadata), `http://127.0.0.1:5432/` or `http://10.0.0.7/` would be reachable, and the
//! delivery error shown back would tell which ports answer. The check is made twice: when a
//! webhook is registered (an address literal in the URL), and when it is delivered, on every
//! address the host name resolves to at that moment (a name that resolved to a public address
//! when registered may point inward later).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The refusal shown when a destination is not allowed: it names no address, so it cannot be
/// used to map the network.
pub const NOT_ALLOWED: &str = "the webhook's host is a private, loopback or link-local address, \
     which this server does not deliver to (--webhook-allow-private-addresses allows it)";

/// Whether `ip` is on the public internet: not loopback, private (RFC 1918, unique local),
/// link-local (cloud metadata lives there), carrier-grade NAT, unspecified, multicast,
/// documentation or benchmarking ranges, or an IPv4 address mapped into IPv6 that is one.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10, carrier-grade NAT
        || (a == 198 && (b == 18 || b == 19)) // 198.18.0.0/15, benchmarking
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // fc00::/7, unique local
        || (first & 0xffc0) == 0xfe80 // fe80::/10, link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // 2001:db8::/32, documentation
}

/// Whether a URL's host may be registered: address literals must be public and `localhost`
/// is refused unless `allow_private`; other names pass (checked when delivered).
#[must_use]
pub fn host_allowed(url: &reqwest::Url, allow_private: bool) -> bool {
    allow_private
        || (literal_allowed(url, false)
            && !url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case("localhost")))
}

/// Whether a URL's host, when it is an address literal (which no resolver sees), may be
/// connected to; names are left to [`PublicOnly`].
#[must_use]
pub fn literal_allowed(url: &reqwest::Url, allow_private: bool) -> bool {
    if allow_private {
        return true;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    literal.parse::<IpAddr>().map_or(true, is_public)
}

/// A DNS resolver for the delivery client that keeps only public addresses, so a connection
/// to a private one is never opened, whatever the name resolves to when it is delivered.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(NOT_ALLOWED.into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn registration_refuses_inward_literals_only() {
        let ok = |u: &str, allow| host_allowed(&reqwest::Url::parse(u).unwrap(), allow);
        assert!(!ok("http://127.0.0.1:9/x", false));
        assert!(!ok("http://[::1]/x", false));
        assert!(!ok("http://169.254.169.254/latest/meta-data", false));
        assert!(!ok("http://localhost:8080/", false));
        assert!(ok("http://127.0.0.1:9/x", true));
        assert!(ok("https://app.example.com/hook", false));
        assert!(ok("https://93.184.215.14/hook", false));
    }
}
