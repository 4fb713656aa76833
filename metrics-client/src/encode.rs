//! URL encoding byte-for-byte as Go's `net/url` does it, because the request
//! shapes are part of the contract: a metrics adapter's access log, or an
//! audit log, must not be able to tell Tidal from kube-controller-manager.
//!
//! Go differs from the `application/x-www-form-urlencoded` serializer that
//! kube uses (`form_urlencoded`) on `*` (Go escapes it) and `~` (Go keeps it),
//! and client-go escapes paths with `url.URL.EscapedPath`, which turns the
//! custom-metrics wildcard `*` into `%2A`.

use std::fmt::Write as _;

/// Go's `url.QueryEscape`: keep `A-Za-z0-9-_.~`, space becomes `+`, the rest `%XX`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Go's `url.Values.Encode` for the given pairs: sorted by key, `k=v` joined by `&`.
/// Pairs with an empty value are expected to be left out by the caller, as
/// the `omitempty` JSON tags of the metrics list options do.
pub fn encode_query(pairs: &[(&str, &str)]) -> String {
    let mut pairs: Vec<_> = pairs.to_vec();
    // Stable: Go keeps values of one key in insertion order.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&query_escape(k));
        out.push('=');
        out.push_str(&query_escape(v));
    }
    out
}

/// Go's path escaping (`shouldEscape` in `encodePath` mode): keep
/// `A-Za-z0-9-_.~$&+,/:;=@`, escape everything else, `*` and `?` included.
pub fn path_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'@' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Joins an escaped path and an encoded query into a request URI.
pub fn uri(path: &str, query: &[(&str, &str)]) -> String {
    let query: Vec<_> = query
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let mut out = path_escape(path);
    if !query.is_empty() {
        out.push('?');
        out.push_str(&encode_query(&query));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_escaped_like_go_url_values_encode() {
        assert_eq!(
            encode_query(&[("labelSelector", "app=nginx-deploy")]),
            "labelSelector=app%3Dnginx-deploy"
        );
        assert_eq!(
            encode_query(&[
                ("metricLabelSelector", "verb in (GET,PUT)"),
                ("labelSelector", "!canary,app=x"),
            ]),
            "labelSelector=%21canary%2Capp%3Dx&metricLabelSelector=verb+in+%28GET%2CPUT%29"
        );
        assert_eq!(
            query_escape("example.com/tier~a*b"),
            "example.com%2Ftier~a%2Ab"
        );
    }

    #[test]
    fn paths_escape_the_wildcard_like_client_go() {
        assert_eq!(
            path_escape("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m:x"),
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/%2A/m:x"
        );
        assert_eq!(path_escape("/a b?c%"), "/a%20b%3Fc%25");
    }

    #[test]
    fn empty_query_values_are_left_out() {
        assert_eq!(
            uri("/p", &[("labelSelector", ""), ("metricLabelSelector", "")]),
            "/p"
        );
        assert_eq!(
            uri(
                "/p",
                &[("metricLabelSelector", "a=b"), ("labelSelector", "")]
            ),
            "/p?metricLabelSelector=a%3Db"
        );
    }
}
