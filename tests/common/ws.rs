//! A graphql-transport-ws client for tests, over a real WebSocket.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the server ended the connection with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Closed(u16, String),
    Dropped,
}

/// Opens `ws://…/graphql` with the protocol header and sends `connection_init` with `payload`.
pub async fn open(base: &str, payload: Value) -> Socket {
    open_with_receive_buffer(base, payload, None).await
}

/// [`open`], with the client's TCP receive buffer set to `bytes`: a client that then stops
/// reading fills the server's side of the connection quickly.
pub async fn open_with_receive_buffer(base: &str, payload: Value, bytes: Option<u32>) -> Socket {
    let url = format!("{}/graphql", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let address = base.trim_start_matches("http://");
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(bytes) = bytes {
        tcp.set_recv_buffer_size(bytes).unwrap();
    }
    let stream = tcp
        .connect(address.parse().expect("a socket address"))
        .await
        .expect("the server accepts");
    let (mut socket, response) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("the WebSocket opens");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    socket
}

/// Opens a socket with `token` and waits for `connection_ack`.
pub async fn connect(base: &str, token: &str) -> Socket {
    let mut socket = open(base, json!({ "authorization": format!("Bearer {token}") })).await;
    let ack = next_json(&mut socket).await.expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// Opens `ws://…/graphql` with the protocol header and sends nothing.
pub async fn open_without_init(base: &str) -> Socket {
    let url = format!("{}/graphql", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the WebSocket opens");
    socket
}

/// Opens a socket with `token`, with a small receive buffer ([`open_with_receive_buffer`]), and
/// waits for `connection_ack`.
pub async fn connect_with_receive_buffer(base: &str, token: &str, bytes: u32) -> Socket {
    let payload = json!({ "authorization": format!("Bearer {token}") });
    let mut socket = open_with_receive_buffer(base, payload, Some(bytes)).await;
    let ack = next_json(&mut socket).await.expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

/// Starts a subscription with id `id`.
pub async fn subscribe(socket: &mut Socket, id: &str, query: &str) {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
}

/// The next JSON message, or how the connection ended; waits at most 20 s.
pub async fn next_message(socket: &mut Socket) -> Result<Value, Ended> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a message within 20 s");
        match frame {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame
                    .map(|f| Ended::Closed(u16::from(f.code), f.reason.to_string()))
                    .unwrap_or(Ended::Dropped));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(Ended::Dropped),
        }
    }
}

pub async fn next_json(socket: &mut Socket) -> Result<Value, Ended> {
    next_message(socket).await
}

/// The payload of the next `next` message for subscription `id`.
pub async fn next_data(socket: &mut Socket, id: &str) -> Value {
    let message = next_message(socket).await.expect("a next message");
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], id);
    message["payload"].clone()
}

/// Runs `trigger` until subscription `id` hears something (a subscription is in place a moment
/// after `subscribe` is sent, and the protocol does not say when), and returns the first payload.
pub async fn until_heard<F, Fut>(socket: &mut Socket, id: &str, mut trigger: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..40 {
        trigger().await;
        match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(message["type"], "next", "{message}");
                assert_eq!(message["id"], id);
                return message["payload"].clone();
            }
            Ok(other) => panic!("the subscription ended: {other:?}"),
        }
    }
    panic!("subscription {id} heard nothing");
}
