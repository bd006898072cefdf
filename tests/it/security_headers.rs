//! Browser-facing defences: the security headers on every kind of answer (UI, API, errors,
//! provider pages), no CORS for anyone, cross-site WebSocket hijacking refused at the upgrade,
//! and cookie-authenticated state changes refused from other sites.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::ws::{create_room, upgrade_answer, Upgrade};
use common::{client, code, read, TestServer, PASSWORD};
use reqwest::header::{HeaderMap, COOKIE, ORIGIN};
use reqwest::Method;
use serde_json::{json, Value};

/// The CSP's directives by name.
fn directives(csp: &str) -> Vec<(String, Vec<String>)> {
    csp.split(';')
        .filter_map(|d| {
            let mut words = d.split_whitespace();
            let name = words.next()?.to_string();
            Some((name, words.map(String::from).collect()))
        })
        .collect()
}

/// What every answer must carry; `what` names the answer in failures.
fn assert_hardened(what: &str, headers: &HeaderMap) {
    let get = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    let csp = get("content-security-policy");
    let policy = directives(&csp);
    let directive = |name: &str| {
        policy
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{what}: no {name} in {csp}"))
    };
    assert_eq!(directive("default-src"), ["'none'"], "{what}: {csp}");
    assert_eq!(directive("frame-ancestors"), ["'none'"], "{what}: {csp}");
    assert_eq!(directive("base-uri"), ["'none'"], "{what}: {csp}");
    for (name, sources) in &policy {
        for source in sources {
            assert!(
                !source.starts_with("'unsafe-") && source != "*" && !source.ends_with(':'),
                "{what}: {name} allows {source}"
            );
        }
    }
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{what}: CORS"
    );
}

#[tokio::test]
async fn every_kind_of_answer_carries_the_security_headers() {
    let server = TestServer::start_with(|c| c.http.max_body_bytes = 4096).await;
    let token = server.register("sue").await;
    let room = create_room(&server, &token, "headers").await;
    let evil = "https://evil.example";
    type Case = (&'static str, Method, String, Option<Value>, bool, u16);
    let cases: Vec<Case> = vec![
        ("UI", Method::GET, "/".into(), None, false, 200),
        (
            "UI room route",
            Method::GET,
            format!("/r/{room}"),
            None,
            false,
            200,
        ),
        (
            "UI script",
            Method::GET,
            "/js/main.js".into(),
            None,
            false,
            200,
        ),
        ("UI style", Method::GET, "/app.css".into(), None, false, 200),
        ("API", Method::GET, "/api/me".into(), None, true, 200),
        (
            "API refusal",
            Method::GET,
            "/api/me".into(),
            None,
            false,
            401,
        ),
        (
            "API created",
            Method::POST,
            "/api/rooms".into(),
            Some(json!({"name": "more"})),
            true,
            201,
        ),
        (
            "API too large",
            Method::POST,
            "/api/rooms".into(),
            Some(json!({"name": "x".repeat(5000)})),
            true,
            413,
        ),
        (
            "API unknown",
            Method::GET,
            "/api/nothing".into(),
            None,
            false,
            404,
        ),
        (
            "history",
            Method::GET,
            format!("/api/rooms/{room}/messages"),
            None,
            true,
            200,
        ),
        ("health", Method::GET, "/healthz".into(), None, false, 200),
        ("metrics", Method::GET, "/metrics".into(), None, false, 200),
        (
            "provider page",
            Method::GET,
            "/auth/nowhere/start".into(),
            None,
            false,
            404,
        ),
        (
            "upgrade from another site",
            Method::GET,
            "/ws".into(),
            None,
            false,
            403,
        ),
    ];
    for (what, method, path, body, signed_in, status) in cases {
        let mut request = client()
            .request(method, server.url(&path))
            .header(ORIGIN, evil);
        if signed_in {
            request = request.bearer_auth(&token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}");
        assert_hardened(what, response.headers());
        if path.starts_with("/api/") {
            assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
        }
    }

    // The UI's own policy is stricter still: scripts and styles from this origin only,
    // Trusted Types, and sockets to this server.
    let page = client().get(server.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    for part in [
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "require-trusted-types-for 'script'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }

    // A preflight from another site is answered without any CORS permission.
    let preflight = client()
        .request(Method::OPTIONS, server.url("/api/rooms"))
        .header(ORIGIN, evil)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn the_socket_refuses_pages_from_other_sites_whatever_they_present() {
    let server = TestServer::start_with(|c| c.public_url = "https://chat.example.org".into()).await;
    let token = server.register("wes").await;
    let own_host = server.url("");
    let foreign = [
        "https://evil.example",
        "http://chat.example.org",
        "https://chat.example.org.evil.example",
        "https://evil.chat.example.org",
        "https://chat.example.org:8443",
        "null",
        "not an origin",
    ];
    for origin in foreign {
        for (token, cookie) in [(Some(token.as_str()), None), (None, Some(token.as_str()))] {
            let up = Upgrade {
                token,
                cookie,
                origin: Some(origin),
                ..Upgrade::default()
            };
            let (status, body) = upgrade_answer(&server, up).await;
            assert_eq!((status, code(&body)), (403, "forbidden_origin"), "{origin}");
        }
    }
    for origin in [
        "https://chat.example.org",
        "https://CHAT.example.org",
        &own_host,
    ] {
        let up = Upgrade {
            cookie: Some(&token),
            origin: Some(origin),
            ..Upgrade::default()
        };
        assert_eq!(upgrade_answer(&server, up).await.0, 101, "{origin}");
    }
}

/// One request with the session cookie and the given browser headers.
async fn with_cookie(
    server: &TestServer,
    path: &str,
    body: Value,
    cookie: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = client()
        .post(server.url(path))
        .header(COOKIE, format!("hearth_session={cookie}"))
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (status, body) = read(request.send().await.unwrap()).await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn cookie_state_changes_are_refused_from_other_sites() {
    let server = TestServer::start().await;
    let own = server.url("");
    let host = own.trim_start_matches("http://").to_string();
    let cross_site: &[&[(&str, &str)]] = &[
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
    ];
    let token = server.register("cora").await;
    let routes: Vec<(&str, Value)> = vec![
        ("/api/rooms", json!({"name": "forged"})),
        (
            "/api/auth/password",
            json!({"current_password": PASSWORD, "new_password": "taken over now"}),
        ),
        ("/api/auth/providers/github/unlink", json!({})),
        ("/api/auth/logout", json!({})),
        ("/api/auth/logout-all", json!({})),
    ];
    for (path, body) in &routes {
        for headers in cross_site {
            let (status, answer) = with_cookie(&server, path, body.clone(), &token, headers).await;
            assert_eq!(
                (status, code(&answer)),
                (403, "forbidden_origin"),
                "{path} {headers:?}"
            );
        }
    }
    // Nothing happened: still signed in, still the old password, no room made.
    let (status, rooms) = server.get("/api/rooms", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(rooms["rooms"], json!([]));
    assert_eq!(server.login("cora", PASSWORD).await.0, 200);

    // The same requests from this server's own pages, or from something that is not a
    // browser, go through; and a bearer token needs no origin at all.
    let (status, _) = with_cookie(
        &server,
        "/api/rooms",
        json!({"name": "mine"}),
        &token,
        &[("origin", &own), ("host", &host)],
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = with_cookie(
        &server,
        "/api/rooms",
        json!({"name": "scripted"}),
        &token,
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) =
        with_cookie(&server, "/api/rooms", json!({"name": "curl"}), &token, &[]).await;
    assert_eq!(status, 201);
    let bearer = client()
        .post(server.url("/api/rooms"))
        .bearer_auth(&token)
        .header(ORIGIN, "https://evil.example")
        .json(&json!({"name": "app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 201);
}

/// A cross-site page can send a "simple" request without a preflight: a form post, or fetch
/// with a text/plain body. None of them can sign a browser into someone's account (login
/// CSRF) or register one, since the API takes JSON bodies only.
#[tokio::test]
async fn simple_cross_site_posts_cannot_sign_anyone_in() {
    let server = TestServer::start().await;
    server.register("vic").await;
    let json_text = json!({"username": "vic", "password": PASSWORD}).to_string();
    for path in ["/api/auth/login", "/api/auth/register"] {
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let response = client()
                .post(server.url(path))
                .header(ORIGIN, "https://evil.example")
                .header("content-type", content_type)
                .body(json_text.clone())
                .send()
                .await
                .unwrap();
            assert!(
                response.headers().get("set-cookie").is_none(),
                "{path} {content_type}"
            );
            let (status, body) = read(response).await;
            assert_eq!(
                (status.as_u16(), code(&body)),
                (400, "bad_request"),
                "{path} {content_type}"
            );
        }
    }
}
