//! The authorization matrix: every HTTP route and every socket frame type, tried by six kinds
//! of caller — nobody signed in, a revoked session, a signed-in user who is not a member of the
//! room, a user banned from it, a member, and its host — against one table of expected
//! answers. Every cell is tried and every mismatch is reported together, with the whole row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::fmt;

use common::ws::{create_room, upgrade_status, Upgrade, WsClient};
use common::{client, read, TestServer, PASSWORD};
use hearth::config::{GithubConfig, Secret};
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Revoked,
    NonMember,
    Banned,
    Member,
    Host,
}

const EVERYONE: [Who; 6] = [
    Who::Anonymous,
    Who::Revoked,
    Who::NonMember,
    Who::Banned,
    Who::Member,
    Who::Host,
];

/// The four callers that can open a socket.
const SIGNED_IN: [Who; 4] = [Who::NonMember, Who::Banned, Who::Member, Who::Host];

/// What a cell expects: an HTTP status with the error code (`""` when the answer is not an
/// error), or on the socket the answer's `type`, and for an error its `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Http(u16, String),
    Frame(String),
    Error(String),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Http(status, code) if code.is_empty() => write!(f, "{status}"),
            Answer::Http(status, code) => write!(f, "{status} {code}"),
            Answer::Frame(kind) => write!(f, "{kind}"),
            Answer::Error(code) => write!(f, "error {code}"),
        }
    }
}

fn http(status: u16) -> Answer {
    Answer::Http(status, String::new())
}

fn refused(status: u16, code: &str) -> Answer {
    Answer::Http(status, code.into())
}

#[allow(non_snake_case)]
fn F(kind: &str) -> Answer {
    Answer::Frame(kind.into())
}

#[allow(non_snake_case)]
fn E(code: &str) -> Answer {
    Answer::Error(code.into())
}

/// An HTTP row: the same answer for every signed-in caller, another for the two who are not.
fn signed_in_row(signed_out: Answer, signed_in: Answer) -> [Answer; 6] {
    [
        signed_out.clone(),
        signed_out,
        signed_in.clone(),
        signed_in.clone(),
        signed_in.clone(),
        signed_in,
    ]
}

fn same_row(answer: Answer) -> [Answer; 6] {
    signed_in_row(answer.clone(), answer)
}

/// An HTTP row about the shared room: members and the host see it, others are refused.
fn room_row(ok: u16) -> [Answer; 6] {
    [
        unauthenticated(),
        unauthenticated(),
        refused(403, "not_member"),
        refused(403, "not_member"),
        http(ok),
        http(ok),
    ]
}

fn unauthenticated() -> Answer {
    refused(401, "unauthenticated")
}

/// The people of the matrix. Roles are per room: `hana` hosts, `milo` is a member, `boris`
/// was kicked (so banned), `nora` never joined; `rex`'s session was logged out.
struct Cast {
    hana: String,
    mo: String,
    bo: String,
    nora: String,
    rex: String,
    /// Appended to every name, so that several casts can share a server.
    tag: String,
}

impl Cast {
    async fn new(server: &TestServer, tag: &str) -> Cast {
        let rex = server.register(&format!("rex{tag}")).await;
        let (status, _) = server.post("/api/auth/logout", json!({}), Some(&rex)).await;
        assert_eq!(status, 204, "rex's session ends");
        Cast {
            hana: server.register(&format!("hana{tag}")).await,
            mo: server.register(&format!("milo{tag}")).await,
            bo: server.register(&format!("boris{tag}")).await,
            nora: server.register(&format!("nora{tag}")).await,
            rex,
            tag: tag.into(),
        }
    }

    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Anonymous => None,
            Who::Revoked => Some(&self.rex),
            Who::NonMember => Some(&self.nora),
            Who::Banned => Some(&self.bo),
            Who::Member => Some(&self.mo),
            Who::Host => Some(&self.hana),
        }
    }

    /// A fresh room: hana hosts, milo is a member, boris was kicked. Answers its code and the
    /// (still open) sockets of the three.
    async fn room(&self, server: &TestServer, name: &str) -> (String, Vec<WsClient>) {
        let code = create_room(server, &self.hana, name).await;
        let mut host = WsClient::connect(server, &self.hana).await;
        host.join(&code).await;
        let mut member = WsClient::connect(server, &self.mo).await;
        member.join(&code).await;
        let mut banned = WsClient::connect(server, &self.bo).await;
        banned.join(&code).await;
        let kicked = host
            .request(json!({"type": "kick", "room": code, "user": format!("boris{}", self.tag)}))
            .await;
        assert_eq!(kicked["type"], "ok", "set-up kick: {kicked}");
        (code, vec![host, member, banned])
    }
}

/// One HTTP request as `who`; answers the status and error code (`""` for none).
async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> Answer {
    let mut request = client().request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, body) = read(request.send().await.unwrap()).await;
    let code = body["error"]["code"].as_str().unwrap_or("");
    Answer::Http(status.as_u16(), code.into())
}

struct Mismatch {
    row: String,
    who: Who,
    expected: Answer,
    got: Answer,
}

fn report(mismatches: &[Mismatch], cells: usize) {
    if mismatches.is_empty() {
        eprintln!("authorization matrix: {cells} cells, all as expected");
        return;
    }
    let lines: Vec<String> = mismatches
        .iter()
        .map(|m| {
            format!(
                "  {:<50} {:<10} expected {:<22} got {}",
                m.row,
                format!("{:?}", m.who),
                m.expected.to_string(),
                m.got
            )
        })
        .collect();
    panic!(
        "{} of {cells} cells differ:\n{}",
        mismatches.len(),
        lines.join("\n")
    );
}

fn github() -> GithubConfig {
    // Enabled so that its routes are live; nothing here ever reaches the provider.
    GithubConfig {
        enabled: true,
        client_id: "matrix".into(),
        client_secret: Secret::new("matrix-secret"),
        ..GithubConfig::default()
    }
}

async fn matrix_server() -> TestServer {
    TestServer::start_with(|c| {
        c.public_url = "http://hearth.test".into();
        c.oauth.github = github();
        // The matrix makes many rooms and sockets and signs in often from one address.
        c.ws.rate_per_sec = 0;
        c.auth.login_max_failures_per_ip = 0;
        c.auth.registrations_per_ip_per_hour = 0;
        c.rooms.creations_per_user_per_hour = 0;
        c.rooms.unknown_code_max_per_ip = 0;
    })
    .await
}

/// A well-formed code other than `room`'s, for the same requests to a room that does not exist.
fn unknown_beside(room: &str) -> &'static str {
    if room == "ZZZZZZ" {
        "YYYYYY"
    } else {
        "ZZZZZZ"
    }
}

/// What the matrix has found so far: every cell tried, and those that answered otherwise.
#[derive(Default)]
struct Matrix {
    cells: usize,
    mismatches: Vec<Mismatch>,
}

/// One table of who may do what, over HTTP and the socket, tried part by part on one server;
/// every mismatch is reported at the end, not only the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_frame_for_every_kind_of_caller() {
    let server = matrix_server().await;
    let cast = Cast::new(&server, "").await;
    let (room, _sockets) = cast.room(&server, "matrix").await;
    let mut m = Matrix::default();
    routes_that_change_nothing(&server, &cast, &room, &mut m).await;
    the_room_list(&server, &cast, &room, &mut m).await;
    registration(&server, &cast, &mut m).await;
    routes_that_end_sessions(&server, &mut m).await;
    the_upgrade(&server, &cast, &mut m).await;
    frames(&server, &cast, &room, &mut m).await;
    // The anonymous caller and the revoked session never get as far as a frame: the upgrade
    // row above refuses them.
    report(&m.mismatches, m.cells);
}

/// The matrix: the routes that change nothing for the caller, with the shared cast.
async fn routes_that_change_nothing(server: &TestServer, cast: &Cast, room: &str, m: &mut Matrix) {
    let unknown = unknown_beside(room);
    // ---- HTTP: routes that change nothing for the caller, tried with the shared cast ----
    type Row = (Method, String, Option<Value>, [Answer; 6]);
    let rows: Vec<Row> = vec![
        (
            Method::GET,
            "/api/me".into(),
            None,
            signed_in_row(unauthenticated(), http(200)),
        ),
        (
            Method::GET,
            "/api/me/identities".into(),
            None,
            signed_in_row(unauthenticated(), http(200)),
        ),
        (
            Method::GET,
            "/api/auth/providers".into(),
            None,
            same_row(http(200)),
        ),
        (
            Method::GET,
            "/api/session".into(),
            None,
            same_row(http(200)),
        ),
        (
            Method::GET,
            format!("/api/invites/{room}"),
            None,
            same_row(http(200)),
        ),
        (
            Method::GET,
            format!("/api/invites/{unknown}"),
            None,
            same_row(http(200)),
        ),
        (
            Method::POST,
            "/api/auth/providers/github/unlink".into(),
            None,
            signed_in_row(unauthenticated(), refused(404, "not_linked")),
        ),
        (
            Method::POST,
            "/api/auth/login".into(),
            Some(json!({"username": "nora", "password": PASSWORD})),
            same_row(http(200)),
        ),
        (
            Method::POST,
            "/api/auth/login".into(),
            Some(json!({"username": "nora", "password": "not the password"})),
            same_row(refused(401, "invalid_credentials")),
        ),
        (
            Method::POST,
            "/api/rooms".into(),
            Some(json!({"name": "another"})),
            signed_in_row(unauthenticated(), http(201)),
        ),
        (
            Method::GET,
            "/api/rooms".into(),
            None,
            signed_in_row(unauthenticated(), http(200)),
        ),
        (
            Method::GET,
            format!("/api/rooms/{room}"),
            None,
            room_row(200),
        ),
        (
            Method::GET,
            format!("/api/rooms/{}", room.to_lowercase()),
            None,
            room_row(200),
        ),
        (
            Method::GET,
            format!("/api/rooms/{room}/messages"),
            None,
            room_row(200),
        ),
        (
            Method::GET,
            format!("/api/rooms/{room}/messages?before=2&limit=1"),
            None,
            room_row(200),
        ),
        (
            Method::GET,
            format!("/api/rooms/{unknown}"),
            None,
            signed_in_row(unauthenticated(), refused(404, "unknown_room")),
        ),
        (
            Method::GET,
            format!("/api/rooms/{unknown}/messages"),
            None,
            signed_in_row(unauthenticated(), refused(404, "unknown_room")),
        ),
        (
            Method::GET,
            "/api/rooms/not-a-code".into(),
            None,
            signed_in_row(unauthenticated(), refused(404, "unknown_room")),
        ),
        (
            Method::GET,
            "/api/no-such-endpoint".into(),
            None,
            same_row(refused(404, "not_found")),
        ),
        (Method::GET, "/healthz".into(), None, same_row(http(200))),
        (Method::GET, "/metrics".into(), None, same_row(http(200))),
        (Method::GET, "/".into(), None, same_row(http(200))),
        (Method::GET, format!("/r/{room}"), None, same_row(http(200))),
        (
            Method::GET,
            "/auth/github/start".into(),
            None,
            same_row(http(302)),
        ),
        (
            Method::GET,
            "/auth/github/callback".into(),
            None,
            same_row(http(400)),
        ),
        (
            Method::GET,
            "/auth/nowhere/start".into(),
            None,
            same_row(http(404)),
        ),
        (
            Method::GET,
            "/auth/nowhere/callback?code=x&state=y".into(),
            None,
            same_row(http(404)),
        ),
    ];
    for (method, path, body, expected) in &rows {
        for (column, who) in EVERYONE.into_iter().enumerate() {
            m.cells += 1;
            let got = call(server, method.clone(), path, body.clone(), cast.token(who)).await;
            if got != expected[column] {
                m.mismatches.push(Mismatch {
                    row: format!("{method} {path}"),
                    who,
                    expected: expected[column].clone(),
                    got,
                });
            }
        }
    }
}

/// The matrix: what `GET /api/rooms` lists.
async fn the_room_list(server: &TestServer, cast: &Cast, room: &str, m: &mut Matrix) {
    // What `GET /api/rooms` lists: the room for its members and host only.
    for (column, who) in EVERYONE.into_iter().enumerate() {
        let expected = [false, false, false, false, true, true][column];
        let mut request = client().get(server.url("/api/rooms"));
        if let Some(token) = cast.token(who) {
            request = request.bearer_auth(token);
        }
        let (_, body) = read(request.send().await.unwrap()).await;
        let listed = body["rooms"]
            .as_array()
            .is_some_and(|rooms| rooms.iter().any(|r| r["code"] == json!(room)));
        m.cells += 1;
        if listed != expected {
            m.mismatches.push(Mismatch {
                row: "GET /api/rooms lists the room".into(),
                who,
                expected: F(&expected.to_string()),
                got: F(&listed.to_string()),
            });
        }
    }
}

/// The matrix: registering.
async fn registration(server: &TestServer, cast: &Cast, m: &mut Matrix) {
    // Registering works whoever asks (a presented session is ignored); each cell needs a name
    // of its own.
    for (column, who) in EVERYONE.into_iter().enumerate() {
        let body = json!({"username": format!("newbie{column}"), "password": PASSWORD});
        m.cells += 1;
        let got = call(
            server,
            Method::POST,
            "/api/auth/register",
            Some(body),
            cast.token(who),
        )
        .await;
        if got != http(201) {
            m.mismatches.push(Mismatch {
                row: "POST /api/auth/register".into(),
                who,
                expected: http(201),
                got,
            });
        }
    }
}

/// The matrix: the routes that end sessions, each cell with a cast of its own.
async fn routes_that_end_sessions(server: &TestServer, m: &mut Matrix) {
    // ---- HTTP: routes that end sessions, each cell with a cast of its own ----
    let change = json!({"current_password": PASSWORD, "new_password": "another fine passphrase"});
    let ending: [(&str, Option<Value>); 3] = [
        ("/api/auth/logout", None),
        ("/api/auth/logout-all", None),
        ("/api/auth/password", Some(change)),
    ];
    for (round, (path, body)) in ending.iter().enumerate() {
        for (column, who) in EVERYONE.into_iter().enumerate() {
            let own = Cast::new(server, &format!("e{round}{column}")).await;
            m.cells += 1;
            let expected = signed_in_row(unauthenticated(), http(204))[column].clone();
            let got = call(server, Method::POST, path, body.clone(), own.token(who)).await;
            if got != expected {
                m.mismatches.push(Mismatch {
                    row: format!("POST {path}"),
                    who,
                    expected,
                    got,
                });
            }
        }
    }
}

/// The matrix: the socket upgrade.
async fn the_upgrade(server: &TestServer, cast: &Cast, m: &mut Matrix) {
    // ---- The socket upgrade ----
    for (column, who) in EVERYONE.into_iter().enumerate() {
        let expected = [401, 401, 101, 101, 101, 101][column];
        m.cells += 1;
        let token = cast.token(who);
        let status = upgrade_status(
            server,
            Upgrade {
                token,
                ..Upgrade::default()
            },
        )
        .await;
        if status != expected {
            m.mismatches.push(Mismatch {
                row: "GET /ws (upgrade)".into(),
                who,
                expected: http(expected),
                got: http(status),
            });
        }
    }
}

/// The matrix: every socket frame, each cell in a fresh room.
async fn frames(server: &TestServer, cast: &Cast, room: &str, m: &mut Matrix) {
    let unknown = unknown_beside(room);
    // ---- Socket frames: a fresh room per cell, as the four callers that can connect ----
    let frames: Vec<(&str, Value, [Answer; 4])> = vec![
        // frame, then NonMember, Banned, Member, Host
        (
            "join",
            json!({"type": "join"}),
            [F("joined"), E("banned"), F("joined"), F("joined")],
        ),
        (
            "join since",
            json!({"type": "join", "since": 1}),
            [F("joined"), E("banned"), F("joined"), F("joined")],
        ),
        (
            "leave",
            json!({"type": "leave"}),
            [E("not_member"), E("not_member"), F("ok"), F("ok")],
        ),
        (
            "send",
            json!({"type": "send", "text": "hello"}),
            [E("not_member"), E("not_member"), F("ack"), F("ack")],
        ),
        (
            "history",
            json!({"type": "history", "limit": 5}),
            [E("not_member"), E("not_member"), F("history"), F("history")],
        ),
        (
            "react",
            json!({"type": "react", "seq": 1, "emoji": "👍", "on": true}),
            [E("not_member"), E("not_member"), F("ok"), F("ok")],
        ),
        (
            "typing",
            json!({"type": "typing"}),
            [E("not_member"), E("not_member"), F("ok"), F("ok")],
        ),
        (
            "kick",
            json!({"type": "kick", "user": "MILO"}),
            [E("not_host"), E("not_host"), E("not_host"), F("ok")],
        ),
        (
            "unban",
            json!({"type": "unban", "user": "boris"}),
            [E("not_host"), E("not_host"), E("not_host"), F("ok")],
        ),
        (
            "transfer_host",
            json!({"type": "transfer_host", "user": "milo"}),
            [E("not_host"), E("not_host"), E("not_host"), F("ok")],
        ),
    ];
    for (name, frame, expected) in &frames {
        for (column, who) in SIGNED_IN.into_iter().enumerate() {
            let (code, mut sockets) = cast.room(server, &format!("{name} {column}")).await;
            let mut own = match who {
                Who::Host => sockets.remove(0),
                Who::Member => sockets.remove(1),
                Who::Banned => sockets.remove(2),
                _ => WsClient::connect(server, cast.token(who).unwrap()).await,
            };
            let mut known = frame.clone();
            known["room"] = json!(code);
            let got = answer_of(&own.request(known).await);
            m.cells += 1;
            if got != expected[column] {
                m.mismatches.push(Mismatch {
                    row: format!("socket {name}"),
                    who,
                    expected: expected[column].clone(),
                    got,
                });
            }
            // The same frame for a room that does not exist.
            let mut elsewhere = frame.clone();
            elsewhere["room"] = json!(unknown);
            let got = answer_of(&own.request(elsewhere).await);
            m.cells += 1;
            if got != E("unknown_room") {
                m.mismatches.push(Mismatch {
                    row: format!("socket {name}, unknown room"),
                    who,
                    expected: E("unknown_room"),
                    got,
                });
            }
            own.close().await;
            for socket in sockets {
                socket.close().await;
            }
        }
    }
}

fn answer_of(frame: &Value) -> Answer {
    match frame["type"].as_str().unwrap_or("?") {
        "error" => E(frame["code"].as_str().unwrap_or("?")),
        kind => F(kind),
    }
}
