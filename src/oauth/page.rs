//! The pages a person sees when a sign-in through a provider fails: plain HTML with what
//! happened and what to do, never internals (those go to the log).

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::OAuthError;
use crate::auth::AuthError;

/// A small self-contained page.
pub fn render(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · Hearth</title>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n\
         <p>{message}</p>\n<p><a href=\"/\">Back to Hearth</a></p>\n</main>\n</body>\n</html>\n",
        title = escape(title),
        message = escape(message),
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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
