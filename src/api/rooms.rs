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
use crate::protocol::view::{MemberView, RoomView, Standing};
use crate::rooms::{create, reads, RoomCommand, RoomError};
use crate::rooms::{fit_page, history_limit, Keep};
use crate::store::rooms::{MemberRecord, NotifyLevel, RoomRecord};

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
    let user = current.auth.user.id;
    let mut rooms = Vec::new();
    for room in state.store.rooms_of_user(user)? {
        let mut view = RoomView::from(&room);
        // Left between the two reads: listed without a standing.
        if let Some(member) = state.store.member(&room.code, user)? {
            view = view.with_standing(standing_of(&state, &room, &member)?);
        }
        rooms.push(view);
    }
    Ok(Json(json!({ "rooms": rooms })))
}

fn standing_of(
    state: &ApiState,
    room: &RoomRecord,
    member: &MemberRecord,
) -> Result<Standing, AppError> {
    let max = state.config.rooms.max_unread_counted;
    Ok(reads::standing(&state.store, &room.code, member, max)?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyBody {
    level: NotifyLevel,
}

/// `PUT /api/rooms/{code}/notify`: what the caller is notified of in this room.
pub async fn notify(
    State(state): State<ApiState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    ApiPath(code): ApiPath<String>,
    ApiJson(body): ApiJson<NotifyBody>,
) -> Result<Json<Value>, AppError> {
    let (room, _) = member_room(&state, &current, ip, &code)?;
    let (done, stored) = oneshot::channel();
    let command = RoomCommand::Notify {
        user: current.auth.user.id,
        level: body.level,
        done,
    };
    state.rooms.send(&room.code, command).await?;
    stored
        .await
        .unwrap_or(Err(RoomError::Internal("the room stopped".into())))?;
    Ok(Json(json!({ "level": body.level })))
}

pub async fn one(
    State(state): State<ApiState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Value>, AppError> {
    let (room, member) = member_room(&state, &current, ip, &code)?;
    let standing = standing_of(&state, &room, &member)?;
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
        json!({ "room": RoomView::from(&room).with_standing(standing), "members": members }),
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
    let (room, _) = member_room(&state, &current, ip, &code)?;
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
) -> Result<(RoomRecord, MemberRecord), AppError> {
    let user = current.auth.user.id;
    let code = state.limits.admit(&state.store, ip, Some(user), raw)?;
    let Some(room) = state.store.room(&code)? else {
        state.limits.unknown_code(ip);
        return Err(RoomError::UnknownRoom.into());
    };
    let Some(member) = state.store.member(&room.code, user)? else {
        return Err(RoomError::NotMember.into());
    };
    Ok((room, member))
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
