//! Subscriptions over WebSocket (graphql-transport-ws): who may follow what, the token check in
//! connection_init, and closing on shutdown.

use serde_json::json;

use crate::common::ws::{self, Ended};
use crate::common::{TEST_SECRET, TestApp, data, sign_hs256};

const MY_REWARDS: &str =
    "subscription { myRewards { kind points at reward { kind amount status } } }";

async fn adjust(app: &TestApp, customer: &str, delta: i64) {
    let done = app
        .graphql(
            Some(&app.admin_token()),
            "mutation($who: String!, $delta: Int!) {
                adjustPoints(customerExternalId: $who, delta: $delta, reason: \"goodwill\") { delta } }",
            json!({ "who": customer, "delta": delta }),
        )
        .await;
    data(&done);
}

#[tokio::test]
async fn a_customer_hears_their_own_points_credits_and_nobody_elses() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("live-ann", "ann@example.com").await);
    data(&app.register_customer("live-bob", "bob@example.com").await);
    let mut socket = ws::connect(&app.address, &app.customer_token("live-ann")).await;
    ws::subscribe(&mut socket, "1", MY_REWARDS).await;
    let payload = ws::until_heard(&mut socket, "1", || async {
        adjust(&app, "live-bob", 7).await;
        adjust(&app, "live-ann", 42).await;
    })
    .await;
    let event = &payload["data"]["myRewards"];
    assert_eq!(event["kind"], "POINTS_CREDITED", "{payload}");
    assert_eq!(event["points"], 42, "Bob's 7 points are not Ann's to hear");
    assert!(event["reward"].is_null());
}

#[tokio::test]
async fn admins_hear_referral_changes_with_their_reasons() {
    let app = TestApp::spawn().await;
    let mut socket = ws::connect(&app.address, &app.admin_token()).await;
    ws::subscribe(
        &mut socket,
        "r",
        "subscription { referralEvents { referralId status reasons at } }",
    )
    .await;
    let mut friends = 0;
    let referrals = std::cell::RefCell::new(Vec::new());
    let payload = ws::until_heard(&mut socket, "r", || {
        friends += 1;
        let friend = format!("live-ben-{friends}");
        let app = &app;
        let referrals = &referrals;
        async move {
            let referred = app.refer("live-amy", &friend, json!({})).await;
            let referral = data(&referred)["registerCustomer"]["referral"].clone();
            referrals.borrow_mut().push(referral);
        }
    })
    .await;
    let event = &payload["data"]["referralEvents"];
    let referrals = referrals.into_inner();
    let referral = referrals
        .iter()
        .find(|r| r["id"] == event["referralId"])
        .expect("the event is about a referral we made");
    assert_eq!(event["status"], referral["status"], "{payload}");
    assert!(
        !event["reasons"].as_array().unwrap().is_empty(),
        "the checks made at signup come with it: {event}"
    );
}

#[tokio::test]
async fn a_subscription_needs_its_role() {
    let app = TestApp::spawn().await;
    let mut socket = ws::connect(&app.address, &app.customer_token("live-cat")).await;
    ws::subscribe(
        &mut socket,
        "a",
        "subscription { referralEvents { status } }",
    )
    .await;
    let refused = ws::next_message(&mut socket).await.unwrap();
    assert_eq!(refused["id"], "a", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );

    let mut anonymous = ws::open(&app.address, json!({})).await;
    assert_eq!(
        ws::next_message(&mut anonymous).await.unwrap()["type"],
        "connection_ack"
    );
    ws::subscribe(&mut anonymous, "b", MY_REWARDS).await;
    let refused = ws::next_message(&mut anonymous).await.unwrap();
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn a_bad_or_expired_token_closes_the_socket_with_4403() {
    let app = TestApp::spawn().await;
    let mut forged = ws::open(&app.address, json!({ "authorization": "Bearer not-a-jwt" })).await;
    match ws::next_message(&mut forged).await {
        Err(Ended::Closed(code, _)) => assert_eq!(code, 4403),
        other => panic!("expected a 4403 close, got {other:?}"),
    }
    let now = app.clock_now().timestamp();
    let expired = sign_hs256(
        &json!({ "sub": "live-dan", "role": "customer", "iat": now - 7200, "exp": now - 3600 }),
        TEST_SECRET,
    );
    let mut late = ws::open(&app.address, json!({ "token": expired })).await;
    match ws::next_message(&mut late).await {
        Err(Ended::Closed(code, reason)) => {
            assert_eq!(code, 4403);
            assert!(reason.contains("refused"), "{reason}");
        }
        other => panic!("expected a 4403 close, got {other:?}"),
    }
}

#[tokio::test]
async fn the_metrics_ticker_sends_the_last_minute_at_once() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("live-eve", "eve@example.com").await);
    let mut socket = ws::connect(&app.address, &app.admin_token()).await;
    ws::subscribe(
        &mut socket,
        "t",
        "subscription { metricsTicker { from to newCustomers referrals revenue } }",
    )
    .await;
    let payload = ws::next_data(&mut socket, "t").await;
    let tick = &payload["data"]["metricsTicker"];
    assert_eq!(tick["newCustomers"], 1, "{payload}");
    assert_eq!(tick["revenue"], 0);
}

#[tokio::test]
async fn shutting_down_closes_subscriptions_with_1001() {
    let app = TestApp::spawn().await;
    let mut socket = ws::connect(&app.address, &app.admin_token()).await;
    ws::subscribe(
        &mut socket,
        "r",
        "subscription { referralEvents { status } }",
    )
    .await;
    app.state.shutdown.begin();
    match ws::next_message(&mut socket).await {
        Err(Ended::Closed(code, _)) => assert_eq!(code, 1001),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_websocket_without_the_protocol_is_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("graphql-transport-ws")
    );
}

#[tokio::test]
async fn a_friend_hears_the_reward_issued_when_their_first_order_qualifies() {
    let app = TestApp::spawn().await;
    data(
        &app.create_campaign(json!({
            "name": "Both sides",
            "referrerReward": { "kind": "POINTS", "amount": 500 },
            "refereeReward": { "kind": "FIXED_COUPON", "amount": 1000 },
        }))
        .await,
    );
    let mut socket = ws::connect(&app.address, &app.customer_token("live-fay")).await;
    data(&app.refer("live-gus", "live-fay", json!({})).await);
    ws::subscribe(&mut socket, "mine", MY_REWARDS).await;
    // Once a goodwill credit is heard, the subscription is in place.
    ws::until_heard(&mut socket, "mine", || adjust(&app, "live-fay", 1)).await;
    data(&app.record_order("fay-1", "live-fay", 5_000).await);
    let mut payload = ws::next_data(&mut socket, "mine").await;
    for _ in 0..50 {
        if payload["data"]["myRewards"]["kind"] == "REWARD_ISSUED" {
            break;
        }
        payload = ws::next_data(&mut socket, "mine").await;
    }
    let event = &payload["data"]["myRewards"];
    assert_eq!(event["kind"], "REWARD_ISSUED", "{payload}");
    assert_eq!(event["reward"]["kind"], "FIXED_COUPON");
    assert_eq!(event["reward"]["amount"], 1000);
    assert_eq!(event["reward"]["status"], "ISSUED");
}

#[tokio::test]
async fn a_socket_holds_at_most_fifty_subscriptions() {
    let app = TestApp::spawn().await;
    let mut socket = ws::connect(&app.address, &app.admin_token()).await;
    for id in 0..50 {
        ws::subscribe(
            &mut socket,
            &id.to_string(),
            "subscription { referralEvents { status } }",
        )
        .await;
    }
    ws::subscribe(
        &mut socket,
        "one-too-many",
        "subscription { referralEvents { status } }",
    )
    .await;
    match ws::next_message(&mut socket).await {
        Err(Ended::Closed(code, reason)) => assert_eq!(code, 4429, "{reason}"),
        other => panic!("expected a 4429 close, got {other:?}"),
    }
}
