//! CIDR allowlists (IPv4 and IPv6), checked against the peer address before
//! a request body is parsed. An IPv4 peer seen as an IPv4-mapped IPv6
//! address (`::ffff:a.b.c.d`) matches IPv4 blocks.

use std::net::IpAddr;

use anyhow::{bail, Context};

/// One block, e.g. `192.0.2.0/24`, `2001:db8::/32`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> anyhow::Result<Cidr> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .with_context(|| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().with_context(|| format!("{s:?}: bad prefix length"))?,
            None => max,
        };
        if prefix > max {
            bail!("{s:?}: prefix length {prefix} is more than {max}");
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A parsed allowlist; empty means "no restriction".
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<Cidr>);

impl AllowList {
    pub fn parse(blocks: &[String]) -> anyhow::Result<AllowList> {
        Ok(AllowList(
            blocks.iter().map(|b| Cidr::parse(b)).collect::<anyhow::Result<_>>()?,
        ))
    }

    /// True when the list is empty or a block contains `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_match_their_addresses() {
        let c = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(c.contains(ip("192.0.2.77")));
        assert!(!c.contains(ip("192.0.3.1")));
        assert!(c.contains(ip("::ffff:192.0.2.9")), "IPv4-mapped IPv6");
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains(ip("2001:db8:1::5")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(!c.contains(ip("192.0.2.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.5")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
    }

    #[test]
    fn bad_blocks_are_refused() {
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "example.net", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_list_permits_everyone() {
        assert!(AllowList::default().permits(ip("203.0.113.5")));
        let l = AllowList::parse(&["10.0.0.0/8".into()]).unwrap();
        assert!(l.permits(ip("10.1.2.3")) && !l.permits(ip("11.0.0.1")));
    }
}
