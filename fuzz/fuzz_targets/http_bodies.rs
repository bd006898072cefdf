//! Arbitrary bodies, queries and path segments sent to the JSON API through the real router,
//! with a real store in a temporary directory. The first byte picks the endpoint (and whether
//! the body claims to be JSON); the rest is the body, query or segment. The server must never
//! fail (no 5xx), every refusal must be a JSON error with a code, and a successful sign-in
//! must hand out a token.
#![no_main]

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use hearth::config::Config;
use hearth::Server;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_service::Service;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Router,
    token: String,
    room: String,
    _server: Server,
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

fn request(
    method: Method,
    uri: &str,
    body: Vec<u8>,
    json: bool,
    token: Option<&str>,
) -> Option<Request<Body>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    if json {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::from(body)).ok()
}

fn send(
    runtime: &tokio::runtime::Runtime,
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, Vec<u8>) {
    runtime.block_on(async {
        let mut app = app.clone();
        let response = app.call(request).await.unwrap_or_else(|e| match e {});
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a readable answer");
        (status, body.to_vec())
    })
}

fn open() -> Fixture {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("hearth-fuzz-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config {
        data_dir: dir,
        ..Config::default()
    };
    // Nothing here is about the abuse limits; an input should mean the same whenever it runs.
    config.auth.registrations_per_ip_per_hour = 0;
    config.auth.login_max_failures_per_ip = 0;
    config.auth.login_max_failures_per_user = 0;
    config.rooms.creations_per_user_per_hour = 0;
    config.rooms.unknown_code_max_per_ip = 0;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let server = {
        let _entered = runtime.enter();
        Server::open(config).expect("the server opens")
    };
    let app = server.app();
    let credentials = br#"{"username": "fuzzer", "password": "correct horse battery"}"#.to_vec();
    let register =
        request(Method::POST, "/api/auth/register", credentials, true, None).expect("request");
    let (status, body) = send(&runtime, &app, register);
    assert_eq!(status, StatusCode::CREATED);
    let body: Value = serde_json::from_slice(&body).expect("json");
    let token = body["token"].as_str().expect("a token").to_string();
    let new_room = request(
        Method::POST,
        "/api/rooms",
        br#"{"name": "fuzz"}"#.to_vec(),
        true,
        Some(&token),
    )
    .expect("request");
    let (status, body) = send(&runtime, &app, new_room);
    assert_eq!(status, StatusCode::CREATED);
    let body: Value = serde_json::from_slice(&body).expect("json");
    let room = body["room"]["code"].as_str().expect("a code").to_string();
    Fixture {
        runtime,
        app,
        token,
        room,
        _server: server,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut guard = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    let fixture = guard.get_or_insert_with(open);
    let token = Some(fixture.token.as_str());
    let json = selector & 0x80 == 0;
    let text = String::from_utf8_lossy(rest);
    let built = match selector & 0x7 {
        0 => request(
            Method::POST,
            "/api/auth/register",
            rest.to_vec(),
            json,
            None,
        ),
        1 => request(Method::POST, "/api/auth/login", rest.to_vec(), json, None),
        2 => request(Method::POST, "/api/rooms", rest.to_vec(), json, token),
        // A current password the fuzzer would have to guess: the session survives.
        3 => request(
            Method::POST,
            "/api/auth/password",
            rest.to_vec(),
            json,
            token,
        ),
        4 => {
            let uri = format!("/api/rooms/{}/messages?{text}", fixture.room);
            request(Method::GET, &uri, Vec::new(), false, token)
        }
        5 => {
            let uri = format!("/api/rooms/{text}");
            request(Method::GET, &uri, Vec::new(), false, token)
        }
        6 => {
            let uri = format!("/api/auth/providers/{text}/unlink");
            request(Method::POST, &uri, Vec::new(), json, token)
        }
        _ => {
            let uri = format!("/api/rooms/{}?{text}", fixture.room);
            request(Method::GET, &uri, rest.to_vec(), json, token)
        }
    };
    // Not every byte string makes a URI; those never reach a server.
    let Some(built) = built else {
        return;
    };
    let (status, body) = send(&fixture.runtime, &fixture.app, built);
    assert!(
        !status.is_server_error(),
        "{status} for selector {selector}, input {text:?}: {}",
        String::from_utf8_lossy(&body)
    );
    if status.is_client_error() {
        let error: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
            panic!("{status} without JSON: {}", String::from_utf8_lossy(&body))
        });
        assert!(error["error"]["code"].is_string(), "{status}: {error}");
        assert!(error["error"]["message"].is_string(), "{status}: {error}");
    }
    if status.is_success() && selector & 0x7 <= 1 {
        let signed_in: Value = serde_json::from_slice(&body).expect("json");
        assert!(signed_in["token"].is_string(), "{signed_in}");
    }
});
