//! The SSRF address policy: which IP addresses an outbound webhook delivery may connect to.
//!
//! Endpoint URLs are chosen by API callers, so without a policy hookd could be aimed at its own
//! host, the private network around it or a cloud metadata service and made to reach them on the
//! caller's behalf. The dispatcher resolves each host itself and asks [`AddressPolicy::check`] about
//! every resolved address before connecting: judging the address, not the URL, is what defeats
//! names that resolve to private addresses and DNS rebinding. This module only decides; it does no
//! IO and no DNS.
//!
//! An address is judged by its canonical form: an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible
//! (`::a.b.c.d`) address is the IPv4 address it carries, because that is where a dual-stack socket
//! really connects. Translation prefixes whose gateway forwards to the IPv4 address they carry
//! (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are refused themselves, and the carried address is
//! judged as well, so opening the prefix never opens the private IPv4 space behind it.
//!
//! Operators open refused ranges with `delivery.allowed_subnets` (say, to deliver to a sidecar on
//! loopback); an allowed subnet opens only the addresses it contains.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The configuration key that opens refused ranges; refusal messages name it so the fix is findable.
pub const ALLOW_KEY: &str = "delivery.allowed_subnets";

/// Shared by the IPv4 and IPv6 metadata endpoints: what matters to the operator is the service, not
/// the range around it.
const METADATA: &str = "a cloud metadata address";

/// Refused IPv4 blocks as (network, prefix length, reason). The first match gives the reason, so a
/// block must come before any larger block that contains it.
#[rustfmt::skip] // One block a line reads as the table it is.
const V4_REFUSED: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(169, 254, 169, 254), 32, METADATA),
    (Ipv4Addr::new(0, 0, 0, 0),         8,  "an unspecified (\"this network\") address (0.0.0.0/8)"),
    (Ipv4Addr::new(10, 0, 0, 0),        8,  "a private-network address (10.0.0.0/8)"),
    (Ipv4Addr::new(100, 64, 0, 0),      10, "a carrier-grade NAT address (100.64.0.0/10)"),
    (Ipv4Addr::new(127, 0, 0, 0),       8,  "a loopback address (127.0.0.0/8)"),
    (Ipv4Addr::new(169, 254, 0, 0),     16, "a link-local address (169.254.0.0/16)"),
    (Ipv4Addr::new(172, 16, 0, 0),      12, "a private-network address (172.16.0.0/12)"),
    (Ipv4Addr::new(192, 0, 0, 0),       24, "an IETF protocol assignment (192.0.0.0/24)"),
    (Ipv4Addr::new(192, 0, 2, 0),       24, "a documentation address (192.0.2.0/24)"),
    (Ipv4Addr::new(192, 88, 99, 0),     24, "a 6to4 relay anycast address (192.88.99.0/24)"),
    (Ipv4Addr::new(192, 168, 0, 0),     16, "a private-network address (192.168.0.0/16)"),
    (Ipv4Addr::new(198, 18, 0, 0),      15, "a benchmarking address (198.18.0.0/15)"),
    (Ipv4Addr::new(198, 51, 100, 0),    24, "a documentation address (198.51.100.0/24)"),
    (Ipv4Addr::new(203, 0, 113, 0),     24, "a documentation address (203.0.113.0/24)"),
    (Ipv4Addr::new(224, 0, 0, 0),       4,  "a multicast address (224.0.0.0/4)"),
    (Ipv4Addr::BROADCAST,               32, "the broadcast address (255.255.255.255)"),
    (Ipv4Addr::new(240, 0, 0, 0),       4,  "a reserved address (240.0.0.0/4)"),
];

/// The NAT64 well-known prefix (RFC 6052); its last 32 bits are the IPv4 destination.
const NAT64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
/// The 6to4 prefix (RFC 3056); bits 16..48 are the IPv4 address of the relay-reachable site.
const SIX_TO_FOUR: Ipv6Addr = Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0);

/// Refused IPv6 blocks, checked on the canonical address (so mapped and compatible addresses have
/// already become IPv4). Same layout and ordering rule as [`V4_REFUSED`].
#[rustfmt::skip] // One block a line reads as the table it is.
const V6_REFUSED: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED,                               128, "the unspecified address (::)"),
    (Ipv6Addr::LOCALHOST,                                 128, "the loopback address (::1)"),
    (NAT64,                                               96,  "a NAT64 address (64:ff9b::/96)"),
    // Local-use NAT64 (RFC 8215) puts the IPv4 address wherever the operator's prefix length says,
    // so it cannot be extracted; the whole block stays refused unless explicitly allowed.
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),       48,  "a local-use NAT64 address (64:ff9b:1::/48)"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),           64,  "a discard-only address (100::/64)"),
    // Teredo embeds its server's and (obfuscated) its client's IPv4 address; it is refused whole
    // like the rest of 2001::/23, under its own name because that is what an operator looks up.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),          32,  "a Teredo address (2001::/32)"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),          23,  "an IETF protocol assignment (2001::/23)"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),      32,  "a documentation address (2001:db8::/32)"),
    (SIX_TO_FOUR,                                         16,  "a 6to4 address (2002::/16)"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),          20,  "a documentation address (3fff::/20)"),
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),          16,  "an SRv6 segment identifier (5f00::/16)"),
    // AWS's IPv6 instance metadata service, inside the unique-local block below.
    (Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),  128, METADATA),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),          7,   "a unique-local address (fc00::/7)"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),          10,  "a link-local address (fe80::/10)"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),          10,  "a site-local address (fec0::/10)"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),          8,   "a multicast address (ff00::/8)"),
];

/// Everything routable on the IPv6 internet is allocated from 2000::/3; the rest is reserved, and a
/// private network squatting on it is exactly what this policy keeps deliveries out of.
const V6_GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);
const V6_RESERVED: &str = "a reserved IPv6 address (outside global unicast 2000::/3)";

fn v4_in(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    // `checked_shl` turns a /0 (a shift by the full width) into an all-zero mask.
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The address a connection really reaches: IPv4-mapped and IPv4-compatible IPv6 addresses become
/// the IPv4 address they carry. `::` and `::1` are IPv6's own unspecified and loopback addresses,
/// not compatible forms of 0.0.0.0 and 0.0.0.1.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let bits = u128::from(v6);
            if bits >> 32 == 0 && bits > 1 {
                return IpAddr::V4(Ipv4Addr::from(bits as u32));
            }
            ip
        }
    }
}

/// The IPv4 address a translation gateway would forward to, for the prefixes where its place is fixed.
fn carried_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if v6_in(ip, NAT64, 96) {
        Some(Ipv4Addr::from(bits as u32))
    } else if v6_in(ip, SIX_TO_FOUR, 16) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

/// Why `ip` itself is refused, by the tables alone (no canonicalisation, no carried address).
fn own_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => V4_REFUSED
            .iter()
            .find(|(net, prefix, _)| v4_in(v4, *net, *prefix))
            .map(|(_, _, reason)| *reason),
        IpAddr::V6(v6) => V6_REFUSED
            .iter()
            .find(|(net, prefix, _)| v6_in(v6, *net, *prefix))
            .map(|(_, _, reason)| *reason)
            .or_else(|| (!v6_in(v6, V6_GLOBAL_UNICAST.0, V6_GLOBAL_UNICAST.1)).then_some(V6_RESERVED)),
    }
}

/// Everything the policy has against one address, before the allow-list is consulted.
struct Assessment {
    canonical: IpAddr,
    /// Why the canonical address itself is refused.
    own: Option<&'static str>,
    /// The IPv4 address a NAT64 or 6to4 address leads to, when that address is refused, and why.
    carried: Option<(Ipv4Addr, &'static str)>,
}

fn assess(ip: IpAddr) -> Assessment {
    let canonical = canonical(ip);
    let carried = match canonical {
        IpAddr::V6(v6) => carried_ipv4(v6).and_then(|v4| own_reason(IpAddr::V4(v4)).map(|reason| (v4, reason))),
        IpAddr::V4(_) => None,
    };
    Assessment {
        canonical,
        own: own_reason(canonical),
        carried,
    }
}

/// Why an address is refused (a short human sentence fragment, e.g. "a private-network address
/// (10.0.0.0/8)"), or `None` when deliveries may connect to it with no allow-list.
///
/// A mapped or compatible IPv6 form gets the reason of the IPv4 address it carries. A NAT64 or
/// 6to4 address gets its prefix's reason, since the prefix is refused whatever it carries;
/// [`AddressPolicy::check`] also reports the IPv4 address it leads to when that is refused.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    own_reason(canonical(ip))
}

/// The policy: the refused ranges, with an allow-list of subnets that opens them.
///
/// The default refuses every range this module lists and opens none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Subnets deliveries may reach even though they lie in a refused range.
    pub allowed: Vec<IpNet>,
    /// Subnets opened for the sandbox, except for metadata addresses inside them.
    pub sandbox: Vec<IpNet>,
}

impl AddressPolicy {
    /// A policy opening exactly `allowed`.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        AddressPolicy {
            allowed,
            sandbox: Vec::new(),
        }
    }

    /// Parses CIDR strings ("10.0.0.0/8", "::1/128"; a bare IP is a /32 or /128). Surrounding
    /// whitespace is ignored and host bits are cleared ("10.1.2.3/8" is 10.0.0.0/8). The error
    /// names the first bad entry.
    pub fn parse(allowed: &[String]) -> Result<AddressPolicy, String> {
        allowed
            .iter()
            .map(|entry| parse_subnet(entry))
            .collect::<Result<Vec<_>, _>>()
            .map(AddressPolicy::new)
    }

    /// The sandbox (test environment) policy: this one, plus loopback (a developer's local
    /// receiver) and, when `private_networks` is set, the private networks (RFC 1918, IPv6
    /// unique-local). Link-local addresses (cloud metadata services) and every other refused
    /// range stay refused.
    pub fn sandbox(&self, private_networks: bool) -> AddressPolicy {
        let open: &[&str] = if private_networks {
            &SANDBOX_OPEN
        } else {
            &SANDBOX_OPEN[..2]
        };
        AddressPolicy {
            allowed: self.allowed.clone(),
            sandbox: open
                .iter()
                .map(|s| s.parse::<IpNet>().expect("valid built-in subnet"))
                .collect(),
        }
    }

    /// `Ok(())` when a connection to `ip` may be made; otherwise the refusal, worded for an
    /// attempt log, e.g. "refused: 127.0.0.1 is a loopback address (127.0.0.0/8); add it to
    /// delivery.allowed_subnets to allow it".
    ///
    /// The allow-list is matched against both the address as given and its canonical form, so
    /// allowing 10.0.0.0/8 also allows `::ffff:10.1.2.3`. The IPv4 address behind a NAT64 or 6to4
    /// address must be opened on its own: allowing 64:ff9b::/96 reaches public IPv4 hosts through
    /// the gateway, not private ones.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let a = assess(ip);
        let own = a
            .own
            .filter(|reason| !self.opens(ip, reason) && !self.opens(a.canonical, reason));
        let carried = a.carried.filter(|(v4, reason)| !self.opens(IpAddr::V4(*v4), reason));
        if own.is_none() && carried.is_none() {
            return Ok(());
        }
        // Show the IPv4 address a mapped form stands for: that is the address the reason is about.
        let shown = if a.canonical == ip {
            ip.to_string()
        } else {
            format!("{ip} ({})", a.canonical)
        };
        match (own, carried) {
            (None, None) => Ok(()),
            (Some(reason), None) => Err(format!(
                "refused: {shown} is {reason}; add it to {ALLOW_KEY} to allow it"
            )),
            (None, Some((v4, reason))) => Err(format!(
                "refused: {shown} leads to the IPv4 address {v4}, which is {reason}; \
                 add {v4} to {ALLOW_KEY} to allow it"
            )),
            (Some(own), Some((v4, reason))) => Err(format!(
                "refused: {shown} is {own} and leads to the IPv4 address {v4}, which is {reason}; \
                 add both {ip} and {v4} to {ALLOW_KEY} to allow it"
            )),
        }
    }

    fn opens(&self, ip: IpAddr, reason: &str) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip))
            || (reason != METADATA && self.sandbox.iter().any(|net| net.contains(&ip)))
    }
}

/// What the sandbox may reach on top of the configured allow-list: loopback (the first two),
/// then the private networks, opened only with `sandbox.allow_private_networks`.
const SANDBOX_OPEN: [&str; 6] = [
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
];

fn parse_subnet(entry: &str) -> Result<IpNet, String> {
    let s = entry.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    // Say which half is wrong, so "10.0.0.0/33" is not reported as a bad address.
    let detail = match s.split_once('/') {
        Some((addr, len)) => match addr.parse::<IpAddr>() {
            Ok(ip) => {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                format!("the prefix length {len:?} must be a number from 0 to {max}")
            }
            Err(_) => format!("{addr:?} is not an IP address"),
        },
        None => "expected an IP address or a CIDR subnet such as 10.0.0.0/8 or fd00::/8".to_string(),
    };
    Err(format!("invalid entry {entry:?} in {ALLOW_KEY}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("bad test address {s}: {e}"))
    }

    fn policy(allowed: &[&str]) -> AddressPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        AddressPolicy::parse(&allowed).unwrap()
    }

    /// (address, `None` if allowed or a fragment of the reason it is refused for). For each range:
    /// an address inside, its first and last addresses, and the neighbours just outside.
    const BOUNDARIES: &[(&str, Option<&str>)] = &[
        ("0.0.0.0", Some("0.0.0.0/8")),
        ("0.255.255.255", Some("0.0.0.0/8")),
        ("1.0.0.0", None),
        ("9.255.255.255", None),
        ("10.0.0.0", Some("10.0.0.0/8")),
        ("10.1.2.3", Some("10.0.0.0/8")),
        ("10.255.255.255", Some("10.0.0.0/8")),
        ("11.0.0.0", None),
        ("100.63.255.255", None),
        ("100.64.0.0", Some("100.64.0.0/10")),
        ("100.100.100.200", Some("100.64.0.0/10")),
        ("100.127.255.255", Some("100.64.0.0/10")),
        ("100.128.0.0", None),
        ("126.255.255.255", None),
        ("127.0.0.0", Some("127.0.0.0/8")),
        ("127.0.0.1", Some("127.0.0.0/8")),
        ("127.255.255.255", Some("127.0.0.0/8")),
        ("128.0.0.0", None),
        ("169.253.255.255", None),
        ("169.254.0.0", Some("169.254.0.0/16")),
        ("169.254.169.253", Some("169.254.0.0/16")),
        ("169.254.169.254", Some("metadata")),
        ("169.254.169.255", Some("169.254.0.0/16")),
        ("169.254.255.255", Some("169.254.0.0/16")),
        ("169.255.0.0", None),
        ("172.15.255.255", None),
        ("172.16.0.0", Some("172.16.0.0/12")),
        ("172.20.1.1", Some("172.16.0.0/12")),
        ("172.31.255.255", Some("172.16.0.0/12")),
        ("172.32.0.0", None),
        ("191.255.255.255", None),
        ("192.0.0.0", Some("192.0.0.0/24")),
        ("192.0.0.255", Some("192.0.0.0/24")),
        ("192.0.1.0", None),
        ("192.0.1.255", None),
        ("192.0.2.0", Some("192.0.2.0/24")),
        ("192.0.2.255", Some("192.0.2.0/24")),
        ("192.0.3.0", None),
        ("192.88.98.255", None),
        ("192.88.99.0", Some("192.88.99.0/24")),
        ("192.88.99.255", Some("192.88.99.0/24")),
        ("192.88.100.0", None),
        ("192.167.255.255", None),
        ("192.168.0.0", Some("192.168.0.0/16")),
        ("192.168.1.1", Some("192.168.0.0/16")),
        ("192.168.255.255", Some("192.168.0.0/16")),
        ("192.169.0.0", None),
        ("198.17.255.255", None),
        ("198.18.0.0", Some("198.18.0.0/15")),
        ("198.19.255.255", Some("198.18.0.0/15")),
        ("198.20.0.0", None),
        ("198.51.99.255", None),
        ("198.51.100.0", Some("198.51.100.0/24")),
        ("198.51.100.255", Some("198.51.100.0/24")),
        ("198.51.101.0", None),
        ("203.0.112.255", None),
        ("203.0.113.0", Some("203.0.113.0/24")),
        ("203.0.113.255", Some("203.0.113.0/24")),
        ("203.0.114.0", None),
        ("223.255.255.255", None),
        ("224.0.0.0", Some("224.0.0.0/4")),
        ("239.255.255.255", Some("224.0.0.0/4")),
        ("240.0.0.0", Some("240.0.0.0/4")),
        ("255.255.255.254", Some("240.0.0.0/4")),
        ("255.255.255.255", Some("broadcast")),
        // IPv6. Below 2000::/3 and above 3fff:ffff:…, the neighbours of a range are refused as
        // reserved space, which still pins where the range ends.
        ("::", Some("unspecified address (::)")),
        ("::1", Some("loopback address (::1)")),
        ("64:ff9b::", Some("64:ff9b::/96")),
        ("64:ff9b::808:808", Some("64:ff9b::/96")),
        ("64:ff9b::ffff:ffff", Some("64:ff9b::/96")),
        ("64:ff9b::1:0:0:0", Some("2000::/3")),
        ("64:ff9b:0:ffff:ffff:ffff:ffff:ffff", Some("2000::/3")),
        ("64:ff9b:1::", Some("64:ff9b:1::/48")),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some("64:ff9b:1::/48")),
        ("64:ff9b:2::", Some("2000::/3")),
        ("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2000::/3")),
        ("100::", Some("100::/64")),
        ("100::ffff:ffff:ffff:ffff", Some("100::/64")),
        ("100:0:0:1::", Some("2000::/3")),
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2000::/3")),
        ("2000::", None),
        ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001::", Some("2001::/32")),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("2001::/32")),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001::/32")),
        ("2001:1::", Some("2001::/23")),
        ("2001:10::1", Some("2001::/23")),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001::/23")),
        ("2001:200::", None),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:db8::", Some("2001:db8::/32")),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001:db8::/32")),
        ("2001:db9::", None),
        ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2002::", Some("2002::/16")),
        ("2002:808:808::1", Some("2002::/16")),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2002::/16")),
        ("2003::", None),
        ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("3fff::", Some("3fff::/20")),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Some("3fff::/20")),
        ("3fff:1000::", None),
        ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("4000::", Some("2000::/3")),
        ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2000::/3")),
        ("5f00::", Some("5f00::/16")),
        ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("5f00::/16")),
        ("5f01::", Some("2000::/3")),
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2000::/3")),
        ("fc00::", Some("fc00::/7")),
        ("fd00:ec2::253", Some("fc00::/7")),
        ("fd00:ec2::254", Some("metadata")),
        ("fd00:ec2::255", Some("fc00::/7")),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fc00::/7")),
        ("fe00::", Some("2000::/3")),
        ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2000::/3")),
        ("fe80::", Some("fe80::/10")),
        ("fe80::1", Some("fe80::/10")),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fe80::/10")),
        ("fec0::", Some("fec0::/10")),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fec0::/10")),
        ("ff00::", Some("ff00::/8")),
        ("ff02::1", Some("ff00::/8")),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("ff00::/8")),
    ];

    #[test]
    fn the_sandbox_opens_loopback_and_only_on_request_private_networks_never_metadata() {
        let live = AddressPolicy::default();
        let loopback_only = live.sandbox(false);
        for ip in ["127.0.0.1", "::1"] {
            assert!(loopback_only.check(ip.parse().unwrap()).is_ok(), "sandbox allows {ip}");
        }
        for ip in ["10.1.2.3", "172.20.0.5", "192.168.1.10", "fd00::5", "169.254.169.254"] {
            assert!(
                loopback_only.check(ip.parse().unwrap()).is_err(),
                "without allow_private_networks the sandbox refuses {ip}"
            );
        }
        let sandbox = live.sandbox(true);
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "10.1.2.3",
            "172.20.0.5",
            "192.168.1.10",
            "fd00::5",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(live.check(ip).is_err(), "live refuses {ip}");
            assert!(sandbox.check(ip).is_ok(), "sandbox allows {ip}");
        }
        for ip in [
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "fd00:ec2::254",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            // fd00:ec2::254 (AWS's IPv6 metadata service) lies inside the unique-local range the
            // sandbox opens; metadata addresses stay refused all the same.
            assert!(sandbox.check(ip).is_err(), "sandbox still refuses {ip}");
        }
        // The operator's own allow-list carries over.
        let configured = AddressPolicy::parse(&["203.0.113.0/24".to_string()])
            .unwrap()
            .sandbox(false);
        assert!(configured.check("203.0.113.7".parse().unwrap()).is_ok());
    }

    #[test]
    fn each_refused_range_covers_exactly_its_addresses() {
        for &(addr, expected) in BOUNDARIES {
            let got = forbidden_reason(ip(addr));
            match expected {
                None => assert_eq!(got, None, "{addr} should be allowed"),
                Some(fragment) => {
                    let reason = got.unwrap_or_else(|| panic!("{addr} should be refused ({fragment})"));
                    assert!(
                        reason.contains(fragment),
                        "{addr}: {reason:?} should mention {fragment:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_default_policy_agrees_with_forbidden_reason() {
        let default = AddressPolicy::default();
        for &(addr, _) in BOUNDARIES {
            assert_eq!(
                default.check(ip(addr)).is_ok(),
                forbidden_reason(ip(addr)).is_none(),
                "{addr}"
            );
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001:82a::200e",
        ] {
            assert_eq!(forbidden_reason(ip(addr)), None, "{addr}");
            assert_eq!(AddressPolicy::default().check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn ipv4_mapped_and_compatible_addresses_are_judged_as_the_ipv4_they_carry() {
        assert_eq!(
            forbidden_reason(ip("::ffff:127.0.0.1")),
            Some("a loopback address (127.0.0.0/8)")
        );
        assert_eq!(
            forbidden_reason(ip("::ffff:10.0.0.1")),
            Some("a private-network address (10.0.0.0/8)")
        );
        assert_eq!(forbidden_reason(ip("::ffff:169.254.169.254")), Some(METADATA));
        assert_eq!(forbidden_reason(ip("::ffff:8.8.8.8")), None);
        // IPv4-compatible: ::a.b.c.d, but :: and ::1 keep their IPv6 meaning.
        assert_eq!(
            forbidden_reason(ip("::127.0.0.1")),
            Some("a loopback address (127.0.0.0/8)")
        );
        assert!(forbidden_reason(ip("::2")).unwrap().contains("0.0.0.0/8"));
        assert_eq!(forbidden_reason(ip("::8.8.8.8")), None);
        assert_eq!(forbidden_reason(ip("::")), Some("the unspecified address (::)"));
        assert_eq!(forbidden_reason(ip("::1")), Some("the loopback address (::1)"));
    }

    #[test]
    fn nat64_and_6to4_are_refused_and_the_ipv4_they_lead_to_is_judged_too() {
        // NAT64 and 6to4 of 10.0.0.1.
        for addr in [
            "64:ff9b::a00:1",
            "64:ff9b::10.0.0.1",
            "2002:0a00:0001::",
            "2002:a00:1::1",
        ] {
            let err = AddressPolicy::default().check(ip(addr)).unwrap_err();
            assert!(err.contains("10.0.0.1") && err.contains("10.0.0.0/8"), "{addr}: {err}");
        }
        // The prefixes are refused even when the IPv4 address behind them is public.
        assert!(forbidden_reason(ip("64:ff9b::808:808")).unwrap().contains("NAT64"));
        assert!(forbidden_reason(ip("2002:808:808::")).unwrap().contains("6to4"));
    }

    #[test]
    fn cloud_metadata_addresses_have_their_own_reason() {
        for addr in ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"] {
            assert!(forbidden_reason(ip(addr)).unwrap().contains("metadata"), "{addr}");
        }
        let err = AddressPolicy::default().check(ip("169.254.169.254")).unwrap_err();
        assert!(err.contains("cloud metadata"), "{err}");
    }

    #[test]
    fn the_refusal_names_the_address_the_reason_and_the_config_key() {
        let default = AddressPolicy::default();
        assert_eq!(
            default.check(ip("127.0.0.1")).unwrap_err(),
            "refused: 127.0.0.1 is a loopback address (127.0.0.0/8); add it to delivery.allowed_subnets to allow it"
        );
        assert_eq!(
            default.check(ip("::ffff:10.0.0.1")).unwrap_err(),
            "refused: ::ffff:10.0.0.1 (10.0.0.1) is a private-network address (10.0.0.0/8); \
             add it to delivery.allowed_subnets to allow it"
        );
        assert_eq!(
            default.check(ip("64:ff9b::a00:1")).unwrap_err(),
            "refused: 64:ff9b::a00:1 is a NAT64 address (64:ff9b::/96) and leads to the IPv4 address 10.0.0.1, \
             which is a private-network address (10.0.0.0/8); \
             add both 64:ff9b::a00:1 and 10.0.0.1 to delivery.allowed_subnets to allow it"
        );
    }

    #[test]
    fn an_allowed_subnet_opens_only_what_it_contains() {
        let p = policy(&["127.0.0.2/32"]);
        assert_eq!(p.check(ip("127.0.0.2")), Ok(()));
        assert!(p.check(ip("127.0.0.3")).is_err());
        assert!(p.check(ip("127.0.0.1")).is_err());
        assert!(p.check(ip("10.0.0.1")).is_err());
        assert!(p.check(ip("::1")).is_err());
    }

    #[test]
    fn an_allowed_ipv4_subnet_opens_its_mapped_forms_too() {
        let p = policy(&["10.0.0.0/8"]);
        assert_eq!(p.check(ip("10.1.2.3")), Ok(()));
        assert_eq!(p.check(ip("::ffff:10.1.2.3")), Ok(()));
        assert_eq!(p.check(ip("::10.1.2.3")), Ok(()));
        assert!(p.check(ip("11.0.0.0")).is_ok());
        assert!(p.check(ip("172.16.0.1")).is_err());
        // The allow-list is also matched against the address as given.
        let mapped = policy(&["::ffff:127.0.0.1/128"]);
        assert_eq!(mapped.check(ip("::ffff:127.0.0.1")), Ok(()));
    }

    #[test]
    fn opening_a_translation_prefix_does_not_open_the_private_ipv4_behind_it() {
        let nat64 = policy(&["64:ff9b::/96"]);
        assert_eq!(nat64.check(ip("64:ff9b::808:808")), Ok(()));
        let err = nat64.check(ip("64:ff9b::a00:1")).unwrap_err();
        assert_eq!(
            err,
            "refused: 64:ff9b::a00:1 leads to the IPv4 address 10.0.0.1, which is a private-network address \
             (10.0.0.0/8); add 10.0.0.1 to delivery.allowed_subnets to allow it"
        );
        let both = policy(&["64:ff9b::/96", "10.0.0.1"]);
        assert_eq!(both.check(ip("64:ff9b::a00:1")), Ok(()));
        // Opening the IPv4 address alone leaves the prefix refused.
        assert!(policy(&["10.0.0.0/8"]).check(ip("64:ff9b::a00:1")).is_err());
        assert!(policy(&["2002::/16"]).check(ip("2002:a00:1::")).is_err());
        assert_eq!(policy(&["2002::/16"]).check(ip("2002:808:808::")), Ok(()));
    }

    #[test]
    fn parse_accepts_cidrs_and_bare_addresses() {
        let p = policy(&["10.0.0.0/8", "::1/128", "127.0.0.2", "fd00::1", " 192.168.1.7/24 "]);
        let expected: Vec<IpNet> = ["10.0.0.0/8", "::1/128", "127.0.0.2/32", "fd00::1/128", "192.168.1.0/24"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(p, AddressPolicy::new(expected));
        assert_eq!(AddressPolicy::parse(&[]), Ok(AddressPolicy::default()));
    }

    #[test]
    fn parse_errors_name_the_bad_entry() {
        let parse = |entries: &[&str]| {
            let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
            AddressPolicy::parse(&entries).unwrap_err()
        };
        let err = parse(&["10.0.0.0/8", "not-an-ip"]);
        assert!(
            err.contains("\"not-an-ip\"") && err.contains("delivery.allowed_subnets"),
            "{err}"
        );
        let err = parse(&["10.0.0.0/33"]);
        assert!(err.contains("\"10.0.0.0/33\"") && err.contains("0 to 32"), "{err}");
        let err = parse(&["::1/129"]);
        assert!(err.contains("\"::1/129\"") && err.contains("0 to 128"), "{err}");
        let err = parse(&["10.0.0/8"]);
        assert!(
            err.contains("\"10.0.0/8\"") && err.contains("not an IP address"),
            "{err}"
        );
        assert!(parse(&[""]).contains("\"\""));
    }

    #[test]
    fn the_refused_tables_are_well_formed() {
        // A network with host bits set would silently match a different block than it reads as.
        for &(net, prefix, reason) in V4_REFUSED {
            assert!(prefix <= 32, "{reason}");
            let host = !u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            assert_eq!(u32::from(net) & host, 0, "{reason}");
        }
        for &(net, prefix, reason) in V6_REFUSED {
            assert!(prefix <= 128, "{reason}");
            let host = !u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            assert_eq!(u128::from(net) & host, 0, "{reason}");
        }
        // First match wins, so no block may be shadowed by an earlier block containing it.
        for (i, &(net, prefix, reason)) in V4_REFUSED.iter().enumerate() {
            for &(earlier, earlier_prefix, _) in &V4_REFUSED[..i] {
                assert!(
                    !(earlier_prefix <= prefix && v4_in(net, earlier, earlier_prefix)),
                    "{reason} is shadowed"
                );
            }
        }
        for (i, &(net, prefix, reason)) in V6_REFUSED.iter().enumerate() {
            for &(earlier, earlier_prefix, _) in &V6_REFUSED[..i] {
                assert!(
                    !(earlier_prefix <= prefix && v6_in(net, earlier, earlier_prefix)),
                    "{reason} is shadowed"
                );
            }
        }
    }
}
