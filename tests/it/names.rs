//! Names others are shown cannot be made to look like someone else's (issue 16): usernames are
//! checked before they are lower-cased, room names lose invisible characters, and reactions are
//! real emoji only. (Display names from providers: tests/it/oauth.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::ws::{create_room, http_post, WsClient};
use common::{code, TestServer, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn usernames_are_checked_before_they_are_lower_cased() {
    let server = TestServer::start().await;
    // The Kelvin sign lower-cases to an ASCII `k`: checked after lower-casing it passed as
    // "kate", and was shown as a look-alike.
    for name in ["\u{212A}ate", "ali\u{200B}ce", "\u{0391}lice"] {
        let body = json!({"username": name, "password": PASSWORD});
        let (status, body) = server.post("/api/auth/register", body, None).await;
        assert_eq!(
            (status.as_u16(), code(&body)),
            (400, "invalid_username"),
            "{name:?}"
        );
    }
    // ASCII capitals are still fine, and lower-cased.
    let body = json!({"username": "Kate", "password": PASSWORD});
    let (status, body) = server.post("/api/auth/register", body, None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["username"], "kate");
}

#[tokio::test]
async fn room_names_lose_invisible_characters() {
    let server = TestServer::start().await;
    let token = server.register("rhea").await;
    let (status, body) = http_post(
        &server,
        "/api/rooms",
        json!({"name": "\u{202E}Team\u{200B} ｃｈａｔ"}),
        Some(&token),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["room"]["name"], "Team chat");
    // A name of nothing but invisible characters is no name.
    let (status, body) = http_post(
        &server,
        "/api/rooms",
        json!({"name": "\u{200B}\u{202E}"}),
        Some(&token),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn reactions_are_real_emoji_only() {
    let server = TestServer::start().await;
    let token = server.register("sven").await;
    let room = create_room(&server, &token, "reactions").await;
    let mut client = WsClient::connect(&server, &token).await;
    client.join(&room).await;
    let ack = client
        .request(json!({"type": "send", "room": room, "text": "react to me"}))
        .await;
    let seq = ack["seq"].clone();
    let react = |emoji: &str| json!({"type": "react", "room": room, "seq": seq, "emoji": emoji, "on": true});
    for text in ["ok", "\u{202E}", "\u{200B}", "👍\u{202E}", "a", "👍👎"] {
        let answer = client.request(react(text)).await;
        assert_eq!(answer["type"], "error", "{text:?}: {answer}");
        assert_eq!(answer["code"], "bad_request", "{text:?}");
    }
    for emoji in ["👍", "👍🏽", "👩‍💻", "🇫🇷", "❤️"] {
        let answer = client.request(react(emoji)).await;
        assert_eq!(answer["type"], "ok", "{emoji:?}: {answer}");
    }
}
