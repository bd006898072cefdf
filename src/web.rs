//! The web UI embedded in the binary. Known files are served with their type; any other path
//! outside `/api` gets `index.html`, so client routes such as `/r/CODE` work on reload.
//!
//! Every answer carries the UI's security headers: a strict Content-Security-Policy (scripts,
//! styles and connections from this origin only, no inline script or style, no plugins, no
//! framing, Trusted Types required so no code path can assign HTML: the one policy allowed,
//! `hearth-sw`, makes the service worker's address and nothing else). The headers every answer
//! carries (`X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `nosniff`) are set by
//! the router's middleware (`app`), as for every other answer.
//!
//! Caching: every file is `no-cache` with a weak `ETag` (its SHA-256), so a reload costs a 304
//! per file and a new release shows at once. Compression: text files are compressed (brotli at
//! quality 9: within 6% of the best, at a tenth of its time; else gzip, as the browser accepts)
//! once per file version and kept in memory, all of them as the server starts
//! ([`precompress`]).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    HOST, IF_NONE_MATCH, VARY,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "assets/"]
struct Assets;

/// The UI's whole size budget: every embedded file together, uncompressed.
pub const UI_BUDGET_BYTES: usize = 184_000;

/// The policy without `connect-src`, which names the socket's origin (see [`csp`]).
const CSP_BASE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; media-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'; object-src 'none'; \
     require-trusted-types-for 'script'; trusted-types hearth-sw";

pub async fn serve_asset(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    let file = match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(file) => file,
        None => match Assets::get("index.html") {
            Some(index) => index,
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    respond(file, &headers).await
}

/// The app icon with a count on it, for the tab of a page with unread messages:
/// `/icons/badge/7.svg`, or `/icons/badge/7m.svg` when one of them mentions the reader (a red
/// badge); counts above 99 are `99+`. Drawn here rather than by the page, whose policy allows
/// images from this origin only.
pub async fn serve_badge(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((count, mention)) = badge_label(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(icon) = Assets::get("icons/icon.svg") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let svg = badge_svg(&String::from_utf8_lossy(&icon.data), count, mention);
    let mut response = svg.into_response();
    let answer = response.headers_mut();
    answer.insert(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    answer.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    if let Ok(value) = HeaderValue::from_str(&csp(headers.get(HOST))) {
        answer.insert(CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// `7.svg` is (`7`, no mention), `7m.svg` (`7`, mention), `99+.svg` the most; else none.
fn badge_label(name: &str) -> Option<(&str, bool)> {
    let stem = name.strip_suffix(".svg")?;
    let (count, mention) = match stem.strip_suffix('m') {
        Some(count) => (count, true),
        None => (stem, false),
    };
    let number = !count.starts_with('0')
        && count.len() <= 2
        && count.bytes().all(|b| b.is_ascii_digit())
        && !count.is_empty();
    (number || count == "99+").then_some((count, mention))
}

fn badge_svg(icon: &str, count: &str, mention: bool) -> String {
    let shapes = icon.trim_end().trim_end_matches("</svg>");
    let fill = if mention { "#c5221f" } else { "#1f2937" };
    let size = if count.len() > 2 { 14 } else { 20 };
    format!(
        "{shapes}  <circle cx=\"44\" cy=\"20\" r=\"19\" fill=\"{fill}\" stroke=\"#fff\" stroke-width=\"3\"/>\n  \
         <text x=\"44\" y=\"27\" text-anchor=\"middle\" font-family=\"sans-serif\" font-weight=\"700\" \
         font-size=\"{size}\" fill=\"#fff\">{count}</text>\n</svg>\n"
    )
}

/// Sizes of every embedded file, for the budget test and the docs.
pub fn asset_sizes() -> Vec<(String, usize)> {
    Assets::iter()
        .filter_map(|name| Assets::get(&name).map(|f| (name.to_string(), f.data.len())))
        .collect()
}

async fn respond(file: rust_embed::EmbeddedFile, request: &HeaderMap) -> Response {
    let hash = file.metadata.sha256_hash();
    let etag = etag_of(&hash);
    let mime = file.metadata.mimetype().to_string();
    let compressible = is_text(&mime);
    let unchanged = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let encoding = if compressible {
            preferred_encoding(request)
        } else {
            None
        };
        let body = match encoding {
            Some(encoding) => compressed(hash, file.data.clone().into_owned(), encoding)
                .await
                .map(|bytes| (bytes, encoding)),
            None => None,
        };
        let mut response = match body {
            Some((bytes, encoding)) => {
                let mut response = bytes.into_response();
                response
                    .headers_mut()
                    .insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.name()));
                response
            }
            None => file.data.into_owned().into_response(),
        };
        if let Ok(value) = HeaderValue::from_str(&mime) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    };
    let headers = response.headers_mut();
    // The page itself and every file are revalidated, so a new release shows at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if compressible {
        headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&csp(request.get(HOST))) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    // X-Frame-Options, Referrer-Policy and nosniff come from the router's middleware, which
    // sets them on every answer.
    response
}

/// A weak tag: compression changes the bytes on the wire, not the file.
fn etag_of(hash: &[u8; 32]) -> String {
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

fn is_text(mime: &str) -> bool {
    mime.starts_with("text/")
        || ["javascript", "json", "svg", "manifest"]
            .iter()
            .any(|kind| mime.contains(kind))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// Brotli if the request accepts it, else gzip, else none (`q=0` refuses a coding).
fn preferred_encoding(request: &HeaderMap) -> Option<Encoding> {
    let accepted: Vec<String> = request
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let name = pieces.next()?.trim().to_ascii_lowercase();
            let refused = pieces.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (!refused).then_some(name)
        })
        .collect();
    [Encoding::Brotli, Encoding::Gzip]
        .into_iter()
        .find(|e| accepted.iter().any(|a| a == e.name()))
}

type Cache = Mutex<HashMap<([u8; 32], Encoding), Option<Bytes>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

fn cached(hash: [u8; 32], encoding: Encoding) -> Option<Option<Bytes>> {
    cache()
        .lock()
        .ok()
        .and_then(|map| map.get(&(hash, encoding)).cloned())
}

fn keep(hash: [u8; 32], encoding: Encoding, body: Option<Bytes>) {
    if let Ok(mut map) = cache().lock() {
        map.insert((hash, encoding), body);
    }
}

/// The file compressed with `encoding`, computed once per file version (by hash); `None` when
/// compressing does not make it smaller.
async fn compressed(hash: [u8; 32], data: Vec<u8>, encoding: Encoding) -> Option<Bytes> {
    if let Some(hit) = cached(hash, encoding) {
        return hit;
    }
    let body = tokio::task::spawn_blocking(move || compress(&data, encoding))
        .await
        .ok()
        .flatten();
    keep(hash, encoding, body.clone());
    body
}

/// Compresses every text file both ways on a blocking thread, so that the first visitor after a
/// start does not wait for it (brotli takes tens of milliseconds for the largest module, more
/// on a small board). A request that comes first compresses its file itself, as before.
pub fn precompress() {
    tokio::task::spawn_blocking(|| {
        for name in Assets::iter() {
            let Some(file) = Assets::get(&name) else {
                continue;
            };
            if !is_text(file.metadata.mimetype()) {
                continue;
            }
            let hash = file.metadata.sha256_hash();
            for encoding in [Encoding::Brotli, Encoding::Gzip] {
                if cached(hash, encoding).is_none() {
                    keep(hash, encoding, compress(&file.data, encoding));
                }
            }
        }
    });
}

fn compress(data: &[u8], encoding: Encoding) -> Option<Bytes> {
    use std::io::Write;
    let out = match encoding {
        Encoding::Brotli => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: 9,
                lgwin: 22,
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params).ok()?;
            out
        }
        Encoding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(data).ok()?;
            encoder.finish().ok()?
        }
    };
    (out.len() < data.len()).then(|| Bytes::from(out))
}

/// The policy. `connect-src 'self'` covers the socket in current browsers; older ones (Safari
/// before 15.4) need the ws/wss origin spelled out, taken from `Host` when it is a plain
/// host[:port] (anything else could smuggle directives, so it is left out).
fn csp(host: Option<&HeaderValue>) -> String {
    let host = host
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!("{CSP_BASE}; connect-src 'self'{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_names() {
        let table = [
            ("7.svg", Some(("7", false))),
            ("7m.svg", Some(("7", true))),
            ("42.svg", Some(("42", false))),
            ("99+m.svg", Some(("99+", true))),
            ("0.svg", None),
            ("07.svg", None),
            ("100.svg", None),
            ("m.svg", None),
            ("7", None),
            ("7x.svg", None),
            ("<script>.svg", None),
        ];
        for (name, expected) in table {
            assert_eq!(badge_label(name), expected, "{name}");
        }
        let icon = Assets::get("icons/icon.svg").expect("the icon");
        let svg = badge_svg(&String::from_utf8_lossy(&icon.data), "99+", true);
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert_eq!(svg.matches("</svg>").count(), 1, "{svg}");
        assert!(
            svg.contains(">99+</text>") && svg.contains("#c5221f"),
            "{svg}"
        );
    }

    #[test]
    fn the_whole_ui_fits_the_budget() {
        let sizes = asset_sizes();
        assert!(sizes.iter().any(|(name, _)| name == "index.html"));
        let total: usize = sizes.iter().map(|(_, size)| size).sum();
        assert!(
            total <= UI_BUDGET_BYTES,
            "the UI is {total} bytes, over its budget of {UI_BUDGET_BYTES}: {sizes:?}"
        );
    }

    /// Text is put in the page as text only; HTML sinks would also be refused at run time by
    /// the Trusted Types policy, and inline script or style would be refused by the CSP.
    #[test]
    fn no_html_sinks_and_nothing_inline() {
        let sinks = [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute('style'",
            "createHTML",
            "createScript(",
            "setAttribute(\"style\"",
        ];
        for name in Assets::iter() {
            let Some(file) = Assets::get(&name) else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(&file.data) else {
                continue;
            };
            if name.ends_with(".js") {
                for sink in sinks {
                    assert!(!text.contains(sink), "{name} uses {sink}");
                }
            }
            if name.ends_with(".html") {
                assert!(!text.contains(" style="), "{name} has an inline style");
                assert!(!text.contains("<style"), "{name} has an inline stylesheet");
                for tag in text.split("<script").skip(1) {
                    assert!(tag.contains("src="), "{name} has an inline script");
                }
                for event in [" onclick=", " onload=", " onerror=", " onsubmit="] {
                    assert!(!text.contains(event), "{name} has an inline handler");
                }
            }
        }
    }

    /// Every file the page or a module names is embedded (a typo would otherwise get
    /// index.html back, refused by nosniff).
    #[test]
    fn every_referenced_file_exists() {
        let names: Vec<String> = Assets::iter().map(|n| n.to_string()).collect();
        for name in &names {
            let Some(file) = Assets::get(name) else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(&file.data) else {
                continue;
            };
            let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            for quote in ['"', '\''] {
                for piece in text.split(quote).skip(1).step_by(2) {
                    let looks_local = (piece.starts_with("./") || piece.starts_with('/'))
                        && [".js", ".css", ".png", ".svg", ".webmanifest"]
                            .iter()
                            .any(|ext| piece.ends_with(ext));
                    if !looks_local {
                        continue;
                    }
                    let target = match piece.strip_prefix("./") {
                        Some(rest) if dir.is_empty() => rest.to_string(),
                        Some(rest) => format!("{dir}/{rest}"),
                        None => piece.trim_start_matches('/').to_string(),
                    };
                    assert!(
                        names.contains(&target),
                        "{name} refers to {piece}, which is not embedded"
                    );
                }
            }
        }
    }

    #[test]
    fn policy_names_a_plain_host_only() {
        let plain = HeaderValue::from_static("192.168.1.5:7878");
        assert!(csp(Some(&plain))
            .ends_with("connect-src 'self' ws://192.168.1.5:7878 wss://192.168.1.5:7878"));
        let sneaky = HeaderValue::from_static("evil; script-src *");
        assert!(csp(Some(&sneaky)).ends_with("connect-src 'self'"));
        assert!(csp(None).contains("frame-ancestors 'none'"));
    }

    #[test]
    fn weak_etag_from_hash() {
        let tag = etag_of(&[0xab; 32]);
        assert_eq!(tag, format!("W/\"{}\"", "ab".repeat(16)));
    }

    #[test]
    fn encoding_follows_accept_encoding() {
        let pick = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(value));
            preferred_encoding(&headers)
        };
        assert_eq!(pick("gzip, deflate, br, zstd"), Some(Encoding::Brotli));
        assert_eq!(pick("gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("br;q=0, gzip;q=0.5"), Some(Encoding::Gzip));
        assert_eq!(pick("identity"), None);
        assert_eq!(preferred_encoding(&HeaderMap::new()), None);
    }

    #[test]
    fn compressed_files_decompress_to_the_original() {
        use std::io::Read;
        let data = b"hearth ".repeat(500);
        let gz = compress(&data, Encoding::Gzip).expect("smaller");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .expect("gzip");
        assert_eq!(back, data);
        let br = compress(&data, Encoding::Brotli).expect("smaller");
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut back).expect("brotli");
        assert_eq!(back, data);
        assert!(compress(b"x", Encoding::Gzip).is_none(), "not smaller");
    }
}
