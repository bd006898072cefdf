//! OpenID Connect: the ID token is verified before anyone is signed in, a `nonce` goes out with
//! every OIDC sign-in, issuers may be given as their discovery URL, and plain-http providers
//! are refused at start-up unless they are on loopback or explicitly allowed.

use super::*;
use common::oauth_mock::IdTokenFault;

/// One sign-in attempt in a fresh browser; answers the callback's response.
async fn attempt(server: &TestServer, provider: &str, who: &Person) -> reqwest::Response {
    let mut browser = Browser::default();
    let authorize = start(server, &mut browser, provider, "").await;
    let callback = consent(&authorize, who, None).await;
    land(server, &mut browser, &callback).await
}

#[tokio::test]
async fn id_tokens_that_fail_a_check_sign_nobody_in() {
    let mock = Mock::start().await;
    let server = server_with(&mock, |_| {}).await;
    let eve = person("eve-1", "eve");
    // Every check the ID token must pass, at both kinds of OIDC provider.
    let faults = [
        IdTokenFault::BadSignature,
        IdTokenFault::WrongIssuer,
        IdTokenFault::WrongAudience,
        IdTokenFault::WrongNonce,
        IdTokenFault::NoNonce,
        IdTokenFault::Expired,
        IdTokenFault::AlgNone,
        IdTokenFault::Hs256ClientSecret,
        IdTokenFault::Missing,
    ];
    for provider in ["gitea", "google"] {
        for fault in faults {
            mock.with(|s| s.id_token_fault = Some(fault));
            let response = attempt(&server, provider, &eve).await;
            assert_refused(response, StatusCode::BAD_GATEWAY, "could not be verified").await;
        }
    }
    mock.with(|s| s.id_token_fault = None);
    sign_in(&server, "gitea", &eve).await;
    assert_eq!(
        users_after_stop(server).await,
        ["eve"],
        "only the good token"
    );
}

#[tokio::test]
async fn oidc_sign_ins_send_a_fresh_nonce_and_plain_oauth2_none() {
    let mock = Mock::start().await;
    let server = server_with(&mock, |_| {}).await;
    let sam = person("sam-1", "sam");
    for provider in ["gitea", "google", "gitea", "github"] {
        sign_in(&server, provider, &sam).await;
    }
    let nonces = mock.with(|s| s.nonces.clone());
    assert_eq!(nonces.len(), 4);
    let sent: Vec<&String> = nonces[..3].iter().map(|n| n.as_ref().unwrap()).collect();
    assert!(sent.iter().all(|n| n.len() >= 32), "{sent:?}");
    assert!(sent[0] != sent[1] && sent[1] != sent[2] && sent[0] != sent[2]);
    assert_eq!(nonces[3], None, "GitHub is plain OAuth2");
}

#[tokio::test]
async fn the_full_discovery_url_is_accepted_as_issuer() {
    let mock = Mock::start().await;
    let discovery_url = mock.url("/.well-known/openid-configuration");
    let server = server_with(&mock, move |c| {
        c.oauth.generic.get_mut("gitea").unwrap().issuer = discovery_url;
    })
    .await;
    sign_in(&server, "gitea", &person("k-1", "kim")).await;
    assert_eq!(mock.with(|s| s.discoveries), 1);
}

/// RFC 9207: a callback's `iss` must be the issuer, and must be there when the provider says it
/// sends it; otherwise the browser may have been sent back by another provider.
#[tokio::test]
async fn the_callbacks_iss_must_name_the_issuer() {
    let mock = Mock::start().await;
    mock.with(|s| s.iss_parameter = true);
    let server = server_with(&mock, |_| {}).await;
    let kim = person("k-1", "kim");
    sign_in(&server, "gitea", &kim).await;
    for iss in [Some("https://other-provider.example"), None] {
        let mut browser = Browser::default();
        let authorize = start(&server, &mut browser, "gitea", "").await;
        let mut callback = Url::parse(&consent(&authorize, &kim, None).await).unwrap();
        let mut pairs: Vec<(String, String)> = callback
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != "iss")
            .collect();
        if let Some(iss) = iss {
            pairs.push(("iss".into(), iss.into()));
        }
        callback.query_pairs_mut().clear().extend_pairs(&pairs);
        let response = land(&server, &mut browser, callback.as_str()).await;
        assert_refused(response, StatusCode::BAD_GATEWAY, "could not be verified").await;
    }
    assert_eq!(users_after_stop(server).await, ["kim"]);
}

/// Endpoints a discovery document names are held to the same https rule as configured ones.
#[tokio::test]
async fn a_discovered_plain_http_endpoint_off_loopback_is_refused() {
    let mock = Mock::start().await;
    mock.with(|s| s.jwks_uri = Some("http://keys.example/jwks".into()));
    let server = server_with(&mock, |_| {}).await;
    let response = Browser::default()
        .get(&server.url("/auth/gitea/start"))
        .await;
    assert_refused(response, StatusCode::BAD_GATEWAY, "not set up correctly").await;
}

/// `hearth config` validates as start-up does: exit 2 naming the provider's key.
#[test]
fn plain_http_providers_are_refused_at_start_unless_loopback_or_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |issuer: &str, allow: Option<&str>| {
        let mut cmd = common::process::hearth(dir.path());
        cmd.args(["config", "--data-dir", "d"]);
        cmd.env("HEARTH_OAUTH__GENERIC__IDP__CLIENT_ID", "x");
        cmd.env("HEARTH_OAUTH__GENERIC__IDP__ISSUER", issuer);
        if let Some(allow) = allow {
            cmd.env("HEARTH_OAUTH__GENERIC__IDP__ALLOW_INSECURE_HTTP", allow);
        }
        cmd.output().unwrap()
    };
    for (issuer, allow, accepted) in [
        ("http://id.example", None, false),
        (
            "http://id.example/.well-known/openid-configuration",
            None,
            false,
        ),
        ("http://10.0.0.5:8080/realms/r", Some("false"), false),
        ("http://id.example", Some("true"), true),
        ("https://id.example", None, true),
        ("http://127.0.0.1:9000", None, true),
        ("http://127.8.0.1:9000", None, true),
        ("http://localhost:9000", None, true),
        ("http://[::1]:9000", None, true),
    ] {
        let out = run(issuer, allow);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if accepted {
            assert!(out.status.success(), "{issuer} {allow:?}: {stderr}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{issuer} {allow:?}: {stderr}");
            assert!(
                stderr.contains("oauth.generic.idp.issuer") && stderr.contains("plain http"),
                "{issuer}: {stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Identities of OIDC providers are keyed by (issuer, subject). One linked before issuers were
/// recorded (keyed by the provider's name) is read as the current issuer's at its next sign-in;
/// once the provider is re-pointed at another issuer, the same `sub` there is refused rather
/// than signed in to the account linked under the first issuer, and new people still get in.
#[tokio::test]
async fn identities_are_keyed_by_issuer_and_a_changed_issuer_is_refused() {
    use hearth::store::accounts::NewUser;
    use hearth::store::identities::IdentityRecord;

    let (first, second) = (Mock::start().await, Mock::start().await);
    let server = server_with(&first, |_| {}).await;
    let legacy = server
        .store()
        .create_user_with_identity(
            NewUser {
                username: hearth::ids::Username::parse("oldtimer").unwrap(),
                display_name: "Old Timer".into(),
                password_hash: None,
                bot: false,
                created_at: 1,
            },
            IdentityRecord {
                provider: "gitea".into(),
                issuer: None,
                subject: "alice".into(),
                login: "alice".into(),
                email: None,
                linked_at: 1,
            },
        )
        .unwrap();
    let alice = person("alice", "alice");
    let browser = sign_in(&server, "gitea", &alice).await;
    let (_, me) = api(&server, &browser, "/api/me").await;
    assert_eq!(
        me["user"]["username"], "oldtimer",
        "the old identity, upgraded"
    );
    let store = server.store();
    assert_eq!(store.identity_user("gitea", "alice").unwrap(), None);
    assert_eq!(
        store.identity_user(&first.base, "alice").unwrap(),
        Some(legacy.id)
    );
    sign_in(&server, "gitea", &person("bob", "bob")).await;

    // The operator re-points the provider at another issuer whose user ids look the same.
    let mut server = server;
    server.config.oauth.generic.get_mut("gitea").unwrap().issuer = second.base.clone();
    let server = server.restart().await;
    let response = attempt(&server, "gitea", &alice).await;
    assert_refused(
        response,
        StatusCode::CONFLICT,
        "different identity provider",
    )
    .await;
    let response = attempt(&server, "gitea", &person("bob", "bob")).await;
    assert_refused(
        response,
        StatusCode::CONFLICT,
        "different identity provider",
    )
    .await;
    sign_in(&server, "gitea", &person("carol", "carol")).await;
    assert_eq!(
        users_after_stop(server).await,
        ["bob", "carol", "oldtimer"],
        "nobody signed in to alice's or bob's account from the new issuer"
    );
}
