//! GraphQL over WebSocket at `/graphql`, in the graphql-transport-ws protocol.
//!
//! The client authenticates in `connection_init` (`{"authorization": "Bearer <JWT>"}`, or
//! `{"token": "<JWT>"}`); a bad token closes the socket with 4403, and one that expires while
//! the socket is open closes it with 4401. Every `subscribe` passes the same checks as an HTTP
//! request before async-graphql parses it (nesting, size, depth, aliases, root fields), then the
//! schema's complexity and recursion limits. A socket holds at most [`MAX_SUBSCRIPTIONS`]
//! operations (4429 past that), and a caller at most `TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN`
//! over all their sockets (`RATE_LIMITED`). Queries and mutations run under
//! `TANDEM_REQUEST_TIMEOUT`. Message types the protocol does not name (such as the legacy
//! `start`) close the socket with 4400. A client that does not read for
//! `TANDEM_WS_SEND_TIMEOUT`, or falls behind the hub, is closed with 1013 and everything its
//! operations held is dropped at once. On shutdown every socket closes with 1001 and its
//! operations are cancelled.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use async_graphql::futures_util::{StreamExt, stream};
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Error};
use serde_json::json;
use tracing::Instrument;

use crate::auth::{TokenWindow, Viewer};
use crate::graphql::limits::{self, Syntax};
use crate::graphql::socket_slots::Slot;
use crate::graphql::subscriptions::{SLOW_SUBSCRIBER_CLOSE, SlowSubscriber};
use crate::graphql::transport::{operation_label, operation_type};
use crate::graphql::{TandemSchema, loaders};
use crate::referrals::links::Visitor;
use crate::state::AppState;

const PROTOCOL: &str = "graphql-transport-ws";
/// How long the closing frame may wait for a client that does not read, once what the socket
/// held has been dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(30);
/// Closed when the token in `connection_init` is bad.
pub const FORBIDDEN_CLOSE: u16 = 4403;
/// Closed when the token expires while the socket is open, or a `subscribe` comes before
/// `connection_init`.
pub const UNAUTHORIZED_CLOSE: u16 = 4401;
/// The most operations one socket may hold open at once.
pub const MAX_SUBSCRIPTIONS: usize = 50;

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
    let request_id = http
        .extensions()
        .get::<crate::server::telemetry::RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let span = tracing::info_span!("websocket", request_id = %request_id);
    let socket = Socket::new(state.get_ref().clone(), session, visitor);
    let schema = schema.get_ref().clone();
    // A message is held to the size of a request body (TANDEM_MAX_BODY_BYTES).
    let max_frame = state.settings.http.max_body_bytes;
    actix_web::rt::spawn(
        socket
            .serve(schema, incoming.max_frame_size(max_frame))
            .instrument(span),
    );
    Ok(response)
}

/// Who is on the other end, once `connection_init` has arrived.
struct Caller {
    viewer: Viewer,
    /// The token's validity, when a token was sent.
    window: Option<TokenWindow>,
    /// What [`crate::graphql::socket_slots::SocketSlots`] counts this caller by.
    key: String,
    role: &'static str,
}

/// One operation the socket runs.
struct Running {
    /// Given back when the operation ends.
    _slot: Slot,
    label: String,
    started: Instant,
    /// Queries and mutations only: a subscription lives until it completes.
    deadline: Option<tokio::time::Instant>,
    failed: bool,
    /// It did not validate: it is counted as `invalid`, since its fields may not exist.
    not_run: bool,
}

/// A message from the client, as far as the socket needs to know it.
enum ClientMessage {
    Init(serde_json::Value),
    Subscribe {
        id: String,
        query: String,
        operation_name: Option<String>,
    },
    Complete(String),
    Ping,
    Pong,
    /// Not JSON, not an object, or a message this protocol does not name.
    Invalid(String),
}

impl ClientMessage {
    fn read(text: &str) -> Self {
        // serde_json refuses nesting past 128 levels with an error, so this cannot overflow.
        let Ok(serde_json::Value::Object(mut message)) = serde_json::from_str(text) else {
            return Self::Invalid("a message must be a JSON object with a type".into());
        };
        let kind = match message.remove("type") {
            Some(serde_json::Value::String(kind)) => kind,
            _ => return Self::Invalid("a message must have a string type".into()),
        };
        let id = match message.remove("id") {
            Some(serde_json::Value::String(id)) if !id.is_empty() && id.len() <= 128 => Some(id),
            Some(_) => {
                return Self::Invalid("an id must be a string of 1 to 128 bytes".into());
            }
            None => None,
        };
        let mut payload = message.remove("payload").unwrap_or_default();
        match (kind.as_str(), id) {
            ("connection_init", _) => Self::Init(payload),
            ("ping", _) => Self::Ping,
            ("pong", _) => Self::Pong,
            ("complete", Some(id)) => Self::Complete(id),
            ("subscribe", Some(id)) => {
                let query = match payload.get_mut("query").map(serde_json::Value::take) {
                    Some(serde_json::Value::String(query)) => query,
                    _ => return Self::Invalid("a subscribe payload must have a query".into()),
                };
                let operation_name = payload
                    .get("operationName")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                Self::Subscribe {
                    id,
                    query,
                    operation_name,
                }
            }
            ("subscribe" | "complete", None) => {
                Self::Invalid(format!("a {kind} message must have an id"))
            }
            (other, _) => {
                let other: String = other.chars().take(40).collect();
                Self::Invalid(format!(
                    "'{other}' is not a graphql-transport-ws message (use subscribe, not start)"
                ))
            }
        }
    }
}

/// How a send to the client went.
enum Sent {
    Yes,
    /// The client is gone.
    Gone,
    /// It did not read within the send timeout.
    Stuck,
}

fn close(code: u16, why: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::Other(code),
        description: Some(why.chars().take(120).collect()),
    })
}

/// An `error` message for operation `id`: it ended without running, or was stopped.
fn error_message(id: &str, message: &str, code: &str) -> String {
    json!({
        "id": id,
        "type": "error",
        "payload": [{ "message": message, "extensions": { "code": code } }],
    })
    .to_string()
}

/// What the socket reads of a message async-graphql sends.
struct Outgoing {
    kind: String,
    id: Option<String>,
    /// A `next` carrying errors.
    failed: bool,
    /// A `next` with errors and no data, none at a path: the operation did not validate.
    not_run: bool,
}

fn read_outgoing(text: &str) -> Outgoing {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "type", default)]
        kind: String,
        id: Option<String>,
        #[serde(default)]
        payload: Option<Payload>,
    }
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(default)]
        data: Option<IgnoredAny>,
        #[serde(default)]
        errors: Option<Vec<ErrorHead>>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorHead {
        #[serde(default)]
        path: Option<Vec<IgnoredAny>>,
    }
    let Ok(head) = serde_json::from_str::<Head>(text) else {
        return Outgoing {
            kind: String::new(),
            id: None,
            failed: false,
            not_run: false,
        };
    };
    let (failed, not_run) = match head.payload {
        Some(Payload {
            data,
            errors: Some(errors),
        }) if !errors.is_empty() => {
            let at_no_path = errors
                .iter()
                .all(|e| e.path.as_ref().is_none_or(Vec::is_empty));
            (true, data.is_none() && at_no_path)
        }
        _ => (false, false),
    };
    Outgoing {
        kind: head.kind,
        id: head.id,
        failed,
        not_run,
    }
}

struct Socket {
    state: AppState,
    session: actix_ws::Session,
    visitor: Visitor,
    caller: Option<Caller>,
    running: HashMap<String, Running>,
    /// Operations this socket stopped (timed out) whose `complete` from async-graphql is still
    /// to come; it is not the client's to see.
    stopped: HashSet<String>,
    /// Messages waiting for async-graphql to take them, in order.
    to_protocol: VecDeque<String>,
}

impl Socket {
    fn new(state: AppState, session: actix_ws::Session, visitor: Visitor) -> Self {
        Self {
            state,
            session,
            visitor,
            caller: None,
            running: HashMap::new(),
            stopped: HashSet::new(),
            to_protocol: VecDeque::new(),
        }
    }

    async fn send(&mut self, text: String) -> Sent {
        let timeout = self.state.settings.http.ws_send_timeout;
        match tokio::time::timeout(timeout, self.session.text(text)).await {
            Ok(Ok(())) => Sent::Yes,
            Ok(Err(_)) => Sent::Gone,
            Err(_) => Sent::Stuck,
        }
    }

    async fn serve(mut self, schema: TandemSchema, mut incoming: actix_ws::MessageStream) {
        let (to_graphql, from_client) = tokio::sync::mpsc::channel::<String>(16);
        let from_client = stream::unfold(from_client, |mut receiver| async move {
            receiver.recv().await.map(|text| (text, receiver))
        });
        let slow = SlowSubscriber::default();
        let viewer_for_protocol: Arc<Mutex<Option<Viewer>>> = Arc::default();
        let mut data = Data::default();
        data.insert(self.visitor.clone());
        data.insert(slow.clone());
        data.insert(loaders::for_request(
            self.state.db.clone(),
            self.state.clock.clone(),
            self.state.program.clone(),
            false,
        ));
        let handed_over = viewer_for_protocol.clone();
        let protocol = WebSocket::new(schema, from_client, WebSocketProtocols::GraphQLWS)
            .connection_data(data)
            .on_connection_init(move |_| async move {
                let viewer = handed_over
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .unwrap_or(Viewer::Anonymous);
                let mut data = Data::default();
                data.insert(viewer);
                Ok::<_, Error>(data)
            });
        // Boxed so that it, and every operation it runs, can be dropped before the close frame
        // waits for a client that may never read it.
        let mut protocol = Box::pin(protocol);
        // `connection_init` must come as soon as a request body must: within the time limit.
        let init_deadline = tokio::time::sleep(self.state.settings.http.request_timeout);
        let mut init_deadline = std::pin::pin!(init_deadline);
        let mut expiry_check = tokio::time::interval(Duration::from_secs(1));
        expiry_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            let next_deadline = self.running.values().filter_map(|r| r.deadline).min();
            let timed_out = async move {
                match next_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // While a message waits for the protocol to take it, the client is not read: the
                // protocol is polled below meanwhile, so it drains.
                permit = to_graphql.reserve(), if !self.to_protocol.is_empty() => match permit {
                    Ok(permit) => permit.send(self.to_protocol.pop_front().unwrap_or_default()),
                    Err(_) => break None,
                },
                message = incoming.next(), if self.to_protocol.is_empty() => match message {
                    Some(Ok(Message::Text(text))) => {
                        match self.receive(&text, &viewer_for_protocol).await {
                            Ok(()) => {}
                            Err(reason) => break reason,
                        }
                    }
                    Some(Ok(Message::Ping(bytes))) => {
                        if self.session.pong(&bytes).await.is_err() {
                            break None;
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
                        let Outgoing { kind, id, failed, not_run } = read_outgoing(&text);
                        if let Some(id) = &id {
                            if self.stopped.contains(id) {
                                if kind == "complete" || kind == "error" {
                                    self.stopped.remove(id);
                                }
                                continue;
                            }
                            if let Some(running) = self.running.get_mut(id) {
                                running.failed |= failed || kind == "error";
                                running.not_run |= not_run || kind == "error";
                            }
                            if kind == "complete" || kind == "error" {
                                self.finish(id, None);
                            }
                        }
                        match self.send(text).await {
                            Sent::Yes => {}
                            Sent::Gone => break None,
                            Sent::Stuck => {
                                break close(SLOW_SUBSCRIBER_CLOSE, "the client does not read");
                            }
                        }
                        if slow.0.load(Ordering::SeqCst) {
                            break close(SLOW_SUBSCRIBER_CLOSE, "the subscriber fell behind");
                        }
                    }
                    Some(WsMessage::Close(code, why)) => break close(code, &why),
                    None => break None,
                },
                () = timed_out => {
                    if let Err(reason) = self.stop_overdue().await {
                        break reason;
                    }
                }
                _ = expiry_check.tick(), if self.caller.as_ref().is_some_and(|c| c.window.is_some()) => {
                    if let Some(why) = self.token_refusal() {
                        break close(UNAUTHORIZED_CLOSE, &format!("The token was refused: {why}"));
                    }
                }
                () = &mut init_deadline, if self.caller.is_none() => {
                    break close(4408, "connection_init did not arrive in time");
                }
                () = self.state.shutdown.stopped() => {
                    break close(1001, "the server is shutting down");
                }
            }
        };
        // What the operations held goes first, whether or not the client ever reads the close.
        drop(protocol);
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            self.finish(&id, None);
        }
        self.to_protocol.clear();
        let _ = tokio::time::timeout(CLOSE_GRACE, self.session.close(reason)).await;
    }

    /// Why the caller's token no longer holds, if it does not.
    fn token_refusal(&self) -> Option<&'static str> {
        let window = self.caller.as_ref()?.window?;
        window.refusal(self.state.clock.now())
    }

    /// Takes one message from the client; `Err` closes the socket with the reason.
    async fn receive(
        &mut self,
        text: &str,
        viewer_for_protocol: &Mutex<Option<Viewer>>,
    ) -> Result<(), Option<CloseReason>> {
        match ClientMessage::read(text) {
            ClientMessage::Invalid(why) => Err(close(4400, &why)),
            ClientMessage::Init(payload) => {
                if self.caller.is_none() {
                    let caller = self.identify(&payload)?;
                    *viewer_for_protocol
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(caller.viewer.clone());
                    self.caller = Some(caller);
                }
                // A second one is the protocol's to refuse (4429).
                self.to_protocol.push_back(text.to_owned());
                Ok(())
            }
            ClientMessage::Ping | ClientMessage::Pong => {
                self.to_protocol.push_back(text.to_owned());
                Ok(())
            }
            ClientMessage::Complete(id) => {
                if self.running.contains_key(&id) {
                    self.finish(&id, None);
                    // async-graphql answers with a `complete` the client did not ask for.
                    self.stopped.insert(id);
                    self.to_protocol.push_back(text.to_owned());
                }
                Ok(())
            }
            ClientMessage::Subscribe {
                id,
                query,
                operation_name,
            } => {
                self.subscribe(text, id, &query, operation_name.as_deref())
                    .await
            }
        }
    }

    /// Reads the token of `connection_init`; a refused one closes the socket with 4403.
    fn identify(&self, payload: &serde_json::Value) -> Result<Caller, Option<CloseReason>> {
        let Some(token) = token(payload) else {
            let address = self
                .state
                .rate_limits
                .client_key(self.visitor.ip.as_deref());
            return Ok(Caller {
                viewer: Viewer::Anonymous,
                window: None,
                key: format!("anonymous:{address}"),
                role: "anonymous",
            });
        };
        match self.state.jwt.verify_window(&token, self.state.clock.now()) {
            Ok((principal, window)) => Ok(Caller {
                key: format!("{}:{}", principal.role.as_str(), principal.subject),
                role: principal.role.as_str(),
                viewer: Viewer::Authenticated(principal),
                window: Some(window),
            }),
            Err(why) => Err(close(
                FORBIDDEN_CLOSE,
                &format!("The token was refused: {why}"),
            )),
        }
    }

    /// Checks a `subscribe` as HTTP checks a request, then hands it to async-graphql.
    async fn subscribe(
        &mut self,
        text: &str,
        id: String,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<(), Option<CloseReason>> {
        let Some(caller) = &self.caller else {
            return Err(close(
                UNAUTHORIZED_CLOSE,
                "Unauthorized: send connection_init first",
            ));
        };
        let key = caller.key.clone();
        if let Some(why) = self.token_refusal() {
            return Err(close(
                UNAUTHORIZED_CLOSE,
                &format!("The token was refused: {why}"),
            ));
        }
        if self.running.contains_key(&id) || self.stopped.contains(&id) {
            return Err(close(4409, &format!("Subscriber for {id} already exists")));
        }
        let limits = self.state.settings.http;
        let checked = limits::check_nesting(query, Syntax::GraphQl, "The query").and_then(|()| {
            let document = async_graphql::parser::parse_query(query).map_err(|e| e.to_string())?;
            limits::check_document(&document, limits.query)?;
            Ok(document)
        });
        let document = match checked {
            Ok(document) => document,
            Err(message) => {
                self.record("invalid", "refused", Instant::now());
                return self.refuse(&id, &message, "BAD_USER_INPUT").await;
            }
        };
        if self.running.len() >= MAX_SUBSCRIPTIONS {
            return Err(close(4429, "too many subscriptions on one socket"));
        }
        let label = operation_label(&document, operation_name);
        let Some(slot) = self.state.socket_slots.take(&key) else {
            self.record(&label, "refused", Instant::now());
            let message = format!(
                "This token already holds {} open operations (TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN); \
                 complete some before starting more",
                self.state.socket_slots.limit()
            );
            return self.refuse(&id, &message, "RATE_LIMITED").await;
        };
        let deadline = (operation_type(&document, operation_name)
            != Some(OperationType::Subscription))
        .then(|| tokio::time::Instant::now() + limits.request_timeout);
        self.running.insert(
            id,
            Running {
                _slot: slot,
                label,
                started: Instant::now(),
                deadline,
                failed: false,
                not_run: false,
            },
        );
        self.to_protocol.push_back(text.to_owned());
        Ok(())
    }

    /// Answers operation `id` with an `error` and does not run it.
    async fn refuse(
        &mut self,
        id: &str,
        message: &str,
        code: &str,
    ) -> Result<(), Option<CloseReason>> {
        match self.send(error_message(id, message, code)).await {
            Sent::Yes => Ok(()),
            Sent::Gone => Err(None),
            Sent::Stuck => Err(close(SLOW_SUBSCRIBER_CLOSE, "the client does not read")),
        }
    }

    /// Stops the queries and mutations that ran past `TANDEM_REQUEST_TIMEOUT`.
    async fn stop_overdue(&mut self) -> Result<(), Option<CloseReason>> {
        let now = tokio::time::Instant::now();
        let overdue: Vec<String> = self
            .running
            .iter()
            .filter(|(_, r)| r.deadline.is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let timeout = humantime::format_duration(self.state.settings.http.request_timeout);
        for id in overdue {
            self.finish(&id, Some("timeout"));
            self.stopped.insert(id.clone());
            // The protocol drops the operation's future when it reads this.
            self.to_protocol
                .push_back(json!({ "id": id, "type": "complete" }).to_string());
            let message = format!(
                "The operation took longer than {timeout} and was stopped \
                 (TANDEM_REQUEST_TIMEOUT); ask for less, or try again"
            );
            self.refuse(&id, &message, "TIMEOUT").await?;
        }
        Ok(())
    }

    /// Ends operation `id`: its slot goes back and it is logged and counted.
    fn finish(&mut self, id: &str, outcome: Option<&str>) {
        let Some(running) = self.running.remove(id) else {
            return;
        };
        if running.not_run {
            self.record("invalid", "refused", running.started);
            return;
        }
        let outcome = outcome.unwrap_or(if running.failed { "errors" } else { "ok" });
        self.record(&running.label, outcome, running.started);
    }

    /// Logs and counts one operation as the HTTP transport does.
    fn record(&self, label: &str, outcome: &str, started: Instant) {
        let role = self.caller.as_ref().map_or("anonymous", |c| c.role);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            operation = label,
            role,
            outcome,
            elapsed_ms,
            "websocket operation"
        );
        ::metrics::counter!(
            "tandem_graphql_operations_total",
            "operation" => label.to_owned(),
            "outcome" => outcome.to_owned()
        )
        .increment(1);
        ::metrics::histogram!(
            "tandem_graphql_operation_duration_seconds",
            "operation" => label.to_owned()
        )
        .record(started.elapsed().as_secs_f64());
    }
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
