//! Rooms over HTTP: create, list mine, one room with its members, history pages.

use std::collections::HashSet;
use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::ApiState;
use crate::http::error::{ApiJson, ApiPath, AppError};
use crate::http::extract::{ClientIp, CurrentUser};
use crate::ids::{RoomCode, Seq};
use crate::protocol::view::{MemberView, RoomView};
use crate::rooms::{create, RoomCommand, RoomError};
use crate::rooms::{fit_page, history_limit, Keep};
use crate::store::rooms::RoomRecord;

#[derive(Deserialize)]
pub struct NewRoom {
    name: String,
}

pub async fn create(
    State(state): State<ApiState>,
    current: CurrentUser,
    ApiJson(body): ApiJson<NewRoom>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let max = state.config.rooms.max_name_chars;
    let user = &current.auth.user;
    state.limits.create_room(user.id)?;
    let room = match create::create_room(&state.store, user, &body.name, max).await {
        Ok(room) => room,
        Err(e) => {
            state.limits.creation_failed(user.id);
            return Err(e.into());
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "room": RoomView::from(&room) })),
    ))
}

pub async fn mine(
    State(state): State<ApiState>,
    current: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let rooms: Vec<RoomView> = state
        .store
        .rooms_of_user(current.auth.user.id)?
        .iter()
        .map(RoomView::from)
        .collect();
    Ok(Json(json!({ "rooms": rooms })))
}

pub async fn one(
    State(state): State<ApiState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Value>, AppError> {
    let room = member_room(&state, &current, ip, &code)?;
    let online = online_members(&state, &room.code).await;
    let mut members = state.store.members(&room.code)?;
    members.sort_by_key(|(_, m)| m.since);
    let members: Vec<MemberView> = members
        .into_iter()
        .map(|(id, m)| MemberView {
            online: online.contains(&id),
            host: id == room.host,
            username: m.username,
            display_name: m.display_name,
        })
        .collect();
    Ok(Json(
        json!({ "room": RoomView::from(&room), "members": members }),
    ))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    before: Option<Seq>,
    limit: Option<u32>,
}

pub async fn messages(
    State(state): State<ApiState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    ApiPath(code): ApiPath<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let room = member_room(&state, &current, ip, &code)?;
    let limit = history_limit(query.limit)?;
    let mut page = state.store.items_before(&room.code, query.before, limit)?;
    fit_page(&mut page, state.config.rooms.max_page_bytes, Keep::Newest);
    Ok(Json(json!({ "messages": page.items, "more": page.more })))
}

/// The room, if it exists and the caller is a member: the code passes the gate every path
/// that names a room passes ([`crate::limits::Limits::admit`]).
fn member_room(
    state: &ApiState,
    current: &CurrentUser,
    ip: IpAddr,
    raw: &str,
) -> Result<RoomRecord, AppError> {
    let user = current.auth.user.id;
    let code = state.limits.admit(&state.store, ip, Some(user), raw)?;
    let Some(room) = state.store.room(&code)? else {
        state.limits.unknown_code(ip);
        return Err(RoomError::UnknownRoom.into());
    };
    if !state.store.is_member(&room.code, user)? {
        return Err(RoomError::NotMember.into());
    }
    Ok(room)
}

/// Members with a subscribed socket; nobody when the room's actor is not running.
async fn online_members(state: &ApiState, code: &RoomCode) -> HashSet<u64> {
    let Some(inbox) = state.rooms.running(code) else {
        return HashSet::new();
    };
    let (reply, answer) = oneshot::channel();
    if inbox.send(RoomCommand::Online { reply }).await.is_err() {
        return HashSet::new();
    }
    answer.await.unwrap_or_default()
}
