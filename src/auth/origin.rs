//! Which browser origins may use a cookie session (state-changing requests) and the socket.
//!
//! Allowed: the public URL's origin, each of `allowed_origins`, and a same-origin request (the
//! Origin's host:port equals the Host header), so that a LAN box reached by its IP address works
//! without configuration. A cross-site page never passes: its Origin names its own site.

use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;

use crate::config::{origin_of, Config};

#[derive(Debug, Clone)]
pub struct AllowedOrigins {
    origins: Vec<String>,
}

impl AllowedOrigins {
    pub fn from_config(config: &Config) -> AllowedOrigins {
        let mut origins: Vec<String> = std::iter::once(config.public_url())
            .chain(config.allowed_origins.iter().cloned())
            .filter_map(|o| origin_of(&o).ok())
            .collect();
        origins.dedup();
        AllowedOrigins { origins }
    }

    /// Whether a request carrying these headers may act with the browser's cookie.
    ///
    /// Without an Origin header, `Sec-Fetch-Site` decides; with neither, the client is not a
    /// browser (browsers send Origin on every POST and on WebSocket upgrades) and passes.
    pub fn permits(&self, headers: &HeaderMap) -> bool {
        match headers.get(ORIGIN).and_then(|v| v.to_str().ok()) {
            Some(origin) => {
                self.permits_origin(origin, headers.get(HOST).and_then(|v| v.to_str().ok()))
            }
            None => match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
                Some(site) => matches!(site, "same-origin" | "none"),
                None => true,
            },
        }
    }

    fn permits_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let Ok(origin) = origin_of(origin) else {
            return false;
        };
        if self.origins.contains(&origin) {
            return true;
        }
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn origin_table() {
        let config = Config {
            public_url: "https://chat.example.org".into(),
            allowed_origins: vec!["http://app.local:3000".into()],
            ..Config::default()
        };
        let allowed = AllowedOrigins::from_config(&config);
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("origin", "https://chat.example.org")], true),
            (&[("origin", "http://app.local:3000")], true),
            (
                &[
                    ("origin", "https://evil.example"),
                    ("host", "chat.example.org"),
                ],
                false,
            ),
            (
                &[
                    ("origin", "http://192.168.1.5:7878"),
                    ("host", "192.168.1.5:7878"),
                ],
                true,
            ),
            (&[("origin", "null"), ("host", "chat.example.org")], false),
            (&[("sec-fetch-site", "cross-site")], false),
            (&[("sec-fetch-site", "same-origin")], true),
            (&[], true),
        ];
        for (pairs, expected) in cases {
            assert_eq!(allowed.permits(&headers(pairs)), *expected, "{pairs:?}");
        }
    }
}
