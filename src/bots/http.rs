//! Outgoing HTTP for plugins: only to the hosts their `[plugin.NAME]` config allows, never to
//! loopback, private or link-local addresses unless it says so, with a time limit and a cap on
//! the answer's size.
//!
//! Addresses are checked where names are resolved (a custom resolver), so a host name that
//! resolves to 127.0.0.1 is refused as surely as the literal, and the check holds for the
//! address actually connected to. Redirects are followed only to allowed hosts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::runtime::hearth::bot::http::{Header, HttpError, Request, Response};
use super::BotError;
use crate::config::{BotsConfig, PluginConfig};

/// Headers a plugin may send in one request.
const MAX_REQUEST_HEADERS: usize = 32;
const MAX_REDIRECTS: usize = 5;

/// One plugin's HTTP client and its grants.
pub struct PluginHttp {
    client: reqwest::Client,
    allowed: Arc<AllowList>,
    timeout: Duration,
    max_bytes: u64,
}

struct AllowList {
    hosts: Vec<String>,
    private_addresses: bool,
}

impl AllowList {
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn address_allowed(&self, ip: IpAddr) -> bool {
        self.private_addresses || is_public(ip)
    }
}

impl PluginHttp {
    pub fn new(plugin: &PluginConfig, bots: &BotsConfig) -> Result<PluginHttp, BotError> {
        let allowed = Arc::new(AllowList {
            hosts: plugin
                .allow_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            private_addresses: plugin.allow_private_addresses,
        });
        let redirect_allowed = allowed.clone();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver {
                allowed: allowed.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let allowed = attempt
                    .url()
                    .host_str()
                    .is_some_and(|h| redirect_allowed.host_allowed(h))
                    && literal_allowed(attempt.url(), &redirect_allowed);
                if attempt.previous().len() >= MAX_REDIRECTS || !allowed {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("hearth-bot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BotError::Engine(format!("cannot build an HTTP client: {e}")))?;
        Ok(PluginHttp {
            client,
            allowed,
            timeout: Duration::from_millis(bots.http_timeout_ms),
            max_bytes: bots.http_max_response_bytes,
        })
    }

    pub async fn send(&self, request: Request) -> Result<Response, HttpError> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest("only http and https URLs".into()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| HttpError::InvalidRequest("the URL has no host".into()))?;
        if !self.allowed.host_allowed(host) {
            return Err(HttpError::NotAllowed(format!(
                "{host} is not in this plugin's allow_hosts"
            )));
        }
        if !literal_allowed(&url, &self.allowed) {
            return Err(HttpError::NotAllowed(format!(
                "{host} is a private, loopback or link-local address"
            )));
        }
        let builder = self.build(url, request)?;
        match tokio::time::timeout(self.timeout, self.fetch(builder)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(HttpError::Timeout),
        }
    }

    fn build(
        &self,
        url: reqwest::Url,
        request: Request,
    ) -> Result<reqwest::RequestBuilder, HttpError> {
        let method = match request.method.to_ascii_uppercase().as_str() {
            "GET" => reqwest::Method::GET,
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "PATCH" => reqwest::Method::PATCH,
            "DELETE" => reqwest::Method::DELETE,
            "HEAD" => reqwest::Method::HEAD,
            other => {
                return Err(HttpError::InvalidRequest(format!(
                    "method {other:?} is not one of GET, POST, PUT, PATCH, DELETE, HEAD"
                )))
            }
        };
        if request.headers.len() > MAX_REQUEST_HEADERS {
            return Err(HttpError::InvalidRequest(format!(
                "at most {MAX_REQUEST_HEADERS} headers"
            )));
        }
        let mut builder = self.client.request(method, url);
        for Header { name, value } in request.headers {
            // The connection goes to the URL's host; a Host header must not say otherwise.
            if name.eq_ignore_ascii_case("host") {
                continue;
            }
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name {name:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header {name}")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            if body.len() as u64 > self.max_bytes {
                return Err(HttpError::InvalidRequest(format!(
                    "request bodies are at most {} bytes",
                    self.max_bytes
                )));
            }
            builder = builder.body(body);
        }
        Ok(builder)
    }

    async fn fetch(&self, builder: reqwest::RequestBuilder) -> Result<Response, HttpError> {
        let mut response = builder.send().await.map_err(request_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.to_string(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes)
        {
            return Err(HttpError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A URL whose host is an IP literal never reaches the resolver: check it here.
fn literal_allowed(url: &reqwest::Url, allowed: &AllowList) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => allowed.address_allowed(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => allowed.address_allowed(IpAddr::V6(ip)),
        _ => true,
    }
}

fn request_error(error: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return HttpError::NotAllowed(refused.to_string());
        }
        source = e.source();
    }
    if error.is_timeout() {
        return HttpError::Timeout;
    }
    HttpError::Connection(error_chain(&error))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private, loopback or link-local addresses")]
struct RefusedAddress(String);

struct CheckedResolver {
    allowed: Arc<AllowList>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allowed.address_allowed(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(RefusedAddress(host)) as Box<_>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), unspecified, broadcast, multicast, documentation or unique-local.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        let cases = [
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("2606:4700::1111", true),
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("::1", false),
            ("::", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:8.8.8.8", true),
        ];
        for (ip, public) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(is_public(ip), public, "{ip}");
        }
    }

    #[test]
    fn hosts_match_exactly_and_without_brackets() {
        let list = AllowList {
            hosts: vec!["stooq.com".into(), "::1".into()],
            private_addresses: false,
        };
        assert!(list.host_allowed("stooq.com"));
        assert!(list.host_allowed("STOOQ.com"));
        assert!(list.host_allowed("[::1]"));
        assert!(!list.host_allowed("evil.stooq.com"));
        assert!(!list.host_allowed("stooq.com.evil"));
    }
}
