//! The guard against server-side request forgery: a webhook URL is the one place where a user
//! tells the notifier where to connect, so without it any user could make the notifier post
//! into the internal network (a metadata service, a database's HTTP port, the admin API of a
//! broker). Hosts that are, or resolve to, an internal address are refused, at registration and
//! again at each delivery after DNS resolution: a name may resolve elsewhere later.
//!
//! At delivery the check sits in the HTTP client's resolver ([`GuardedResolver`]), so the
//! addresses checked are the very ones connected to: no second lookup a rebinding DNS server
//! could answer differently.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use thiserror::Error;

/// A host the guard refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refused {
    #[error("`{host}` is an internal address ({address})")]
    Internal { host: String, address: IpAddr },
}

/// Whether `address` is one a webhook may not reach: loopback, private, link-local, CGNAT,
/// benchmarking, reserved, unique-local, unspecified, multicast, broadcast, or any of those inside
/// an IPv6 address that carries an IPv4 one ([`embedded_v4`]).
pub fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        // 0.0.0.0/8: "this network"; Linux connects 0.x.y.z to the local host.
        || a == 0
        // 100.64.0.0/10: carrier-grade NAT, internal to a provider.
        || (a == 100 && (b & 0b1100_0000) == 64)
        // 192.0.0.0/24: protocol assignments; 198.18.0.0/15: benchmarking, used for lab networks.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0b1111_1110) == 18)
        || address.is_multicast()
        // 240.0.0.0/4: reserved, with the broadcast address.
        || a >= 240
}

fn is_internal_v6(address: Ipv6Addr) -> bool {
    let segments = address.segments();
    if let Some(v4) = embedded_v4(segments) {
        return is_internal_v4(v4);
    }
    address.is_multicast()
        // ::/96: IPv4-compatible (deprecated), with `::` and `::1`; no webhook lives there.
        || segments[..6] == [0; 6]
        // fe80::/10: link-local.
        || (segments[0] & 0xffc0) == 0xfe80
        // fc00::/7: unique-local.
        || (segments[0] & 0xfe00) == 0xfc00
}

/// The IPv4 address an IPv6 address leads to, when it carries one: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`), NAT64 (`64:ff9b::/96` and the local
/// `64:ff9b:1::/48`), 6to4 (`2002::/16`) and Teredo (`2001::/32`, whose client address is stored
/// inverted). The IPv4 address is what is reached, so it is what is checked.
fn embedded_v4(segments: [u16; 8]) -> Option<Ipv4Addr> {
    let v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match segments {
        [0, 0, 0, 0, 0, 0xffff, high, low]
        | [0, 0, 0, 0, 0xffff, 0, high, low]
        | [0x64, 0xff9b, 0, 0, 0, 0, high, low]
        | [0x64, 0xff9b, 1, _, _, _, high, low] => Some(v4(high, low)),
        [0x2002, high, low, ..] => Some(v4(high, low)),
        [0x2001, 0, .., high, low] => Some(v4(!high, !low)),
        _ => None,
    }
}

/// The policy of one notifier: refuse internal addresses, unless told to allow them (local
/// development and tests, where the receiver is on the same machine).
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub allow_private: bool,
}

impl Guard {
    /// Checks one address `host` stands for.
    pub fn check(&self, host: &str, address: IpAddr) -> Result<(), Refused> {
        if !self.allow_private && is_internal(address) {
            return Err(Refused::Internal {
                host: host.to_owned(),
                address,
            });
        }
        Ok(())
    }

    /// Checks the host of `url` when it is an address literal, which no resolver sees.
    pub fn check_literal(&self, url: &Url) -> Result<(), Refused> {
        match literal(url) {
            Some(address) => self.check(&address.to_string(), address),
            None => Ok(()),
        }
    }

    /// Checks the host of `url` as it is and as it resolves now. A name that does not resolve
    /// is let through: it may resolve later, and every delivery checks again.
    pub async fn check_url(&self, url: &Url) -> Result<(), Refused> {
        self.check_literal(url)?;
        let Some(name) = url.host_str().filter(|_| literal(url).is_none()) else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let Ok(addresses) = tokio::net::lookup_host((name, port)).await else {
            return Ok(());
        };
        for address in addresses {
            self.check(name, address.ip())?;
        }
        Ok(())
    }
}

/// The address a URL's host is written as, if it is one. The URL parser has already turned the
/// other spellings of an IPv4 address (`2130706433`, `0x7f.1`) into dotted form; an IPv6 host
/// comes in brackets.
fn literal(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// The HTTP client's resolver: the system's, refusing a name when any of its addresses is
/// internal (a name that mixes public and internal addresses would let the connection pick).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub guard: Guard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard;
        Box::pin(async move {
            let host = name.as_str();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            for address in &addresses {
                guard.check(host, address.ip())?;
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The guard's refusal somewhere in the causes of a failed request, if that is why it failed.
pub fn refusal_in<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(address: &str) -> bool {
        is_internal(address.parse().expect("an address"))
    }

    #[test]
    fn internal_addresses_are_refused_including_ipv4_inside_ipv6() {
        for address in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "febf:ffff::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:192.168.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::7f00:1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:0:7f00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.8",
            "240.0.0.1",
        ] {
            assert!(internal(address), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass_including_the_neighbours_of_internal_ranges() {
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "192.167.255.255",
            "11.0.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:db8::1",
            "fec0::1",
            "::ffff:93.184.216.34",
            "64:ff9b::5db8:d822",
            "::ffff:0:5db8:d822",
            "2002:5db8:d822::1",
            "2001:0:4136:e378:8000:63bf:a247:29dd",
            "2003::1",
            "198.17.255.255",
            "198.20.0.0",
            "192.0.1.0",
        ] {
            assert!(!internal(address), "{address}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_by_literal_and_by_name_unless_private_is_allowed() {
        let strict = Guard { allow_private: false };
        let lenient = Guard { allow_private: true };
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://[::ffff:0:7f00:1]/hook",
            "http://[2002:7f00:1::]/hook",
            "http://198.18.0.1/hook",
            "http://localhost:9/hook",
            "http://2130706433/hook",
            "http://0x7f.1/hook",
            "https://10.0.0.8/",
        ] {
            let url = Url::parse(url).expect("a URL");
            assert!(strict.check_url(&url).await.is_err(), "{url}");
            assert!(lenient.check_url(&url).await.is_ok(), "{url}");
        }
        let public = Url::parse("https://93.184.216.34/hook").expect("a URL");
        assert!(strict.check_url(&public).await.is_ok());
    }

    #[test]
    fn a_refusal_is_found_among_the_causes_of_an_error() {
        #[derive(Debug, Error)]
        #[error("wrapped")]
        struct Wrapper(#[source] Refused);
        let refused = Refused::Internal {
            host: "db".to_owned(),
            address: "10.0.0.1".parse().unwrap(),
        };
        assert_eq!(refusal_in(&Wrapper(refused.clone())), Some(&refused));
        assert_eq!(refusal_in(&std::io::Error::other("no")), None);
    }
}
