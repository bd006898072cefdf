//! The browser's side of the dance: `GET /auth/{provider}/start` sends the browser to the
//! provider with a flow cookie; `GET /auth/{provider}/callback` checks the cookie against the
//! `state` that came back, exchanges the code and signs in with a 302. A link flow's callback
//! instead keeps the identity waiting under a link cookie and sends the browser to
//! `GET /auth/{provider}/link`, which asks whether to link it; the form there posts to
//! `POST /auth/{provider}/link`, which links it (or not) and goes on to `next`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRef, Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use oauth2::url::form_urlencoded;

use super::{
    page, Callback, LinkAnswer, LinkDecision, OAuth, OAuthError, Outcome, FLOW_COOKIE, LINK_COOKIE,
};
use crate::auth::origin::AllowedOrigins;
use crate::auth::AuthService;
use crate::config::Config;
use crate::http::extract::{cookie, http_only_cookie, presented_token, session_cookie, ClientIp};

/// The longest `next` path kept.
const MAX_NEXT: usize = 1024;

/// What the sign-in routes use of the server.
#[derive(Clone, FromRef)]
pub struct OAuthState {
    pub config: Arc<Config>,
    pub auth: Arc<AuthService>,
    pub oauth: Arc<OAuth>,
    pub origins: Arc<AllowedOrigins>,
}

pub fn router() -> Router<OAuthState> {
    Router::new()
        .route("/auth/{provider}/start", get(start))
        .route("/auth/{provider}/callback", get(callback))
        .route("/auth/{provider}/link", get(link_page).post(link_answer))
}

/// `?next=/r/CODE` lands there after signing in. Only a path on this site is kept; anything
/// else (an absolute or scheme-relative URL, backslashes, spaces) becomes `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path.len() <= MAX_NEXT
                && path.chars().all(|c| c.is_ascii_graphic() && c != '\\') =>
        {
            path.to_string()
        }
        _ => "/".into(),
    }
}

fn params(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.unwrap_or("").as_bytes()).map(|(k, v)| (k.into(), v.into()))
}

/// The signed-in user of this browser, if its session is valid.
fn signed_in(state: &OAuthState, headers: &HeaderMap) -> Option<u64> {
    let (token, _) = presented_token(headers)?;
    state.auth.authenticate(&token).ok().map(|a| a.user.id)
}

/// Headers every answer of these routes carries: nothing is cached, and the callback URL (it
/// holds the code) is not sent on as a Referer. The confirmation page keeps the policy it
/// brings (see [`page::confirm_link`]).
fn finish_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
        .entry(REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
}

fn flow_cookie(state: &OAuthState, value: &str, max_age: u64) -> Option<HeaderValue> {
    http_only_cookie(&state.config, FLOW_COOKIE, "/auth", value, max_age)
}

/// The cookie naming a link that waits for confirmation; the same attributes as the flow's.
fn link_cookie(state: &OAuthState, value: &str, max_age: u64) -> Option<HeaderValue> {
    http_only_cookie(&state.config, LINK_COOKIE, "/auth", value, max_age)
}

fn clear_link_cookie(state: &OAuthState, response: &mut Response) {
    if let Some(cookie) = link_cookie(state, "", 0) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
}

/// Where a provider's link is confirmed.
fn link_path(provider: &str) -> String {
    format!("/auth/{provider}/link")
}

/// Counts a finished callback; only enabled providers' names become labels.
fn count(provider: &str, outcome: &'static str) {
    let provider = provider.to_string();
    metrics::counter!("hearth_oauth_sign_ins_total", "provider" => provider, "outcome" => outcome)
        .increment(1);
}

fn redirect(to: &str) -> Result<Response, OAuthError> {
    let location = HeaderValue::from_str(to)
        .map_err(|_| OAuthError::Internal(format!("cannot redirect to {to:?}")))?;
    Ok((StatusCode::FOUND, [(LOCATION, location)]).into_response())
}

async fn start(
    State(state): State<OAuthState>,
    ClientIp(ip): ClientIp,
    provider: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    // A name that is not even UTF-8 names no provider of ours.
    let provider = provider.map(|Path(p)| p).unwrap_or_default();
    let outcome = async {
        let provider = state.oauth.provider(&provider)?;
        let next = params(query.as_deref())
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v);
        let next = safe_next(next.as_deref());
        // Starting while signed in links the provider to the account.
        let link_user = signed_in(&state, &headers);
        let started = state.oauth.start(&provider, link_user, next, ip).await?;
        let mut response = redirect(&started.url)?;
        let max_age = state.oauth.state_ttl().as_secs();
        if let Some(cookie) = flow_cookie(&state, &started.flow_id, max_age) {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        Ok::<_, OAuthError>(response)
    }
    .await;
    let mut response = outcome.unwrap_or_else(IntoResponse::into_response);
    finish_headers(&mut response);
    response
}

async fn callback(
    State(state): State<OAuthState>,
    provider: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let provider = provider.map(|Path(p)| p).unwrap_or_default();
    let name = provider.clone();
    let outcome = async {
        let provider = state.oauth.provider(&provider)?;
        let mut callback = Callback::default();
        for (key, value) in params(query.as_deref()) {
            let slot = match key.as_str() {
                "state" => &mut callback.state,
                "code" => &mut callback.code,
                "error" => &mut callback.error,
                "error_description" => &mut callback.error_description,
                "iss" => &mut callback.iss,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        let flow_id = cookie(&headers, FLOW_COOKIE);
        let signed_in = signed_in(&state, &headers);
        let (outcome, next) = state
            .oauth
            .finish(&provider, flow_id, callback, signed_in)
            .await?;
        match outcome {
            Outcome::SignedIn(user) => {
                let mut response = redirect(&next)?;
                let session = state.auth.start_session(user).await?;
                let max_age = state.auth.session_ttl().as_secs();
                if let Some(cookie) = session_cookie(&state.config, &session.token, max_age) {
                    response.headers_mut().append(SET_COOKIE, cookie);
                }
                count(&provider.name, "signed_in");
                Ok(response)
            }
            // Counted when answered, as linked, link_cancelled or refused.
            Outcome::ConfirmLink(link_id) => {
                let mut response = redirect(&link_path(&provider.name))?;
                let max_age = state.oauth.state_ttl().as_secs();
                if let Some(cookie) = link_cookie(&state, &link_id, max_age) {
                    response.headers_mut().append(SET_COOKIE, cookie);
                }
                Ok(response)
            }
            Outcome::AlreadyLinked => {
                count(&provider.name, "linked");
                redirect(&next)
            }
        }
    }
    .await;
    let mut response = outcome.unwrap_or_else(|e| {
        if !matches!(e, OAuthError::UnknownProvider(_)) {
            count(&name, "refused");
        }
        e.into_response()
    });
    // The flow is over either way: its cookie goes.
    if let Some(cookie) = flow_cookie(&state, "", 0) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    finish_headers(&mut response);
    response
}

/// `GET /auth/{provider}/link`: the confirmation page of the link the cookie names, for the
/// user who started it. Showing it changes nothing, the cookie included: one naming a link of
/// another provider still names it, and one whose link expired expires with it (same age).
async fn link_page(
    State(state): State<OAuthState>,
    provider: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let provider = provider.map(|Path(p)| p).unwrap_or_default();
    let outcome = (|| {
        let provider = state.oauth.provider(&provider)?;
        let link_id = cookie(&headers, LINK_COOKIE);
        let preview =
            state
                .oauth
                .link_to_confirm(&provider, link_id, signed_in(&state, &headers))?;
        Ok::<_, OAuthError>(page::confirm_link(&preview, &link_path(&provider.name)))
    })();
    let mut response = outcome.unwrap_or_else(IntoResponse::into_response);
    finish_headers(&mut response);
    response
}

/// `POST /auth/{provider}/link`: the confirmation form's answer. The link is taken out first,
/// so whatever happens it is answered once; then the answer must come from a page of this
/// site, from the user who started the link, with the page's token.
async fn link_answer(
    State(state): State<OAuthState>,
    provider: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let link = state.oauth.take_link(cookie(&headers, LINK_COOKIE));
    let provider = provider.map(|Path(p)| p).unwrap_or_default();
    let name = provider.clone();
    let outcome = async {
        let provider = state.oauth.provider(&provider)?;
        if !state.origins.permits(&headers) {
            return Err(OAuthError::LinkForeignOrigin);
        }
        let answer = link_form(body.as_deref().unwrap_or_default());
        let signed_in = signed_in(&state, &headers);
        let (decision, next) = state
            .oauth
            .answer_link(&provider, link, signed_in, answer)
            .await?;
        count(
            &provider.name,
            match decision {
                LinkDecision::Linked => "linked",
                LinkDecision::Cancelled => "link_cancelled",
            },
        );
        redirect(&next)
    }
    .await;
    let mut response = outcome.unwrap_or_else(|e| {
        if !matches!(e, OAuthError::UnknownProvider(_)) {
            count(&name, "refused");
        }
        e.into_response()
    });
    clear_link_cookie(&state, &mut response);
    finish_headers(&mut response);
    response
}

/// The confirmation form's fields (`application/x-www-form-urlencoded`); the first of each
/// counts, and a body that is not a form has none.
fn link_form(body: &[u8]) -> LinkAnswer {
    let mut answer = LinkAnswer::default();
    for (key, value) in form_urlencoded::parse(body) {
        let slot = match &*key {
            "token" => &mut answer.token,
            "action" => &mut answer.action,
            _ => continue,
        };
        slot.get_or_insert(value.into_owned());
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        for (input, expected) in [
            (None, "/"),
            (Some("/r/K7MP2X"), "/r/K7MP2X"),
            (Some("/a?b=c#d"), "/a?b=c#d"),
            (Some("https://evil.example/"), "/"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("/ok path"), "/"),
            (Some("/tab\t"), "/"),
            (Some("javascript:alert(1)"), "/"),
            (Some(""), "/"),
        ] {
            assert_eq!(safe_next(input), expected, "{input:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(2000)))), "/");
    }
}
