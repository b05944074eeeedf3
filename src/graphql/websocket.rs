//! GraphQL subscriptions over WebSocket at `/graphql`, in the graphql-transport-ws protocol.
//! The client authenticates in `connection_init` (`{"authorization": "Bearer <JWT>"}`, or
//! `{"token": "<JWT>"}`); a bad or expired token closes the socket with 4403. Input is bounded:
//! a frame is at most 64 KiB, a socket holds at most [`MAX_SUBSCRIPTIONS`] subscriptions (4429
//! past that), and each operation passes the schema's complexity and recursion limits. A client that stops reading is closed
//! with 1013 once a send waits over [`SEND_TIMEOUT`] or it falls behind the hub; writers never
//! wait for it. On shutdown every socket closes with 1001.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use async_graphql::futures_util::{StreamExt, stream};
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use async_graphql::{Data, Error};

use crate::auth::Viewer;
use crate::graphql::subscriptions::{SLOW_SUBSCRIBER_CLOSE, SlowSubscriber};
use crate::graphql::{TandemSchema, loaders};
use crate::state::AppState;

const PROTOCOL: &str = "graphql-transport-ws";
/// The longest a frame from a client may be.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// How long one message to a client may wait for the client to read.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Closed when the token in `connection_init` is bad or expired.
pub const FORBIDDEN_CLOSE: u16 = 4403;
/// The most subscriptions one socket may hold open at once.
pub const MAX_SUBSCRIPTIONS: usize = 50;

/// The `type` and `id` of a protocol message.
fn kind_and_id(text: &str) -> (String, Option<String>) {
    let message: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let field = |name: &str| {
        message
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    (field("type").unwrap_or_default(), field("id"))
}

/// Whether a GET to `/graphql` asks to become a WebSocket.
pub fn is_upgrade(request: &actix_web::dev::RequestHead) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `GET /graphql` with `Upgrade: websocket`.
pub async fn upgrade(
    schema: web::Data<TandemSchema>,
    state: web::Data<AppState>,
    http: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let speaks_protocol = http
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
    if !speaks_protocol {
        return Ok(HttpResponse::BadRequest().body(
            "Subscriptions use the graphql-transport-ws protocol: send the header \
             Sec-WebSocket-Protocol: graphql-transport-ws",
        ));
    }
    let (response, session, incoming) = actix_ws::handle_with_protocols(&http, body, &[PROTOCOL])?;
    let visitor = crate::server::http::visitor(&http, &state.settings.trusted_proxies);
    let state = state.get_ref().clone();
    let schema = schema.get_ref().clone();
    actix_web::rt::spawn(serve(
        schema,
        state,
        session,
        incoming.max_frame_size(MAX_FRAME_BYTES),
        visitor,
    ));
    Ok(response)
}

async fn serve(
    schema: TandemSchema,
    state: AppState,
    mut session: actix_ws::Session,
    mut incoming: actix_ws::MessageStream,
    visitor: crate::referrals::links::Visitor,
) {
    let (to_graphql, from_client) = tokio::sync::mpsc::channel::<String>(16);
    let from_client = stream::unfold(from_client, |mut receiver| async move {
        receiver.recv().await.map(|text| (text, receiver))
    });
    let refused: Arc<Mutex<Option<String>>> = Arc::default();
    let slow = SlowSubscriber::default();
    let mut data = Data::default();
    data.insert(visitor);
    data.insert(slow.clone());
    data.insert(loaders::for_request(state.db.clone()));
    let (jwt, clock, refusal) = (state.jwt.clone(), state.clock.clone(), refused.clone());
    let protocol = WebSocket::new(schema, from_client, WebSocketProtocols::GraphQLWS)
        .connection_data(data)
        .on_connection_init(move |payload| async move {
            let viewer = match token(&payload) {
                None => Viewer::Anonymous,
                Some(token) => jwt.viewer(Some(&format!("Bearer {token}")), clock.now()),
            };
            if let Viewer::Rejected(why) = &viewer {
                let why = format!("The token was refused: {why}");
                *refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
                return Err(Error::new(why));
            }
            let mut data = Data::default();
            data.insert(viewer);
            Ok(data)
        });
    let mut protocol = std::pin::pin!(protocol);
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    let mut init_deadline = std::pin::pin!(init_deadline);
    let mut initialised = false;
    let mut open = std::collections::HashSet::new();
    let mut waiting: Option<String> = None;
    let close = |code: u16, why: &str| {
        Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(why.chars().take(120).collect()),
        })
    };
    let reason = loop {
        tokio::select! {
            // While a message waits for the protocol to take it, the client is not read: the
            // protocol is polled below meanwhile, so it drains.
            permit = to_graphql.reserve(), if waiting.is_some() => match permit {
                Ok(permit) => permit.send(waiting.take().unwrap_or_default()),
                Err(_) => break None,
            },
            message = incoming.next(), if waiting.is_none() => match message {
                Some(Ok(Message::Text(text))) => {
                    match kind_and_id(&text) {
                        (kind, _) if kind == "connection_init" => initialised = true,
                        (kind, Some(id)) if kind == "subscribe" => {
                            open.insert(id);
                            if open.len() > MAX_SUBSCRIPTIONS {
                                break close(4429, "too many subscriptions on one socket");
                            }
                        }
                        (kind, Some(id)) if kind == "complete" => {
                            open.remove(&id);
                        }
                        _ => {}
                    }
                    waiting = Some(text.to_string());
                }
                Some(Ok(Message::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    break close(1003, "this protocol sends text frames");
                }
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Err(error)) => break close(1002, &error.to_string()),
                Some(Ok(_)) => {}
            },
            outgoing = protocol.next() => match outgoing {
                Some(WsMessage::Text(text)) => {
                    if let (kind, Some(id)) = kind_and_id(&text)
                        && (kind == "complete" || kind == "error")
                    {
                        open.remove(&id);
                    }
                    match tokio::time::timeout(SEND_TIMEOUT, session.text(text)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => break close(SLOW_SUBSCRIBER_CLOSE, "the client does not read"),
                    }
                    if slow.0.load(Ordering::SeqCst) {
                        break close(SLOW_SUBSCRIBER_CLOSE, "the subscriber fell behind");
                    }
                }
                Some(WsMessage::Close(code, why)) => {
                    let refused = refused.lock().unwrap_or_else(|p| p.into_inner()).take();
                    break match refused {
                        Some(why) => close(FORBIDDEN_CLOSE, &why),
                        None => close(code, &why),
                    };
                }
                None => break None,
            },
            () = &mut init_deadline, if !initialised => {
                break close(4408, "connection_init did not arrive in time");
            }
            () = state.shutdown.stopped() => break close(1001, "the server is shutting down"),
        }
    };
    let _ = session.close(reason).await;
}

/// The token a `connection_init` payload carries, if any.
fn token(payload: &serde_json::Value) -> Option<String> {
    let field = |name: &str| payload.get(name).and_then(|v| v.as_str());
    if let Some(token) = field("token") {
        return Some(token.trim().to_owned());
    }
    let header = field("authorization").or_else(|| field("Authorization"))?;
    Some(
        header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or(header)
            .trim()
            .to_owned(),
    )
}
