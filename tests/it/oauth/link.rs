//! Linking a provider account to the signed-in account takes the person's explicit yes on
//! hearth's own page (issue 17): a page on any site can send a signed-in browser through
//! `/auth/{provider}/start`, and the provider session it meets may be someone else's. So the
//! callback links nothing; the confirmation page names both accounts, and its form is answered
//! once, by the user who started the link, from this site, with the page's token.

use super::*;

/// Alice, signed in with a password: her browser and her session token.
async fn alice(server: &TestServer) -> (Browser, String) {
    let token = server.register("alice").await;
    let mut browser = Browser::default();
    browser.jar.insert("hearth_session".into(), token.clone());
    (browser, token)
}

/// Starts linking `provider` in `browser`, consents there as `who`, and comes back: answers the
/// callback's response.
async fn link_callback(
    server: &TestServer,
    browser: &mut Browser,
    provider: &str,
    who: &Person,
    query: &str,
) -> reqwest::Response {
    let authorize = start(server, browser, provider, query).await;
    let callback = consent(&authorize, who, None).await;
    land(server, browser, &callback).await
}

/// The providers linked to the account of `token`.
async fn linked(server: &TestServer, token: &str) -> Vec<String> {
    let (status, ids) = server.get("/api/me/identities", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{ids}");
    ids["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider"].as_str().unwrap().to_string())
        .collect()
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_callback_links_nothing_until_the_person_confirms() {
    let mock = Mock::start().await;
    let server = server_with(&mock, |_| {}).await;
    let (mut alice, token) = alice(&server).await;
    let alice_gh = person("100", "alice-gh");

    let response = link_callback(&server, &mut alice, "github", &alice_gh, "?next=/settings").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/auth/github/link");
    let cookies = set_cookies(&response);
    let link_cookie = cookies
        .iter()
        .find(|c| c.starts_with("hearth_link="))
        .expect("a link cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/auth", "Max-Age=600"] {
        assert!(link_cookie.contains(flag), "{flag} in {link_cookie}");
    }
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("hearth_oauth=;") && c.contains("Max-Age=0")),
        "the flow is over: {cookies:?}"
    );
    assert!(!cookies.iter().any(|c| c.starts_with("hearth_session=")));
    assert!(
        linked(&server, &token).await.is_empty(),
        "the callback links nothing"
    );

    // The page names the provider account and the Hearth account, and showing it (again and
    // again) links nothing either.
    let page = link_page(&server, &mut alice, response).await;
    assert!(
        page.html.contains(
            "Link your GitHub account <strong>alice-gh</strong> (alice-gh (display), \
             alice-gh@example.org) to your Hearth account <strong>alice</strong>?"
        ),
        "{}",
        page.html
    );
    assert_eq!(page.action, "/auth/github/link");
    for button in [
        "value=\"link\">Link</button>",
        "value=\"cancel\">Cancel</button>",
    ] {
        assert!(page.html.contains(button), "{button} in {}", page.html);
    }
    for _ in 0..3 {
        let again = alice.get(&server.url("/auth/github/link")).await;
        assert_eq!(again.status(), StatusCode::OK);
        let headers = again.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(part), "{part} in {csp}");
        }
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        // A form posted under `no-referrer` carries `Origin: null`, which would be refused.
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert!(
            again.text().await.unwrap().contains(&page.token),
            "the same link"
        );
    }
    assert!(
        linked(&server, &token).await.is_empty(),
        "a GET never links"
    );

    let kept = alice.jar["hearth_link"].clone();
    let answer = answer_link(&server, &mut alice, &page, "link").await;
    assert_eq!(answer.status(), StatusCode::FOUND);
    assert_eq!(location(&answer), "/settings");
    assert!(
        set_cookies(&answer)
            .iter()
            .any(|c| c.starts_with("hearth_link=;") && c.contains("Max-Age=0")),
        "the link cookie goes"
    );
    assert_eq!(
        alice.session().as_deref(),
        Some(token.as_str()),
        "same session"
    );
    assert_eq!(linked(&server, &token).await, ["github"]);

    // The same answer again, cookie and all, finds nothing to link.
    alice.jar.insert("hearth_link".into(), kept);
    let replay = answer_link(&server, &mut alice, &page, "link").await;
    assert_refused(replay, StatusCode::BAD_REQUEST, "not valid any more").await;
    assert_eq!(linked(&server, &token).await, ["github"]);

    // Coming back with the identity linked already changes nothing and asks nothing.
    let response = link_callback(&server, &mut alice, "github", &alice_gh, "?next=/x").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/x");
    assert!(!alice.jar.contains_key("hearth_link"));
}

/// How an answer to the confirmation page differs from the person's own.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    WrongToken,
    NoToken,
    Origin(&'static str),
    CrossSiteFetch,
    OtherUser,
    SignedOut,
    OtherProvider,
    UnknownAction,
    Cancel,
}

#[tokio::test]
async fn answers_other_than_the_persons_own_yes_link_nothing() {
    let mock = Mock::start().await;
    let server = server_with(&mock, |_| {}).await;
    let (alice, token) = alice(&server).await;
    let bob_token = server.register("bob").await;
    let alice_gh = person("100", "alice-gh");
    let cases = [
        (Spoil::WrongToken, 403, "Link not confirmed"),
        (Spoil::NoToken, 403, "Link not confirmed"),
        (
            Spoil::Origin("https://evil.example"),
            403,
            "Link not confirmed",
        ),
        (Spoil::Origin("null"), 403, "Link not confirmed"),
        (
            Spoil::Origin("http://hearth.test.evil.example"),
            403,
            "Link not confirmed",
        ),
        (Spoil::CrossSiteFetch, 403, "Link not confirmed"),
        (Spoil::OtherUser, 403, "Signed in as someone else"),
        (Spoil::SignedOut, 400, "Signed out while linking"),
        (Spoil::OtherProvider, 400, "not valid any more"),
        (Spoil::UnknownAction, 403, "Link not confirmed"),
        (Spoil::Cancel, 302, ""),
    ];
    for (spoil, status, words) in cases {
        let mut browser = alice.clone();
        let response = link_callback(
            &server,
            &mut browser,
            "github",
            &alice_gh,
            "?next=/r/K7MP2X",
        )
        .await;
        let page = link_page(&server, &mut browser, response).await;

        let mut path = page.action.clone();
        let mut token_field = Some(page.token.clone());
        let mut action = "link";
        let mut origin = Some(PUBLIC);
        let mut poster = browser.clone();
        match spoil {
            Spoil::WrongToken => {
                let flipped = if page.token.starts_with('A') {
                    "B"
                } else {
                    "A"
                };
                token_field = Some(format!("{flipped}{}", &page.token[1..]));
            }
            Spoil::NoToken => token_field = None,
            Spoil::Origin(foreign) => origin = Some(foreign),
            Spoil::CrossSiteFetch => origin = None,
            Spoil::OtherUser => {
                poster
                    .jar
                    .insert("hearth_session".into(), bob_token.clone());
            }
            Spoil::SignedOut => {
                poster.jar.remove("hearth_session");
            }
            Spoil::OtherProvider => path = "/auth/google/link".into(),
            Spoil::UnknownAction => action = "yes",
            Spoil::Cancel => action = "cancel",
        }
        let mut fields = vec![("action", action.to_string())];
        if let Some(token) = token_field {
            fields.push(("token", token));
        }
        let mut post = client().post(server.url(&path)).form(&fields);
        if let Some(origin) = origin {
            post = post.header("origin", origin);
        }
        if matches!(spoil, Spoil::CrossSiteFetch) {
            post = post.header("sec-fetch-site", "cross-site");
        }
        let response = poster.send(post).await;
        assert!(
            set_cookies(&response)
                .iter()
                .any(|c| c.starts_with("hearth_link=;") && c.contains("Max-Age=0")),
            "{spoil:?}: the link cookie goes"
        );
        if status == 302 {
            assert_eq!(response.status(), StatusCode::FOUND, "{spoil:?}");
            assert_eq!(location(&response), "/r/K7MP2X", "{spoil:?}");
        } else {
            assert_refused(response, StatusCode::from_u16(status).unwrap(), words).await;
        }
        assert!(linked(&server, &token).await.is_empty(), "{spoil:?}");

        // Taken out whatever the answer: the page's own yes now finds nothing to link.
        let replay = answer_link(&server, &mut browser, &page, "link").await;
        assert_refused(replay, StatusCode::BAD_REQUEST, "not valid any more").await;
        assert!(linked(&server, &token).await.is_empty(), "{spoil:?}");
    }
    let (_, metrics) = server.get("/metrics", None).await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("outcome=\"link_cancelled\""),
        "a cancel is counted"
    );

    // After all that, a link answered properly links.
    let mut browser = alice.clone();
    let response = link_callback(&server, &mut browser, "github", &alice_gh, "").await;
    confirm_link(&server, &mut browser, response).await;
    assert_eq!(linked(&server, &token).await, ["github"]);
}

#[tokio::test]
async fn the_page_is_shown_only_to_the_user_who_started_the_link() {
    let mock = Mock::start().await;
    let server = server_with(&mock, |_| {}).await;
    let (mut alice, token) = alice(&server).await;
    let bob_token = server.register("bob").await;
    let alice_gh = person("100", "alice-gh");
    let response = link_callback(&server, &mut alice, "github", &alice_gh, "").await;
    assert_eq!(location(&response), "/auth/github/link");

    let link_url = server.url("/auth/github/link");
    let mut bob = alice.clone();
    bob.jar.insert("hearth_session".into(), bob_token);
    assert_refused(
        bob.get(&link_url).await,
        StatusCode::FORBIDDEN,
        "Signed in as someone else",
    )
    .await;
    let mut signed_out = alice.clone();
    signed_out.jar.remove("hearth_session");
    assert_refused(
        signed_out.get(&link_url).await,
        StatusCode::BAD_REQUEST,
        "Signed out while linking",
    )
    .await;
    let mut no_cookie = alice.clone();
    no_cookie.jar.remove("hearth_link");
    assert_refused(
        no_cookie.get(&link_url).await,
        StatusCode::BAD_REQUEST,
        "not valid any more",
    )
    .await;
    let mut forged = alice.clone();
    forged.jar.insert("hearth_link".into(), "forged".into());
    let response = forged.get(&link_url).await;
    assert_refused(response, StatusCode::BAD_REQUEST, "not valid any more").await;
    assert_refused(
        alice.get(&server.url("/auth/google/link")).await,
        StatusCode::BAD_REQUEST,
        "not valid any more",
    )
    .await;
    assert_refused(
        alice.get(&server.url("/auth/nope/link")).await,
        StatusCode::NOT_FOUND,
        "does not offer sign-in",
    )
    .await;
    assert!(linked(&server, &token).await.is_empty());

    // None of that took the link away from alice; but a newer link of hers replaces it.
    assert!(
        alice.jar.contains_key("hearth_link"),
        "showing it keeps the cookie"
    );
    let page = alice.get(&link_url).await;
    assert_eq!(page.status(), StatusCode::OK);
    let mut first = alice.clone();
    let mut newer = alice.clone();
    let response = link_callback(&server, &mut newer, "gitea", &person("a-1", "al"), "").await;
    let newer_page = link_page(&server, &mut newer, response).await;
    assert_refused(
        first.get(&link_url).await,
        StatusCode::BAD_REQUEST,
        "not valid any more",
    )
    .await;
    let answer = answer_link(&server, &mut newer, &newer_page, "link").await;
    assert_eq!(answer.status(), StatusCode::FOUND);
    assert_eq!(linked(&server, &token).await, ["gitea"]);
}

#[tokio::test]
async fn an_unanswered_link_expires() {
    let mock = Mock::start().await;
    let server = server_with(&mock, |c| c.oauth.state_ttl_secs = 2).await;
    let (mut alice, token) = alice(&server).await;
    let response = link_callback(&server, &mut alice, "github", &person("100", "al"), "").await;
    let page = link_page(&server, &mut alice, response).await;
    let kept = alice.jar["hearth_link"].clone();
    tokio::time::sleep(Duration::from_millis(2300)).await;

    let response = alice.get(&server.url("/auth/github/link")).await;
    assert_refused(response, StatusCode::BAD_REQUEST, "took too long").await;
    alice.jar.insert("hearth_link".into(), kept);
    let answer = answer_link(&server, &mut alice, &page, "link").await;
    assert_refused(answer, StatusCode::BAD_REQUEST, "took too long").await;
    assert!(linked(&server, &token).await.is_empty());
}

#[tokio::test]
async fn the_page_escapes_what_the_provider_says() {
    let mock = Mock::start().await;
    let testidp = generic(&mock);
    let server = server_with(&mock, move |c| {
        c.oauth.generic.insert("testidp".into(), testidp);
    })
    .await;
    let (mut alice, token) = alice(&server).await;
    let hostile = Person {
        id: "h-1".into(),
        login: "<script>alert(1)</script>".into(),
        name: "<img src=x onerror=alert(2)>\"'&".into(),
        email: "bob@example.org".into(),
    };
    let response = link_callback(&server, &mut alice, "testidp", &hostile, "").await;
    let page = link_page(&server, &mut alice, response).await;
    assert!(
        page.html.contains(
            "Link your Testidp account <strong>&lt;script&gt;alert(1)&lt;/script&gt;</strong> \
             (&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;, bob@example.org) to your \
             Hearth account <strong>alice</strong>?"
        ),
        "{}",
        page.html
    );
    for raw in ["<script", "<img", "onerror=alert(2)>"] {
        assert!(!page.html.contains(raw), "{raw} in {}", page.html);
    }
    let answer = answer_link(&server, &mut alice, &page, "link").await;
    assert_eq!(answer.status(), StatusCode::FOUND);
    assert_eq!(linked(&server, &token).await, ["testidp"]);
    let (_, ids) = server.get("/api/me/identities", Some(&token)).await;
    assert_eq!(
        ids["identities"][0]["login"], hostile.login,
        "kept as the provider said"
    );
}
