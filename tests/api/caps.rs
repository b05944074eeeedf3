//! Per-subject limits under real parallel requests: each is counted under a lock on its subject,
//! so 20 callers at once get exactly what one caller at a time would. On SQLite the write lock
//! serialises; on PostgreSQL these are the tests that catch a count-then-insert.

use futures::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tandem::entities::{email_outbox, reward};

use crate::campaigns::points_campaign;
use crate::common::{REGISTER_WITH_REFERRAL, TestApp, data, error_code};

const PARALLEL: usize = 20;

fn statuses(responses: &[Value]) -> Vec<(String, Option<String>, bool)> {
    responses
        .iter()
        .map(|r| {
            let referral = &data(r)["registerCustomer"]["referral"];
            (
                referral["status"].as_str().unwrap_or_default().to_owned(),
                referral["rejectionReason"].as_str().map(str::to_owned),
                referral["flagged"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// `count` friends signing up with one code at once, each with `extra` fields.
async fn parallel_signups(app: &TestApp, code: &str, count: usize, extra: Value) -> Vec<Value> {
    let token = app.service_token();
    join_all((0..count).map(|i| {
        let mut input = json!({
            "externalId": format!("friend{i}"),
            "email": format!("friend{i}@example.com"),
            "referralCode": code,
        });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        let token = &token;
        async move {
            app.graphql(
                Some(token),
                REGISTER_WITH_REFERRAL,
                json!({ "input": input }),
            )
            .await
        }
    }))
    .await
}

async fn milestone_rewards(app: &TestApp) -> u64 {
    reward::Entity::find()
        .filter(reward::Column::Side.eq("MILESTONE"))
        .count(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_invitation_calls_never_send_more_than_fifty_a_day() {
    let app = TestApp::spawn().await;
    app.referral_code_of("ann").await;
    let token = app.customer_token("ann");
    let invite = "mutation($emails: [String!]!) { inviteFriends(emails: $emails) { sent } }";
    let responses = join_all((0..PARALLEL).map(|call| {
        let (app, token) = (&app, &token);
        async move {
            let emails: Vec<String> = (0..5)
                .map(|i| format!("friend{call}-{i}@example.com"))
                .collect();
            app.graphql(Some(token), invite, json!({ "emails": emails }))
                .await
        }
    }))
    .await;
    let accepted = responses
        .iter()
        .filter(|r| r.get("errors").is_none())
        .count();
    for refused in responses.iter().filter(|r| r.get("errors").is_some()) {
        assert_eq!(error_code(refused), Some("BAD_USER_INPUT"), "{refused}");
    }
    let written = email_outbox::Entity::find()
        .filter(email_outbox::Column::Template.eq("referral_invite"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(accepted, 10, "10 calls of 5 fill the day's 50");
    assert_eq!(written, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_signups_from_one_ip_flag_every_one_past_the_hourly_limit() {
    let app = TestApp::spawn_with(&[("TANDEM_SIGNUP_IP_HOURLY_LIMIT", "3")]).await;
    app.create_campaign(points_campaign("Test")).await;
    // A different referrer for each friend, so only the IP is shared.
    let mut codes = Vec::new();
    for i in 0..PARALLEL {
        codes.push(app.referral_code_of(&format!("referrer{i}")).await);
    }
    let token = app.service_token();
    let responses = join_all(codes.iter().enumerate().map(|(i, code)| {
        let input = json!({
            "externalId": format!("friend{i}"),
            "email": format!("friend{i}@example.com"),
            "referralCode": code,
            "ip": "203.0.113.9",
        });
        let (app, token) = (&app, &token);
        async move {
            app.graphql(
                Some(token),
                REGISTER_WITH_REFERRAL,
                json!({ "input": input }),
            )
            .await
        }
    }))
    .await;
    let flagged = statuses(&responses)
        .iter()
        .filter(|(_, _, flagged)| *flagged)
        .count();
    assert_eq!(
        flagged,
        PARALLEL - 3,
        "the first 3 signups pass, every later one is flagged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_signups_with_one_code_respect_the_daily_velocity_limit() {
    let app = TestApp::spawn_with(&[("TANDEM_REFERRAL_DAILY_LIMIT", "5")]).await;
    app.create_campaign(points_campaign("Test")).await;
    let code = app.referral_code_of("ann").await;
    let responses = parallel_signups(&app, &code, PARALLEL, json!({})).await;
    let outcomes = statuses(&responses);
    let pending = outcomes.iter().filter(|(s, _, _)| s == "PENDING").count();
    let velocity = outcomes
        .iter()
        .filter(|(_, reason, _)| reason.as_deref() == Some("VELOCITY_LIMIT"))
        .count();
    assert_eq!((pending, velocity), (5, PARALLEL - 5), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_friends_qualifying_at_once_respect_the_cap_and_pay_each_milestone_once() {
    let app = TestApp::spawn().await;
    let mut campaign = points_campaign("Test");
    campaign["maxRewardsPerReferrer"] = json!(3);
    campaign["milestones"] = json!([
        { "referrals": 5, "reward": { "kind": "POINTS", "amount": 1000 } },
        { "referrals": 15, "reward": { "kind": "POINTS", "amount": 3000 } },
    ]);
    app.create_campaign(campaign).await;
    let friends: Vec<String> = (0..PARALLEL).map(|i| format!("friend{i}")).collect();
    for friend in &friends {
        data(&app.refer("ann", friend, json!({})).await);
    }
    join_all(friends.iter().map(|friend| {
        let app = &app;
        async move { data(&app.record_order(&format!("o-{friend}"), friend, 5000).await).clone() }
    }))
    .await;
    let referrer_rewards = reward::Entity::find()
        .filter(reward::Column::Side.eq("REFERRER"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(referrer_rewards, 3);
    assert_eq!(milestone_rewards(&app).await, 2);
    assert_eq!(app.me("ann").await["pointsBalance"], 3 * 500 + 1000 + 3000);
}

#[tokio::test]
async fn caps_count_within_a_campaign_so_a_new_campaign_starts_the_referrer_at_zero() {
    let app = TestApp::spawn().await;
    let mut first = points_campaign("First");
    first["maxRewardsPerReferrer"] = json!(1);
    app.create_campaign(first).await;
    for friend in ["bob", "cat"] {
        data(&app.refer("ann", friend, json!({})).await);
        data(&app.record_order(&format!("o-{friend}"), friend, 5000).await);
    }
    assert_eq!(
        app.me("ann").await["pointsBalance"],
        500,
        "capped at 1 in the first"
    );

    app.clock.advance(chrono::Duration::seconds(1));
    let mut second = points_campaign("Second");
    second["maxRewardsPerReferrer"] = json!(1);
    app.create_campaign(second).await;
    data(&app.refer("ann", "dan", json!({})).await);
    data(&app.record_order("o-dan", "dan", 5000).await);
    assert_eq!(
        app.me("ann").await["pointsBalance"],
        1000,
        "the second campaign pays again"
    );
}

#[tokio::test]
async fn a_milestone_passed_again_after_a_reversal_is_paid_once() {
    let app = TestApp::spawn().await;
    let mut campaign = points_campaign("Test");
    campaign["minOrderAmount"] = json!(1000);
    campaign["milestones"] =
        json!([{ "referrals": 2, "reward": { "kind": "POINTS", "amount": 1000 } }]);
    app.create_campaign(campaign).await;
    for friend in ["bob", "cat", "dan"] {
        data(&app.refer("ann", friend, json!({})).await);
    }
    data(&app.record_order("o-bob", "bob", 5000).await);
    data(&app.record_order("o-cat", "cat", 5000).await);
    assert_eq!(milestone_rewards(&app).await, 1, "reached at 2");
    data(&app.refund_order("o-bob", 5000).await);
    data(&app.record_order("o-dan", "dan", 5000).await);
    assert_eq!(
        milestone_rewards(&app).await,
        1,
        "back at 2 after a reversal: not paid twice"
    );
}
