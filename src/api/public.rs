//! What the web UI asks before anyone has signed in: whether this browser holds a session, and
//! the name of the room an invite link points to.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::ApiState;
use crate::auth::PublicUser;
use crate::http::error::{ApiPath, AppError};
use crate::http::extract::{ClientIp, CurrentUser};
use crate::limits::NotAdmitted;

/// `{"user": ...}` when the request carries a live session, `{"user": null}` otherwise. Unlike
/// `/api/me` it answers 200 either way, so a signed-out page load logs no failed request.
pub async fn session(current: Result<CurrentUser, AppError>) -> Json<Value> {
    match current {
        Ok(current) => Json(json!({ "user": PublicUser::from(&current.auth.user) })),
        Err(_) => Json(json!({ "user": null })),
    }
}

/// The room behind an invite link, `{"room": {"code", "name"}}`, for the sign-up page;
/// `{"room": null}` when there is no such room (200 still: a mistyped link is the visitor's
/// news, not a failed request). Holding the code already lets anyone with an account join, so
/// its name tells them nothing more; codes that do not exist count against the address like
/// any other guess, and an address over that limit is refused ([`crate::limits`]).
pub async fn invite(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<Value>, AppError> {
    let code = match state.limits.admit(&state.store, ip, None, &raw) {
        Ok(code) => code,
        Err(NotAdmitted::NoSuchCode) => return Ok(Json(json!({ "room": null }))),
        Err(refused) => return Err(refused.into()),
    };
    let Some(room) = state.store.room(&code)? else {
        state.limits.unknown_code(ip);
        return Ok(Json(json!({ "room": null })));
    };
    Ok(Json(
        json!({ "room": { "code": room.code, "name": room.name } }),
    ))
}
