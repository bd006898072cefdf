//! Outgoing HTTP, only to the hosts hearth's config allows for this bot
//! (`allow_hosts` under `[plugin.NAME]`).
//!
//! Hearth makes the request on the bot's behalf, with its own timeout and a cap on the size of
//! the answer; the call blocks the bot until the answer is in.

use std::fmt;

use crate::bindings::hearth::bot::http as wit;

/// An HTTP request, built with [`Request::new`] and the methods that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// GET, POST, PUT, PATCH, DELETE or HEAD.
    pub method: String,
    /// An absolute http or https URL.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if the request has one.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// This request with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// This request with a body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
}

/// The answer to a request. Any status is an answer, 404 and 500 included; only a request that
/// got no answer is an [`HttpError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values, as received.
    pub headers: Vec<(String, String)>,
    /// The body, whole (hearth refuses bodies over its configured cap).
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text; bytes that are not UTF-8 become U+FFFD.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of the first header with this name, compared without regard to case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host is not in this bot's allow list, or it resolves to a private, loopback or
    /// link-local address that hearth's config does not allow. Says which host.
    NotAllowed(String),
    /// The URL or method could not be used. Says why.
    InvalidRequest(String),
    /// No complete answer within hearth's configured time.
    Timeout,
    /// The answer's body was larger than hearth's configured cap.
    TooLarge,
    /// Connecting, TLS or reading failed. Says how.
    Connection(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::NotAllowed(detail) => write!(f, "not allowed: {detail}"),
            HttpError::InvalidRequest(detail) => write!(f, "invalid request: {detail}"),
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::TooLarge => f.write_str("response too large"),
            HttpError::Connection(detail) => write!(f, "connection failed: {detail}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Sends a request and waits for its answer.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    wit::send(&to_wit(request))
        .map(from_wit_response)
        .map_err(from_wit_error)
}

/// Sends a GET request.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(&Request::new("GET", url))
}

/// Sends a POST request with this body and `Content-Type`.
pub fn post(
    url: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Result<Response, HttpError> {
    send(
        &Request::new("POST", url)
            .header("Content-Type", content_type)
            .body(body),
    )
}

fn to_wit(request: &Request) -> wit::Request {
    wit::Request {
        method: request.method.clone(),
        url: request.url.clone(),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| wit::Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        body: request.body.clone(),
    }
}

fn from_wit_response(response: wit::Response) -> Response {
    Response {
        status: response.status,
        headers: response
            .headers
            .into_iter()
            .map(|header| (header.name, header.value))
            .collect(),
        body: response.body,
    }
}

fn from_wit_error(error: wit::HttpError) -> HttpError {
    match error {
        wit::HttpError::NotAllowed(detail) => HttpError::NotAllowed(detail),
        wit::HttpError::InvalidRequest(detail) => HttpError::InvalidRequest(detail),
        wit::HttpError::Timeout => HttpError::Timeout,
        wit::HttpError::TooLarge => HttpError::TooLarge,
        wit::HttpError::Connection(detail) => HttpError::Connection(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_carries_its_headers_and_body_across() {
        let request = Request::new("POST", "https://example.com/x")
            .header("Content-Type", "text/plain")
            .header("X-Two", "2")
            .body("hello");
        let sent = to_wit(&request);
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.url, "https://example.com/x");
        let headers: Vec<_> = sent
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(headers, [("Content-Type", "text/plain"), ("X-Two", "2")]);
        assert_eq!(sent.body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(to_wit(&Request::new("GET", "http://a")).body, None);
    }

    #[test]
    fn a_response_reads_its_status_headers_and_text() {
        let response = from_wit_response(wit::Response {
            status: 404,
            headers: vec![wit::Header {
                name: "Content-Type".into(),
                value: "text/csv".into(),
            }],
            body: b"caf\xc3\xa9 \xff".to_vec(),
        });
        assert!(!response.is_success());
        assert_eq!(response.header("content-type"), Some("text/csv"));
        assert_eq!(response.header("etag"), None);
        assert_eq!(response.text(), "café \u{fffd}");
        let cases = [
            (199, false),
            (200, true),
            (204, true),
            (299, true),
            (300, false),
        ];
        for (status, success) in cases {
            let response = Response {
                status,
                headers: Vec::new(),
                body: Vec::new(),
            };
            assert_eq!(response.is_success(), success, "status {status}");
        }
    }

    #[test]
    fn errors_convert_and_read_as_short_phrases() {
        let cases = [
            (
                wit::HttpError::NotAllowed("evil.example".into()),
                "not allowed: evil.example",
            ),
            (
                wit::HttpError::InvalidRequest("bad URL".into()),
                "invalid request: bad URL",
            ),
            (wit::HttpError::Timeout, "timed out"),
            (wit::HttpError::TooLarge, "response too large"),
            (
                wit::HttpError::Connection("refused".into()),
                "connection failed: refused",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(from_wit_error(error).to_string(), text);
        }
    }
}
