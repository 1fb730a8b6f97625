//! Address rules as nginx-rtmp's `allow`/`deny`: evaluated in order, the first rule matching the peer
//! decides, and a peer no rule matches is allowed.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;

/// One address rule's subject: `all`, an address, or a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum IpMatch {
    /// Every address.
    All,
    /// An address (as a single-address network) or a CIDR network.
    Net(IpNet),
}

impl IpMatch {
    /// Whether `peer` is covered; an IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`) matches IPv4 rules.
    pub fn matches(&self, peer: IpAddr) -> bool {
        match self {
            IpMatch::All => true,
            IpMatch::Net(net) => net.contains(&peer) || net.contains(&peer.to_canonical()),
        }
    }
}

impl FromStr for IpMatch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all") {
            return Ok(IpMatch::All);
        }
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(IpMatch::Net(net.trunc()));
        }
        match text.parse::<IpAddr>() {
            Ok(address) => Ok(IpMatch::Net(IpNet::from(address))),
            Err(_) => Err(format!(
                "{text:?} is not an address, a CIDR network or \"all\""
            )),
        }
    }
}

impl TryFrom<String> for IpMatch {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for IpMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpMatch::All => f.write_str("all"),
            IpMatch::Net(net) => net.fmt(f),
        }
    }
}

/// Whether a rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// The rule allows the peer.
    Allow,
    /// The rule denies the peer.
    Deny,
}

/// An ordered list of rules for one action (publish or play).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRules(Vec<(RuleKind, IpMatch)>);

impl IpRules {
    /// Rules in the order given: nginx-rtmp's order is that of its directives; a TOML table has no
    /// order across keys, so the allow list is tried before the deny list (write `deny_* = ["all"]`
    /// with an allow list to admit only that list).
    pub fn new(allow: &[IpMatch], deny: &[IpMatch]) -> Self {
        let allow = allow.iter().map(|m| (RuleKind::Allow, m.clone()));
        let deny = deny.iter().map(|m| (RuleKind::Deny, m.clone()));
        Self(allow.chain(deny).collect())
    }

    /// The rule that decides for `peer`, if any; no rule means allowed.
    pub fn decide(&self, peer: IpAddr) -> Option<(RuleKind, &IpMatch)> {
        self.0
            .iter()
            .find(|(_, subject)| subject.matches(peer))
            .map(|(kind, subject)| (*kind, subject))
    }

    /// Whether `peer` may go on: allowed, or matched by no rule.
    pub fn allows(&self, peer: IpAddr) -> bool {
        !matches!(self.decide(peer), Some((RuleKind::Deny, _)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> IpMatch {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_matching_v4_and_v6() {
        assert!(m("127.0.0.0/8").matches(ip("127.1.2.3")));
        assert!(!m("127.0.0.0/8").matches(ip("128.0.0.1")));
        assert!(m("10.0.0.1").matches(ip("10.0.0.1")));
        assert!(!m("10.0.0.1").matches(ip("10.0.0.2")));
        assert!(m("2001:db8::/32").matches(ip("2001:db8:1::5")));
        assert!(!m("2001:db8::/32").matches(ip("2001:db9::5")));
        assert!(m("all").matches(ip("::1")));
        // A host-bits network is its network.
        assert!(m("192.168.1.77/24").matches(ip("192.168.1.3")));
    }

    #[test]
    fn a_mapped_v6_peer_matches_v4_rules() {
        assert!(m("127.0.0.0/8").matches(ip("::ffff:127.0.0.1")));
        assert!(!m("10.0.0.0/8").matches(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn a_bad_value_is_named() {
        let error = "10.0.0.0/33".parse::<IpMatch>().unwrap_err();
        assert!(error.contains("10.0.0.0/33"), "{error}");
        assert!("everyone"
            .parse::<IpMatch>()
            .unwrap_err()
            .contains("everyone"));
    }

    #[test]
    fn the_first_match_decides_and_no_match_allows() {
        let rules = IpRules::new(&[m("127.0.0.1")], &[m("127.0.0.0/8")]);
        assert!(rules.allows(ip("127.0.0.1")));
        assert!(!rules.allows(ip("127.0.0.2")));
        assert!(rules.allows(ip("192.0.2.1")));
        let only = IpRules::new(&[m("192.0.2.0/24")], &[m("all")]);
        assert!(only.allows(ip("192.0.2.9")));
        assert!(!only.allows(ip("198.51.100.1")));
        assert!(IpRules::default().allows(ip("::1")));
    }
}
