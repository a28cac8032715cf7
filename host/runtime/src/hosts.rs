//! `allowed_outbound_hosts` patterns: `scheme://host:port`.
//!
//! - scheme: `http`, `https` or `*`;
//! - host: a name or IP (`api.mail.example`, `127.0.0.1`, `[::1]`), or
//!   `*.domain` for any subdomain of `domain` (not `domain` itself). A bare
//!   `*` is refused: it would turn the allow-list off;
//! - port: a number or `*`; it may be left out for `http` (80) and `https`
//!   (443).

use std::fmt;
use std::str::FromStr;

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: SchemePattern,
    host: HostMatch,
    port: Option<u16>,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemePattern {
    Http,
    Https,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// Any host ending in `.{suffix}`.
    Subdomain(String),
}

impl HostPattern {
    /// Whether a request to `scheme://host:port` is allowed. `host` is
    /// compared case-insensitively.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match self.scheme {
            SchemePattern::Http => scheme.eq_ignore_ascii_case("http"),
            SchemePattern::Https => scheme.eq_ignore_ascii_case("https"),
            SchemePattern::Any => {
                scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
            }
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host_ok = match &self.host {
            HostMatch::Exact(h) => *h == host,
            HostMatch::Subdomain(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        };
        scheme_ok && host_ok && self.port.is_none_or(|p| p == port)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("expected `scheme://host:port`")?;
        let scheme = match scheme {
            "http" => SchemePattern::Http,
            "https" => SchemePattern::Https,
            "*" => SchemePattern::Any,
            other => return Err(format!("scheme `{other}` is not one of http, https, *")),
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err("give only scheme, host and port: no path, query or user".into());
        }
        let (host, port) = split_host_port(rest)?;
        let host = host.to_ascii_lowercase();
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        let host = if host == "*" {
            return Err("a bare `*` host would allow every host; list the hosts".into());
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(format!(
                    "`{host}` is not a valid wildcard; use `*.example.com`"
                ));
            }
            HostMatch::Subdomain(suffix.to_owned())
        } else if host.contains('*') {
            return Err(format!(
                "`*` may only stand first, as in `*.example.com`, not in `{host}`"
            ));
        } else {
            HostMatch::Exact(host)
        };
        let port = match port {
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535 or `*`"))?,
            ),
            None => match scheme {
                SchemePattern::Http => Some(80),
                SchemePattern::Https => Some(443),
                SchemePattern::Any => {
                    return Err("with scheme `*` give a port (a number or `*`)".into());
                }
            },
        };
        Ok(HostPattern {
            scheme,
            host,
            port,
            text: text.to_owned(),
        })
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("unclosed `[` in IPv6 address")?;
        return match after {
            "" => Ok((addr, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((addr, Some(port))),
                None => Err(format!("unexpected `{after}` after the IPv6 address")),
            },
        };
    }
    Ok(match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> HostPattern {
        text.parse().unwrap()
    }

    #[test]
    fn an_exact_host_allows_only_that_scheme_host_and_port() {
        let pattern = p("https://api.mail.example:443");
        assert!(pattern.allows("https", "API.mail.example", 443));
        assert!(!pattern.allows("http", "api.mail.example", 443));
        assert!(!pattern.allows("https", "api.mail.example", 8443));
        assert!(!pattern.allows("https", "evil.example", 443));
        assert!(!pattern.allows("https", "api.mail.example.evil.example", 443));
    }

    #[test]
    fn the_default_port_follows_the_scheme() {
        assert!(p("https://x.example").allows("https", "x.example", 443));
        assert!(!p("https://x.example").allows("https", "x.example", 80));
        assert!(p("http://x.example").allows("http", "x.example", 80));
    }

    #[test]
    fn a_wildcard_matches_subdomains_but_not_the_domain_or_look_alikes() {
        let pattern = p("https://*.mail.example");
        assert!(pattern.allows("https", "eu.mail.example", 443));
        assert!(pattern.allows("https", "a.b.mail.example", 443));
        assert!(!pattern.allows("https", "mail.example", 443));
        assert!(!pattern.allows("https", "evilmail.example", 443));
    }

    #[test]
    fn any_port_and_any_scheme_can_be_allowed_explicitly() {
        let pattern = p("*://127.0.0.1:*");
        assert!(pattern.allows("http", "127.0.0.1", 8025));
        assert!(pattern.allows("https", "127.0.0.1", 1));
        assert!(!pattern.allows("http", "127.0.0.2", 8025));
        assert!(p("http://[::1]:8080").allows("http", "::1", 8080));
    }

    #[test]
    fn patterns_that_would_open_the_allow_list_or_are_malformed_are_refused() {
        for (text, expected) in [
            ("https://*", "bare `*`"),
            ("https://*:443", "bare `*`"),
            ("https://api.*.example", "may only stand first"),
            ("api.example", "expected `scheme://host:port`"),
            ("ftp://x:21", "scheme `ftp`"),
            ("https://x.example/v1", "no path"),
            ("https://x.example:0", "port `0`"),
            ("https://x.example:http", "port `http`"),
            ("*://x.example", "give a port"),
            ("https://[::1", "unclosed"),
        ] {
            let err = text.parse::<HostPattern>().unwrap_err();
            assert!(err.contains(expected), "`{text}` gave `{err}`");
        }
    }
}
