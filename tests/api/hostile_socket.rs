//! What an attacker tried over the WebSocket at `/graphql`: every limit of the HTTP transport
//! holds there too, one token cannot multiply itself over many sockets, a token stops working
//! when it expires, and a client that stops reading is closed without keeping its backlog. Runs
//! against a real socket on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

use std::time::Duration;

use chrono::Duration as Span;
use serde_json::json;

use crate::common::ws::{self, Ended, Socket};
use crate::common::{TEST_SECRET, TestApp, data, hold_customer, name_of, sign_hs256};

const MY_REWARDS: &str = "subscription { myRewards { kind points } }";

/// The `error` message the server answers operation `id` with, and its code.
async fn refusal_of(socket: &mut Socket, id: &str) -> (String, String) {
    let message = ws::next_message(socket).await.expect("an answer");
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], id, "{message}");
    let error = &message["payload"][0];
    (
        error["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A socket still answers: a query over it runs.
async fn assert_socket_serves(socket: &mut Socket, id: &str) {
    ws::subscribe(socket, id, "{ __typename }").await;
    let payload = ws::next_data(socket, id).await;
    assert_eq!(payload["data"]["__typename"], "Query", "{payload}");
    let done = ws::next_message(socket).await.unwrap();
    assert_eq!(done["type"], "complete", "{done}");
}

/// Waits until `caller` holds `count` operations open (at most 10 s).
async fn held_by(app: &TestApp, caller: &str, count: usize) {
    let settled = async {
        while app.state.socket_slots.held_by(caller) != count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), settled)
        .await
        .unwrap_or_else(|_| {
            let held = app.state.socket_slots.held_by(caller);
            panic!("{caller} holds {held} operations, not {count}")
        });
}

async fn close_code(socket: &mut Socket) -> (u16, String) {
    loop {
        match ws::next_message(socket).await {
            Ok(_) => continue,
            Err(Ended::Closed(code, reason)) => return (code, reason),
            Err(Ended::Dropped) => panic!("the connection was dropped without a close frame"),
        }
    }
}

#[tokio::test]
async fn deeply_nested_documents_over_the_socket_are_refused_and_the_server_lives() {
    let app = TestApp::spawn().await;
    let mut socket = ws::open(&app.address, json!({})).await;
    assert_eq!(
        ws::next_message(&mut socket).await.unwrap()["type"],
        "connection_ack"
    );
    let depth = 2_000;
    let documents = [
        // In the selection.
        format!("{{ {} }}", "a {".repeat(depth) + &"}".repeat(depth)),
        // In an input object.
        format!(
            "{{ referralCode(code: {}1{}) {{ code }} }}",
            "{a:".repeat(depth),
            "}".repeat(depth)
        ),
        // In a list default value.
        format!(
            "query($v: String = {}{}) {{ __typename }}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        // In a directive argument.
        format!(
            "{{ __typename @include(if: {}true{}) }}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    ];
    for (n, document) in documents.iter().enumerate() {
        assert!(document.len() < 10_000);
        let id = format!("deep-{n}");
        ws::subscribe(&mut socket, &id, document).await;
        let (code, message) = refusal_of(&mut socket, &id).await;
        assert_eq!(code, "BAD_USER_INPUT", "{message}");
        assert!(message.contains("levels"), "{message}");
    }
    assert_socket_serves(&mut socket, "after").await;
    app.assert_still_serves().await;
}

#[tokio::test]
async fn aliases_root_fields_and_fragment_fan_out_are_refused_over_the_socket_as_over_http() {
    let app = TestApp::spawn().await;
    let mut socket = ws::connect(&app.address, &app.admin_token()).await;
    let aliases: String = (0..200).map(|i| format!("a{i}: __typename ")).collect();
    ws::subscribe(&mut socket, "aliases", &format!("{{ {aliases} }}")).await;
    let (code, message) = refusal_of(&mut socket, "aliases").await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("TANDEM_MAX_ALIASES"), "{message}");

    let roots = "activeCampaign { id } ".repeat(80);
    ws::subscribe(&mut socket, "roots", &format!("{{ {roots} }}")).await;
    let (code, message) = refusal_of(&mut socket, "roots").await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("TANDEM_MAX_ROOT_FIELDS"), "{message}");

    let mut fan_out = String::from("query { activeCampaign { ...F0 } }\n");
    for level in 0..26 {
        let next = level + 1;
        fan_out.push_str(&format!(
            "fragment F{level} on Campaign {{ ...F{next} ...F{next} }}\n"
        ));
    }
    fan_out.push_str("fragment F26 on Campaign { id }\n");
    let started = std::time::Instant::now();
    ws::subscribe(&mut socket, "fan-out", &fan_out).await;
    let (code, message) = refusal_of(&mut socket, "fan-out").await;
    assert_eq!(code, "BAD_USER_INPUT", "{message}");
    // Generous: the refusal takes milliseconds; this only says "not minutes".
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_socket_serves(&mut socket, "after").await;
}

#[tokio::test]
async fn the_legacy_start_message_and_unknown_types_close_the_socket_with_4400() {
    let app = TestApp::spawn().await;
    for kind in ["start", "stop", "connection_terminate", "hello"] {
        let mut socket = ws::connect(&app.address, &app.customer_token("ann")).await;
        ws::send(
            &mut socket,
            json!({ "id": "1", "type": kind, "payload": { "query": MY_REWARDS } }),
        )
        .await;
        let ended = tokio::time::timeout(Duration::from_secs(5), close_code(&mut socket)).await;
        let (code, reason) = ended.unwrap_or_else(|_| panic!("{kind} did not close the socket"));
        assert_eq!(code, 4400, "{kind}: {reason}");
    }
    data(&app.register_customer("ann", "ann@example.com").await);
    let mut socket = ws::connect(&app.address, &app.customer_token("ann")).await;
    ws::subscribe(&mut socket, "same", MY_REWARDS).await;
    ws::subscribe(&mut socket, "same", MY_REWARDS).await;
    let (code, reason) = close_code(&mut socket).await;
    assert_eq!(code, 4409, "{reason}");
}

#[tokio::test]
async fn one_token_holds_at_most_its_bound_over_all_of_its_sockets() {
    let app = TestApp::spawn_with(&[("TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN", "3")]).await;
    data(&app.register_customer("ann", "ann@example.com").await);
    let token = app.customer_token("ann");
    let mut first = ws::connect(&app.address, &token).await;
    let mut second = ws::connect(&app.address, &token).await;
    ws::subscribe(&mut first, "a", MY_REWARDS).await;
    ws::subscribe(&mut first, "b", MY_REWARDS).await;
    // Each socket has a task of its own: wait until the first one's are in place.
    held_by(&app, "customer:ann", 2).await;
    ws::subscribe(&mut second, "c", MY_REWARDS).await;
    ws::subscribe(&mut second, "d", MY_REWARDS).await;
    let (code, message) = refusal_of(&mut second, "d").await;
    assert_eq!(code, "RATE_LIMITED", "{message}");
    assert!(
        message.contains("TANDEM_WS_MAX_SUBSCRIPTIONS_PER_TOKEN"),
        "{message}"
    );
    assert_eq!(app.state.socket_slots.held_by("customer:ann"), 3);
    // Another customer is not held back by Ann.
    let mut other = ws::connect(&app.address, &app.customer_token("bob")).await;
    assert_socket_serves(&mut other, "bob").await;

    // Closing a socket gives its slots back.
    drop(first);
    held_by(&app, "customer:ann", 1).await;
    // A completed operation gives its slot back too, and hears nothing more.
    ws::send(&mut second, json!({ "id": "c", "type": "complete" })).await;
    held_by(&app, "customer:ann", 0).await;
    ws::subscribe(&mut second, "e", MY_REWARDS).await;
    let payload = ws::until_heard(&mut second, "e", || async {
        data(
            &app.graphql(
                Some(&app.admin_token()),
                "mutation { adjustPoints(customerExternalId: \"ann\", delta: 5, reason: \"hi\") { delta } }",
                json!({}),
            )
            .await,
        );
    })
    .await;
    assert_eq!(payload["data"]["myRewards"]["points"], 5, "{payload}");
    assert_eq!(app.state.socket_slots.held_by("customer:ann"), 1);
}

#[tokio::test]
async fn a_token_that_expires_while_its_socket_is_open_closes_it_with_4401() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("ann", "ann@example.com").await);
    let now = app.clock_now().timestamp();
    let short = sign_hs256(
        &json!({ "sub": "shop-backend", "role": "service", "exp": now + 5 }),
        TEST_SECRET,
    );
    let mut socket = ws::connect(&app.address, &short).await;
    assert_socket_serves(&mut socket, "before").await;
    app.clock.advance(Span::seconds(45));
    // HTTP refuses the token now; so does the socket, without waiting for its next message.
    let refused = app
        .graphql(
            Some(&short),
            "{ customer(externalId: \"ann\") { externalId } }",
            json!({}),
        )
        .await;
    assert_eq!(crate::common::error_code(&refused), Some("UNAUTHENTICATED"));
    let (code, reason) = close_code(&mut socket).await;
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("expired"), "{reason}");

    // A socket whose token expires between two messages is closed at the next one.
    let short = sign_hs256(
        &json!({ "sub": "shop-backend", "role": "service", "exp": app.clock_now().timestamp() + 5 }),
        TEST_SECRET,
    );
    let mut socket = ws::connect(&app.address, &short).await;
    app.clock.advance(Span::seconds(45));
    ws::subscribe(
        &mut socket,
        "late",
        "mutation { updateCustomer(externalId: \"ann\", input: { name: \"Late\" }) { name } }",
    )
    .await;
    let (code, _) = close_code(&mut socket).await;
    assert_eq!(code, 4401);
    assert_ne!(
        name_of(&app, "ann").await,
        "Late",
        "the expired token changed nothing"
    );
}

#[tokio::test]
async fn a_mutation_over_the_socket_runs_under_the_request_timeout_and_leaves_nothing() {
    let app = TestApp::spawn_with(&[("TANDEM_REQUEST_TIMEOUT", "1s")]).await;
    data(&app.register_customer("ann", "ann@example.com").await);
    let blocker = hold_customer(&app, "ann").await;
    let mut socket = ws::connect(&app.address, &app.service_token()).await;
    let started = std::time::Instant::now();
    ws::subscribe(
        &mut socket,
        "slow",
        "mutation { updateCustomer(externalId: \"ann\", input: { name: \"Changed\" }) { name } }",
    )
    .await;
    let (code, message) = refusal_of(&mut socket, "slow").await;
    assert_eq!(code, "TIMEOUT", "{message}");
    assert!(started.elapsed() < Duration::from_secs(8));
    blocker.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_ne!(name_of(&app, "ann").await, "Changed");
    // The stopped operation says nothing more, and the socket goes on.
    assert_socket_serves(&mut socket, "after").await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_1013_and_its_operations_dropped() {
    let app = TestApp::spawn_with(&[("TANDEM_WS_SEND_TIMEOUT", "1s")]).await;
    let token = app.admin_token();
    let mut socket = ws::connect_with_receive_buffer(&app.address, &token, 4_096).await;
    ws::subscribe(
        &mut socket,
        "events",
        "subscription { referralEvents { status } }",
    )
    .await;
    // Large answers the client never reads, until the server cannot hand over any more.
    let big = "{ __schema { types { name description fields { name description } } } }";
    let mut sent = 0;
    let writer = async {
        for n in 0..2_000 {
            let message =
                json!({ "id": format!("q{n}"), "type": "subscribe", "payload": { "query": big } });
            ws::send(&mut socket, message).await;
            sent += 1;
            // Slower than the server answers, so its per-socket cap is not what closes it.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    // The server stops reading too once it is stuck, so the writer may block: that is the point.
    let _ = tokio::time::timeout(Duration::from_secs(8), writer).await;
    assert!(sent > 0);
    // Well within the close grace, the operations are gone, though nothing was read.
    held_by(&app, "admin:ops", 0).await;
    // Reading again, the client finds the close code after what was already on its way.
    let (code, reason) = tokio::time::timeout(Duration::from_secs(60), close_code(&mut socket))
        .await
        .expect("the close arrives");
    assert_eq!(code, 1013, "{reason}");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_socket_without_connection_init_cannot_subscribe() {
    let app = TestApp::spawn().await;
    let mut socket = ws::open_without_init(&app.address).await;
    ws::subscribe(&mut socket, "early", MY_REWARDS).await;
    let (code, reason) = close_code(&mut socket).await;
    assert_eq!(code, 4401, "{reason}");
}

#[tokio::test]
async fn shutting_down_cancels_what_a_socket_still_runs() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("ann", "ann@example.com").await);
    let blocker = hold_customer(&app, "ann").await;
    let mut socket = ws::connect(&app.address, &app.service_token()).await;
    ws::subscribe(
        &mut socket,
        "waiting",
        "mutation { updateCustomer(externalId: \"ann\", input: { name: \"Changed\" }) { name } }",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.state.shutdown.begin();
    let (code, _) = close_code(&mut socket).await;
    assert_eq!(code, 1001);
    blocker.rollback().await.unwrap();
    // Had the mutation gone on, it would now take the lock and commit.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_ne!(name_of(&app, "ann").await, "Changed");
}

#[tokio::test]
async fn a_socket_that_never_sends_connection_init_is_closed_with_4408() {
    let app = TestApp::spawn_with(&[("TANDEM_REQUEST_TIMEOUT", "1s")]).await;
    let mut socket = ws::open_without_init(&app.address).await;
    let (code, reason) = close_code(&mut socket).await;
    assert_eq!(code, 4408, "{reason}");
}
