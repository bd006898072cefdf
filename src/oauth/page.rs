//! The pages a person sees on the way through a provider: the confirmation of a link, and the
//! page of a failure. Plain HTML, no script or style; what happened and what to do, never
//! internals (those go to the log); every piece of text escaped.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{LinkPreview, OAuthError};
use crate::auth::AuthError;

/// The confirmation page's policy: the router's default (load nothing, be framed by nobody)
/// except that its one form may be sent, to this server only.
const FORM_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A small self-contained page with a title and `body`, which is HTML already.
fn document(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Hearth</title>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n\
         {body}</main>\n</body>\n</html>\n",
        title = escape(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page with a message and a way back.
pub fn render(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<p>{}</p>\n<p><a href=\"/\">Back to Hearth</a></p>\n",
        escape(message)
    );
    document(status, title, &body)
}

/// The page that asks whether to link the provider account in `preview` to the signed-in
/// hearth account: a form posting its token and the button pressed to `action`.
pub fn confirm_link(preview: &LinkPreview, action: &str) -> Response {
    let provider = provider_label(&preview.provider);
    let (account, details) = account_words(preview);
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", escape(&details.join(", ")))
    };
    let body = format!(
        "<p>Link your {provider} account <strong>{account}</strong>{details} to your Hearth \
         account <strong>{username}</strong>?</p>\n\
         <p>Once linked, whoever is signed in to that {provider} account can sign in to Hearth \
         as {username}. If you did not just ask to link it, or do not know that account, \
         choose Cancel.</p>\n\
         <form method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\n\
         <button type=\"submit\" name=\"action\" value=\"link\">Link</button>\n\
         <button type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button>\n\
         </form>\n",
        provider = escape(&provider),
        account = escape(&account),
        username = escape(&preview.username),
        action = escape(action),
        token = escape(&preview.token),
    );
    let mut response = document(
        StatusCode::OK,
        &format!("Link your {provider} account?"),
        &body,
    );
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(FORM_CSP));
    // Under `no-referrer` (every other answer's policy) a browser sends `Origin: null` with
    // a form post, which no allowed origin matches; the page's URL holds no secret.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// How a provider's name is written in a sentence: the presets as their owners write them,
/// others as configured with a capital.
fn provider_label(name: &str) -> String {
    match name {
        "github" => "GitHub".into(),
        "google" => "Google".into(),
        _ => {
            let mut chars = name.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// The provider account by what the person knows it by (its login, else its address, else the
/// provider's id), and the rest of what the provider said about it. The provider chose these
/// words: they lose invisible characters, so that bidi overrides cannot make one account read
/// as another.
fn account_words(preview: &LinkPreview) -> (String, Vec<String>) {
    let who = &preview.who;
    let login = crate::names::clean(&who.login);
    let name = crate::names::clean(&who.display_name);
    let email = who.email.as_deref().map(crate::names::clean);
    let account = [Some(login), email.clone()]
        .into_iter()
        .flatten()
        .find(|word| !word.is_empty())
        .unwrap_or_else(|| crate::names::clean(&who.subject));
    let details = [Some(name), email]
        .into_iter()
        .flatten()
        .filter(|word| !word.is_empty() && *word != account)
        .collect();
    (account, details)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl OAuthError {
    /// Status, title and explanation for the person in front of the browser.
    fn page(&self) -> (StatusCode, &'static str, &'static str) {
        use OAuthError as E;
        match self {
            E::UnknownProvider(_) => (
                StatusCode::NOT_FOUND,
                "Unknown sign-in provider",
                "This server does not offer sign-in with that provider.",
            ),
            E::BadState => (
                StatusCode::BAD_REQUEST,
                "Sign-in link not valid here",
                "This sign-in was not started in this browser, took too long, or was already \
                 used. Please start signing in again.",
            ),
            E::MissingCode => (
                StatusCode::BAD_REQUEST,
                "Sign-in incomplete",
                "The provider sent you back without a sign-in code. Please start signing in \
                 again.",
            ),
            E::Denied => (
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                "You did not allow Hearth to use your account at the provider, so you are not \
                 signed in. You can try again whenever you like.",
            ),
            E::ProviderRefused(_) | E::Misconfigured(_) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in provider not set up correctly",
                "The provider refused this server's request, which usually means its sign-in \
                 settings are wrong. Please tell the person who runs this server; the server log \
                 has the details.",
            ),
            E::CodeRefused(_) => (
                StatusCode::BAD_REQUEST,
                "Sign-in code refused",
                "The provider did not accept the sign-in code: it may have expired or been used \
                 already. Please start signing in again.",
            ),
            E::Unreachable(_) | E::BadAnswer(_) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in provider unavailable",
                "The provider could not be reached or gave an answer this server cannot use. \
                 Please try again in a few minutes.",
            ),
            E::IdTokenRefused(_) => (
                StatusCode::BAD_GATEWAY,
                "Sign-in could not be verified",
                "The provider's statement of who you are did not pass this server's checks, so \
                 you are not signed in. Please start signing in again; if it keeps happening, \
                 tell the person who runs this server (the server log has the details).",
            ),
            E::IssuerChanged { .. } => (
                StatusCode::CONFLICT,
                "Sign-in provider changed",
                "This server now sends this sign-in to a different identity provider than the \
                 one your account was linked with, so you are not signed in to that account. \
                 Please tell the person who runs this server; the server log has the details.",
            ),
            E::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "Sign-in provider too slow",
                "The provider did not answer in time. Please try again in a few minutes.",
            ),
            E::RegistrationClosed => (
                StatusCode::FORBIDDEN,
                "No account here",
                "This server does not create accounts for new people. Ask the person who runs \
                 it for an account; once signed in you can link your provider account to it.",
            ),
            E::AccountDisabled | E::Auth(AuthError::AccountDisabled) => (
                StatusCode::FORBIDDEN,
                "Account disabled",
                "The account linked to this sign-in is disabled on this server.",
            ),
            E::LinkedElsewhere => (
                StatusCode::CONFLICT,
                "Already linked to another account",
                "That provider account already signs in to a different Hearth account. Sign in \
                 with it and unlink it there first.",
            ),
            E::ProviderAlreadyLinked => (
                StatusCode::CONFLICT,
                "Another account of this provider is linked",
                "Your Hearth account is already linked to a different account at this provider. \
                 Unlink that one first.",
            ),
            E::LinkSessionLost => (
                StatusCode::BAD_REQUEST,
                "Signed out while linking",
                "You were signed out while linking a provider. Sign in and try again.",
            ),
            E::LinkExpired => (
                StatusCode::BAD_REQUEST,
                "Link request not valid any more",
                "This request to link a provider account took too long, was answered already, \
                 or was started in another browser, so nothing was linked. Start linking again \
                 from Hearth if you want to.",
            ),
            E::LinkOtherAccount => (
                StatusCode::FORBIDDEN,
                "Signed in as someone else",
                "This link was started by a different Hearth account than the one signed in now, \
                 so nothing was linked. Sign in to the account you want to link and start \
                 again.",
            ),
            E::LinkForeignOrigin | E::LinkTokenMismatch | E::LinkAnswerUnknown => (
                StatusCode::FORBIDDEN,
                "Link not confirmed",
                "This answer did not come from the confirmation page Hearth showed you, so \
                 nothing was linked. If you want to link the account, start linking again.",
            ),
            E::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many sign-ins right now",
                "This server has too many sign-ins in progress. Please try again in a minute.",
            ),
            E::TooManyFromClient => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins from your network",
                "Many sign-ins were started from your network and not finished. Finish one, or \
                 try again in a few minutes.",
            ),
            E::Store(_) | E::Auth(_) | E::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on the server while signing you in. Please try again; the \
                 server log has details.",
            ),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, title, message) = self.page();
        if status.is_server_error() {
            tracing::warn!(error = %self, "sign-in through a provider failed");
        } else {
            tracing::info!(error = %self, "sign-in through a provider refused");
        }
        render(status, title, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::provider::ProviderUser;

    fn preview(login: &str, name: &str, email: Option<&str>) -> LinkPreview {
        LinkPreview {
            provider: "testidp".into(),
            who: ProviderUser {
                subject: "sub-1".into(),
                login: login.into(),
                display_name: name.into(),
                email: email.map(str::to_string),
            },
            username: "alice".into(),
            token: "tok\"en".into(),
        }
    }

    #[test]
    fn the_account_is_named_by_what_the_person_knows() {
        let words = |login, name, email| account_words(&preview(login, name, email));
        assert_eq!(
            words("bob", "Bob B", Some("bob@example.org")),
            ("bob".into(), vec!["Bob B".into(), "bob@example.org".into()])
        );
        assert_eq!(
            words("", "Bob", Some("bob@example.org")),
            ("bob@example.org".into(), vec!["Bob".into()])
        );
        assert_eq!(words("", "", None), ("sub-1".into(), vec![]));
        assert_eq!(
            words("ali\u{202E}ce", "bob", None),
            ("alice".into(), vec!["bob".into()]),
            "no bidi override"
        );
        assert_eq!(provider_label("github"), "GitHub");
        assert_eq!(provider_label("testidp"), "Testidp");
    }

    #[tokio::test]
    async fn the_confirmation_escapes_what_the_provider_said() {
        let page = confirm_link(
            &preview("<script>x</script>", "\"><b>", None),
            "/auth/testidp/link",
        );
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CONTENT_SECURITY_POLICY], FORM_CSP);
        assert_eq!(page.headers()[REFERRER_POLICY], "same-origin");
        assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(page.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let html = String::from_utf8_lossy(&body);
        for expected in [
            "Link your Testidp account <strong>&lt;script&gt;x&lt;/script&gt;</strong> \
             (&quot;&gt;&lt;b&gt;) to your Hearth account <strong>alice</strong>?",
            "<input type=\"hidden\" name=\"token\" value=\"tok&quot;en\">",
            "<form method=\"post\" action=\"/auth/testidp/link\">",
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn pages_escape_and_do_not_cache() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
        let response = OAuthError::Misconfigured("secret detail".into()).into_response();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }
}
