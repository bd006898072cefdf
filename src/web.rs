//! The web UI embedded in the binary. Known files are served with their type; any other path
//! outside `/api` gets `index.html`, so client routes such as `/r/CODE` work on reload.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "assets/"]
struct Assets;

pub async fn serve_asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(file) => respond(file, "public, max-age=3600"),
        None => match Assets::get("index.html") {
            // The page itself is never cached, so a new release shows at once.
            Some(index) => respond(index, "no-cache"),
            None => StatusCode::NOT_FOUND.into_response(),
        },
    }
}

fn respond(file: rust_embed::EmbeddedFile, cache: &'static str) -> Response {
    let mime = file.metadata.mimetype().to_string();
    let mut response = file.data.into_owned().into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&mime) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
