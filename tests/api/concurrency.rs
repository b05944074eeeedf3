//! Real concurrent requests: exactly-once effects come from unique keys and conditional updates,
//! on SQLite and PostgreSQL alike.

use futures::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tandem::entities::{order, points_ledger_entry, referral, referral_decision, reward};

use crate::campaigns::points_campaign;
use crate::common::{TestApp, assert_error, data};

async fn count_rewards(app: &TestApp) -> (u64, u64) {
    let side = |side: &'static str| async move {
        reward::Entity::find()
            .filter(reward::Column::Side.eq(side))
            .count(&app.state.db)
            .await
            .unwrap()
    };
    (side("REFERRER").await, side("REFEREE").await)
}

/// Credits for referral rewards (orders earn points of their own).
async fn ledger_entries(app: &TestApp) -> u64 {
    points_ledger_entry::Entity::find()
        .filter(points_ledger_entry::Column::SourceKind.eq("reward"))
        .count(&app.state.db)
        .await
        .unwrap()
}

async fn transitions(app: &TestApp) -> u64 {
    referral_decision::Entity::find()
        .filter(referral_decision::Column::Rule.eq("QUALIFICATION"))
        .count(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_replays_of_one_order_pay_each_side_once() {
    let app = TestApp::spawn().await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;

    let responses: Vec<Value> =
        join_all((0..50).map(|_| app.record_order("o-1", "bob", 5000))).await;
    let ids: std::collections::HashSet<_> = responses
        .iter()
        .map(|r| data(r)["recordOrder"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "every replay answers with the one order");
    assert_eq!(order::Entity::find().count(&app.state.db).await.unwrap(), 1);
    assert_eq!(count_rewards(&app).await, (1, 1));
    assert_eq!(ledger_entries(&app).await, 1, "one ledger credit");
    assert_eq!(transitions(&app).await, 1, "one referral transition");
    assert_eq!(app.me("ann").await["pointsBalance"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_qualifying_orders_of_one_friend_pay_each_side_once() {
    let app = TestApp::spawn().await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;

    let responses: Vec<Value> = join_all((0..50).map(|i| {
        let app = &app;
        async move { app.record_order(&format!("o-{i}"), "bob", 5000).await }
    }))
    .await;
    for response in &responses {
        data(response);
    }
    assert_eq!(
        order::Entity::find().count(&app.state.db).await.unwrap(),
        50
    );
    assert_eq!(count_rewards(&app).await, (1, 1));
    assert_eq!(ledger_entries(&app).await, 1);
    assert_eq!(transitions(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn friends_of_one_referrer_qualifying_at_once_respect_the_cap_and_milestones() {
    let app = TestApp::spawn().await;
    let mut campaign = points_campaign("Test");
    campaign["maxRewardsPerReferrer"] = json!(3);
    campaign["milestones"] =
        json!([{ "referrals": 5, "reward": { "kind": "POINTS", "amount": 1000 } }]);
    app.create_campaign(campaign).await;
    let friends: Vec<String> = (0..8).map(|i| format!("friend{i}")).collect();
    for friend in &friends {
        app.refer("ann", friend, json!({})).await;
    }
    join_all(friends.iter().map(|friend| {
        let app = &app;
        async move { data(&app.record_order(&format!("o-{friend}"), friend, 5000).await).clone() }
    }))
    .await;
    assert_eq!(count_rewards(&app).await, (3, 8));
    let milestones = reward::Entity::find()
        .filter(reward::Column::Side.eq("MILESTONE"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(milestones, 1);
    assert_eq!(app.me("ann").await["pointsBalance"], 3 * 500 + 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_release_each_held_reward_once() {
    let app = TestApp::spawn().await;
    let mut campaign = points_campaign("Test");
    campaign["holdDays"] = json!(7);
    app.create_campaign(campaign).await;
    for i in 0..10 {
        let friend = format!("friend{i}");
        app.refer("ann", &friend, json!({})).await;
        data(&app.record_order(&format!("o-{i}"), &friend, 5000).await);
    }
    app.clock.advance(chrono::Duration::days(8));
    let (a, b) = tokio::join!(app.run_scheduler(), app.run_scheduler());
    assert_eq!(a.rewards_released + b.rewards_released, 20);
    let stranded = referral::Entity::find()
        .filter(referral::Column::Status.ne("REWARDED"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        stranded, 0,
        "no referral is left QUALIFIED with all its rewards issued"
    );
    assert_eq!(
        ledger_entries(&app).await,
        10,
        "one credit per POINTS reward"
    );
    assert_eq!(app.me("ann").await["pointsBalance"], 10 * 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_redemptions_of_one_coupon_succeed_once() {
    let app = TestApp::spawn().await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    let coupon = app.me("bob").await["rewards"][0]["couponCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let responses = join_all((0..20).map(|_| app.redeem(&coupon))).await;
    let succeeded = responses
        .iter()
        .filter(|r| r.get("errors").is_none())
        .count();
    assert_eq!(succeeded, 1);
    for failed in responses.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(
            crate::common::error_code(failed),
            Some("CONFLICT"),
            "{failed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_refunds_never_refund_more_than_the_order() {
    let app = TestApp::spawn().await;
    app.referral_code_of("ann").await;
    data(&app.record_order("o-1", "ann", 5000).await);
    let responses = join_all((0..20).map(|_| app.refund_order("o-1", 1000))).await;
    let succeeded = responses
        .iter()
        .filter(|r| r.get("errors").is_none())
        .count();
    assert_eq!(succeeded, 5);
    for failed in responses.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(
            crate::common::error_code(failed),
            Some("BAD_USER_INPUT"),
            "{failed}"
        );
    }
}

#[tokio::test]
async fn a_sqlite_lock_wait_that_runs_out_answers_unavailable_and_a_retry_succeeds() {
    let app = TestApp::spawn_with(&[("TANDEM_SQLITE_BUSY_TIMEOUT", "300ms")]).await;
    if app.state.db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        // PostgreSQL writers wait on row locks, bounded by the request's time limit (see
        // hostile::a_request_over_the_time_limit_is_stopped_and_leaves_nothing_behind).
        return;
    }
    app.register_customer("ann", "ann@example.com").await;
    let blocker = tandem::db::begin_write(&app.state.db).await.unwrap();
    let update =
        "mutation { updateCustomer(externalId: \"ann\", input: { name: \"Ann B\" }) { name } }";
    let response = app
        .graphql(Some(&app.service_token()), update, json!({}))
        .await;
    let message = assert_error(&response, "UNAVAILABLE");
    assert!(message.contains("try the same request again"), "{message}");
    blocker.rollback().await.unwrap();
    let response = app
        .graphql(Some(&app.service_token()), update, json!({}))
        .await;
    assert_eq!(data(&response)["updateCustomer"]["name"], "Ann B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redemption_waiting_for_the_customer_pays_the_price_in_force_when_it_gets_them() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("ann", "ann@example.com").await);
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation { adjustPoints(customerExternalId: \"ann\", delta: 1000, reason: \"seed\") { delta } }",
            json!({}),
        )
        .await,
    );
    let created = app
        .graphql(
            Some(&app.admin_token()),
            "mutation { createRewardOption(input: { name: \"Mug\", pointsCost: 100, kind: FIXED_COUPON, amount: 500 }) { id } }",
            json!({}),
        )
        .await;
    let option = data(&created)["createRewardOption"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    if app.state.db.get_database_backend() != sea_orm::DbBackend::Postgres {
        // SQLite's writers take the whole database in turn: there is no window to test.
        return;
    }
    let blocker = crate::common::hold_customer(&app, "ann").await;
    let redemption = tokio::spawn({
        let (address, token) = (app.address.clone(), app.customer_token("ann"));
        let client = app.client.clone();
        async move {
            client
                .post(format!("{address}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": "mutation($id: ID!) { redeemPoints(optionId: $id) { id } }", "variables": { "id": option } }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    // The redemption is now waiting for Ann; the price changes meanwhile, and commits.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let option_id = data(&created)["createRewardOption"]["id"].as_str().unwrap();
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation($id: ID!) { updateRewardOption(id: $id, input: { name: \"Mug\", pointsCost: 300, kind: FIXED_COUPON, amount: 500 }) { pointsCost } }",
            json!({ "id": option_id }),
        )
        .await,
    );
    blocker.rollback().await.unwrap();
    data(&redemption.await.unwrap());
    assert_eq!(
        app.me("ann").await["pointsBalance"],
        700,
        "the redemption paid the price in force when it got the customer"
    );
}
