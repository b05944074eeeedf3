use chrono::Duration;
use serde_json::{Value, json};

use crate::campaigns::points_campaign;
use crate::common::{TestApp, assert_error, data};

fn referral_of(response: &Value) -> &Value {
    &data(response)["registerCustomer"]["referral"]
}

/// Refers `friend` by `referrer` and returns the referral's id.
async fn referred(app: &TestApp, referrer: &str, friend: &str) -> String {
    referral_of(&app.refer(referrer, friend, json!({})).await)["id"]
        .as_str()
        .expect("a referral")
        .to_owned()
}

fn rewards_by_side<'a>(referral: &'a Value, side: &str) -> Vec<&'a Value> {
    referral["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["side"] == side)
        .collect()
}

fn has_decision(referral: &Value, rule: &str, outcome: &str) -> bool {
    referral["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["rule"] == rule && d["outcome"] == outcome)
}

async fn campaign_with(app: &TestApp, changes: Value) {
    let mut input = points_campaign("Test");
    for (key, value) in changes.as_object().unwrap() {
        input[key] = value.clone();
    }
    app.create_campaign(input).await;
}

// ---- links and landing pages ----

#[tokio::test]
async fn a_share_link_records_the_click_and_redirects_with_the_code() {
    let app = TestApp::spawn().await;
    campaign_with(
        &app,
        json!({ "landingUrl": "https://shop.example/welcome?utm=ref" }),
    )
    .await;
    let code = app.referral_code_of("ann").await;

    let response = app
        .client
        .get(format!("{}/r/{}", app.address, code.to_lowercase()))
        .header("user-agent", "test-browser")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        format!("https://shop.example/welcome?utm=ref&ref={code}").as_str()
    );
    assert_eq!(app.click_count().await, 1);
}

#[tokio::test]
async fn an_unknown_code_still_redirects_without_ref_and_records_nothing() {
    let app = TestApp::spawn().await;
    let response = app.get("/r/NOSUCHCODE").await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "https://shop.example");
    assert_eq!(app.click_count().await, 0);
}

#[tokio::test]
async fn track_referral_click_records_a_click_for_apps() {
    let app = TestApp::spawn().await;
    let code = app.referral_code_of("ann").await;
    let query =
        "mutation($code: String!) { trackReferralClick(code: $code) { recorded landingUrl } }";
    let known = app.graphql(None, query, json!({ "code": code })).await;
    assert_eq!(
        data(&known)["trackReferralClick"],
        json!({ "recorded": true, "landingUrl": format!("https://shop.example/?ref={code}") })
    );
    let unknown = app
        .graphql(None, query, json!({ "code": "ZZZZZZZZ" }))
        .await;
    assert_eq!(data(&unknown)["trackReferralClick"]["recorded"], false);
    assert_eq!(app.click_count().await, 1);
}

#[tokio::test]
async fn referral_code_shows_the_referrers_first_name_and_the_friends_offer() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({})).await;
    let code = app.referral_code_of("ann").await;
    let query = "query($code: String!) { referralCode(code: $code) { code referrerFirstName offer { kind amount } } }";
    let typed = code.replace('1', "l").replace('0', "o").to_lowercase();
    let response = app.graphql(None, query, json!({ "code": typed })).await;
    assert_eq!(
        data(&response)["referralCode"],
        json!({ "code": code, "referrerFirstName": "Ann", "offer": { "kind": "FIXED_COUPON", "amount": 1000 } })
    );
    let unknown = app
        .graphql(None, query, json!({ "code": "ZZZZZZZZ" }))
        .await;
    assert_eq!(data(&unknown)["referralCode"], Value::Null);
}

// ---- attribution ----

#[tokio::test]
async fn signing_up_with_a_code_creates_a_pending_referral_with_its_checks() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({})).await;
    let response = app.refer("ann", "bob", json!({})).await;
    let referral = referral_of(&response);
    assert_eq!(referral["status"], "PENDING");
    assert_eq!(referral["referrerFirstName"], "Ann");
    assert_eq!(referral["friendFirstName"], "Bob");
    let full = app.referral(referral["id"].as_str().unwrap()).await;
    for rule in [
        "SELF_REFERRAL",
        "CAMPAIGN_ACTIVE",
        "EXISTING_CUSTOMER",
        "VELOCITY_LIMIT",
    ] {
        assert!(has_decision(&full, rule, "PASSED"), "{rule}: {full}");
    }
    assert_eq!(app.me("bob").await["referredBy"]["firstName"], "Ann");
}

#[tokio::test]
async fn an_unknown_code_gives_no_referral_and_the_signup_succeeds() {
    let app = TestApp::spawn().await;
    let response = app
        .register(
            json!({ "externalId": "bob", "email": "bob@example.com", "referralCode": "ZZZZZZZZ" }),
        )
        .await;
    assert_eq!(referral_of(&response), &Value::Null);
    assert_eq!(
        data(&response)["registerCustomer"]["customer"]["externalId"],
        "bob"
    );
}

#[tokio::test]
async fn without_a_running_campaign_the_referral_is_rejected_campaign_inactive() {
    let app = TestApp::spawn().await;
    let response = app.refer("ann", "bob", json!({})).await;
    assert_eq!(referral_of(&response)["status"], "REJECTED");
    assert_eq!(
        referral_of(&response)["rejectionReason"],
        "CAMPAIGN_INACTIVE"
    );
}

// ---- qualification and rewards ----

#[tokio::test]
async fn the_friends_first_qualifying_order_rewards_both_sides_once() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({ "minOrderAmount": 2000 })).await;
    let referral_id = referred(&app, "ann", "bob").await;

    data(&app.record_order("o-small", "bob", 1500).await);
    let after_small = app.referral(&referral_id).await;
    assert_eq!(after_small["status"], "PENDING");
    assert!(has_decision(&after_small, "MIN_ORDER_AMOUNT", "SKIPPED"));

    data(&app.record_order("o-1", "bob", 2500).await);
    data(&app.record_order("o-2", "bob", 9000).await);
    let referral = app.referral(&referral_id).await;
    assert_eq!(referral["status"], "REWARDED");
    let referrer = rewards_by_side(&referral, "REFERRER");
    let referee = rewards_by_side(&referral, "REFEREE");
    assert_eq!(referrer.len(), 1);
    assert_eq!(referee.len(), 1);
    assert_eq!(referrer[0]["kind"], "POINTS");
    assert_eq!(referrer[0]["status"], "ISSUED");
    assert_eq!(referee[0]["kind"], "FIXED_COUPON");
    assert_eq!(referee[0]["amount"], 1000);
    assert!(referee[0]["couponCode"].as_str().unwrap().len() >= 16);

    let ann = app.me("ann").await;
    assert_eq!(ann["pointsBalance"], 500);
    assert_eq!(ann["referrals"][0]["friendFirstName"], "Bob");
    assert_eq!(ann["referrals"][0]["status"], "REWARDED");
    let own: Vec<_> = ann["referrals"][0]["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["side"].clone())
        .collect();
    assert_eq!(
        own,
        vec![json!("REFERRER")],
        "a customer sees only their own reward"
    );
    let bob = app.me("bob").await;
    assert_eq!(bob["rewards"].as_array().unwrap().len(), 1);
    assert_eq!(
        bob["pointsBalance"], 130,
        "the friend's own orders earn points (15 + 25 + 90), the referral's reward is a coupon"
    );
}

#[tokio::test]
async fn an_order_after_the_window_rejects_the_referral_window_expired() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({ "qualifyWithinDays": 30 })).await;
    let id = referred(&app, "ann", "bob").await;
    app.clock.advance(Duration::days(31));
    data(&app.record_order("o-1", "bob", 5000).await);
    let referral = app.referral(&id).await;
    assert_eq!(referral["status"], "REJECTED");
    assert_eq!(referral["rejectionReason"], "WINDOW_EXPIRED");
    assert!(referral["rewards"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn held_rewards_issue_when_the_hold_passes() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({ "holdDays": 14 })).await;
    let id = referred(&app, "ann", "bob").await;
    data(&app.record_order("o-1", "bob", 5000).await);

    let held = app.referral(&id).await;
    assert_eq!(held["status"], "QUALIFIED");
    assert!(
        held["rewards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "PENDING")
    );
    assert_eq!(app.me("ann").await["pointsBalance"], 0);
    assert_eq!(app.run_scheduler().await.rewards_released, 0);

    app.clock.advance(Duration::days(14) + Duration::minutes(1));
    assert_eq!(app.run_scheduler().await.rewards_released, 2);
    assert_eq!(
        app.run_scheduler().await.rewards_released,
        0,
        "released once"
    );
    let issued = app.referral(&id).await;
    assert_eq!(issued["status"], "REWARDED");
    assert!(
        issued["rewards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "ISSUED")
    );
    assert_eq!(app.me("ann").await["pointsBalance"], 500);
}

#[tokio::test]
async fn a_refund_during_the_hold_reverses_both_rewards_and_the_referral() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({ "holdDays": 14, "minOrderAmount": 3000 })).await;
    let id = referred(&app, "ann", "bob").await;
    data(&app.record_order("o-1", "bob", 5000).await);

    // Still above the minimum: nothing changes.
    data(&app.refund_order("o-1", 1000).await);
    assert_eq!(app.referral(&id).await["status"], "QUALIFIED");

    let refunded = app.refund_order("o-1", 2000).await;
    assert_eq!(data(&refunded)["refundOrder"]["refundedAmount"], 3000);
    let reversed = app.referral(&id).await;
    assert_eq!(reversed["status"], "REVERSED");
    assert!(
        reversed["rewards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "REVERSED")
    );

    app.clock.advance(Duration::days(15));
    assert_eq!(app.run_scheduler().await.rewards_released, 0);
    assert_eq!(app.me("ann").await["pointsBalance"], 0);
}

#[tokio::test]
async fn a_refund_after_the_hold_debits_points_and_reverses_unredeemed_coupons() {
    let app = TestApp::spawn().await;
    campaign_with(
        &app,
        json!({ "refereeReward": { "kind": "PERCENT_COUPON", "amount": 15 } }),
    )
    .await;
    let id = referred(&app, "ann", "bob").await;
    data(&app.record_order("o-1", "bob", 5000).await);
    assert_eq!(app.me("ann").await["pointsBalance"], 500);

    data(&app.refund_order("o-1", 5000).await);
    let reversed = app.referral(&id).await;
    assert_eq!(reversed["status"], "REVERSED");
    assert!(
        reversed["rewards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "REVERSED")
    );
    assert_eq!(
        app.me("ann").await["pointsBalance"],
        0,
        "the credit was debited"
    );
    assert!(has_decision(&reversed, "REFUND", "RECORDED"));
}

#[tokio::test]
async fn a_redeemed_coupon_stays_redeemed_when_the_order_is_refunded() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({})).await;
    let id = referred(&app, "ann", "bob").await;
    data(&app.record_order("o-1", "bob", 5000).await);
    let coupon = app.me("bob").await["rewards"][0]["couponCode"]
        .as_str()
        .unwrap()
        .to_owned();
    data(&app.redeem(&coupon).await);

    data(&app.refund_order("o-1", 5000).await);
    let referral = app.referral(&id).await;
    assert_eq!(
        rewards_by_side(&referral, "REFEREE")[0]["status"],
        "REDEEMED"
    );
    assert_eq!(
        rewards_by_side(&referral, "REFERRER")[0]["status"],
        "REVERSED"
    );
    assert!(has_decision(&referral, "REFUND", "SKIPPED"));
}

#[tokio::test]
async fn refunds_are_checked_against_what_is_left() {
    let app = TestApp::spawn().await;
    app.referral_code_of("ann").await;
    data(&app.record_order("o-1", "ann", 5000).await);
    assert_error(&app.refund_order("o-1", 6000).await, "BAD_USER_INPUT");
    assert_error(&app.refund_order("o-1", 0).await, "BAD_USER_INPUT");
    assert_error(&app.refund_order("nope", 10).await, "NOT_FOUND");
    data(&app.refund_order("o-1", 5000).await);
    assert_error(&app.refund_order("o-1", 1).await, "BAD_USER_INPUT");

    data(&app.record_order("o-2", "ann", 5000).await);
    let with_id = "mutation { refundOrder(externalId: \"o-2\", amount: 1000, refundId: \"r-1\") { refundedAmount } }";
    for _ in 0..3 {
        let response = app
            .graphql(Some(&app.service_token()), with_id, json!({}))
            .await;
        assert_eq!(
            data(&response)["refundOrder"]["refundedAmount"],
            1000,
            "a retried refund is a no-op"
        );
    }
}

#[tokio::test]
async fn past_the_cap_the_friend_is_rewarded_and_the_referrer_skipped_with_a_reason() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({ "maxRewardsPerReferrer": 1 })).await;
    app.refer("ann", "bob", json!({})).await;
    let second = referred(&app, "ann", "cat").await;
    data(&app.record_order("o-1", "bob", 5000).await);
    data(&app.record_order("o-2", "cat", 5000).await);
    let capped = app.referral(&second).await;
    assert_eq!(rewards_by_side(&capped, "REFEREE").len(), 1);
    assert!(rewards_by_side(&capped, "REFERRER").is_empty());
    assert!(has_decision(&capped, "REFERRER_CAP", "SKIPPED"));
    assert_eq!(app.me("ann").await["pointsBalance"], 500);
}

#[tokio::test]
async fn a_milestone_bonus_is_paid_once_at_the_nth_successful_referral() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({ "milestones": [{ "referrals": 2, "reward": { "kind": "POINTS", "amount": 1000 } }] })).await;
    for friend in ["bob", "cat", "dan"] {
        app.refer("ann", friend, json!({})).await;
        data(&app.record_order(&format!("o-{friend}"), friend, 5000).await);
    }
    let ann = app.me("ann").await;
    let milestones: Vec<_> = ann["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["side"] == "MILESTONE")
        .collect();
    assert_eq!(milestones.len(), 1);
    assert_eq!(ann["pointsBalance"], 3 * 500 + 1000);
}

#[tokio::test]
async fn redeem_coupon_marks_it_used_once() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({})).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    let coupon = app.me("bob").await["rewards"][0]["couponCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let redeemed = app.redeem(&coupon.to_lowercase()).await;
    assert_eq!(data(&redeemed)["redeemCoupon"]["status"], "REDEEMED");
    assert_error(&app.redeem(&coupon).await, "CONFLICT");
    assert_error(&app.redeem("AAAA-BBBB-CCCC-DDDD").await, "NOT_FOUND");
}

#[tokio::test]
async fn a_held_coupon_cannot_be_redeemed_yet() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({ "holdDays": 3 })).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    let coupon = app.me("bob").await["rewards"][0]["couponCode"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(&app.redeem(&coupon).await, "CONFLICT");
}

// ---- orders ----

#[tokio::test]
async fn record_order_is_idempotent_and_refuses_bad_input() {
    let app = TestApp::spawn().await;
    app.referral_code_of("ann").await;
    let first = app.record_order("o-1", "ann", 5000).await;
    let again = app.record_order("o-1", "ann", 5000).await;
    assert_eq!(
        data(&first)["recordOrder"]["id"],
        data(&again)["recordOrder"]["id"]
    );
    assert_eq!(data(&again)["recordOrder"]["customerExternalId"], "ann");
    assert_error(&app.record_order("o-1", "ann", 6000).await, "CONFLICT");
    assert_error(&app.record_order("o-2", "nobody", 5000).await, "NOT_FOUND");
    for amount in [0, -100] {
        assert_error(
            &app.record_order("o-3", "ann", amount).await,
            "BAD_USER_INPUT",
        );
    }
    let euros = app
        .record_order_with(json!({ "externalId": "o-4", "customerExternalId": "ann", "amount": 100, "currency": "EUR" }))
        .await;
    assert_error(&euros, "BAD_USER_INPUT");
    assert_eq!(euros["errors"][0]["extensions"]["field"], "currency");
}

// ---- fraud rules ----

#[tokio::test]
async fn a_friend_on_the_referrers_device_is_rejected_as_self_referral() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({})).await;
    app.register(json!({ "externalId": "ann", "email": "ann@example.com", "deviceId": "phone-1" }))
        .await;
    let response = app
        .refer("ann", "bob", json!({ "deviceId": "phone-1" }))
        .await;
    assert_eq!(referral_of(&response)["status"], "REJECTED");
    assert_eq!(referral_of(&response)["rejectionReason"], "SELF_REFERRAL");
}

#[tokio::test]
async fn self_referral_cannot_be_walked_around_by_changing_emails() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({})).await;
    let update = "mutation($id: String!, $email: String!) { updateCustomer(externalId: $id, input: { email: $email }) { email } }";

    // The referrer moves to a new address, then signs up again with the old one.
    app.referral_code_of("ann").await;
    data(
        &app.graphql(
            Some(&app.service_token()),
            update,
            json!({ "id": "ann", "email": "ann.new@example.com" }),
        )
        .await,
    );
    let code = app.referral_code_of("zed").await;
    let _ = code;
    let ann_code = app
        .graphql(
            Some(&app.admin_token()),
            "{ customer(externalId: \"ann\") { referralCode } }",
            json!({}),
        )
        .await;
    let ann_code = data(&ann_code)["customer"]["referralCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_account = app
        .graphql(
            Some(&app.service_token()),
            crate::common::REGISTER_WITH_REFERRAL,
            json!({ "input": { "externalId": "ann-2", "email": "ann@example.com", "referralCode": ann_code } }),
        )
        .await;
    assert_eq!(
        referral_of(&second_account)["rejectionReason"],
        "SELF_REFERRAL"
    );

    // A friend signs up honestly, then takes an address the referrer used before the first order.
    let id = referred(&app, "zed", "bob").await;
    data(
        &app.graphql(
            Some(&app.service_token()),
            update,
            json!({ "id": "zed", "email": "zed.new@example.com" }),
        )
        .await,
    );
    data(
        &app.graphql(
            Some(&app.service_token()),
            update,
            json!({ "id": "bob", "email": "zed@example.com" }),
        )
        .await,
    );
    data(&app.record_order("o-1", "bob", 5000).await);
    let referral = app.referral(&id).await;
    assert_eq!(referral["status"], "REJECTED");
    assert_eq!(referral["rejectionReason"], "SELF_REFERRAL");
    assert!(referral["rewards"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_customer_who_already_ordered_is_rejected_as_existing_customer() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({})).await;
    let code = app.referral_code_of("ann").await;
    app.register(json!({ "externalId": "bob", "email": "bob@example.com" }))
        .await;
    data(&app.record_order("o-1", "bob", 5000).await);
    let late = app
        .graphql(
            Some(&app.service_token()),
            crate::common::REGISTER_WITH_REFERRAL,
            json!({ "input": { "externalId": "bob", "email": "bob@example.com", "referralCode": code } }),
        )
        .await;
    let referral = &data(&late)["registerCustomer"]["referral"];
    let full = app.referral(referral["id"].as_str().unwrap()).await;
    assert_eq!(full["status"], "REJECTED");
    assert_eq!(full["rejectionReason"], "EXISTING_CUSTOMER");
}

#[tokio::test]
async fn more_referrals_than_the_daily_limit_are_rejected_velocity_limit() {
    let app = TestApp::spawn_with(&[("TANDEM_REFERRAL_DAILY_LIMIT", "2")]).await;
    campaign_with(&app, json!({})).await;
    let statuses: Vec<Value> = {
        let mut out = Vec::new();
        for friend in ["bob", "cat", "dan"] {
            out.push(
                referral_of(&app.refer("ann", friend, json!({})).await)["rejectionReason"].clone(),
            );
        }
        out
    };
    assert_eq!(
        statuses,
        vec![Value::Null, Value::Null, json!("VELOCITY_LIMIT")]
    );
    app.clock.advance(Duration::hours(25));
    assert_eq!(
        referral_of(&app.refer("ann", "eve", json!({})).await)["status"],
        "PENDING"
    );
}

#[tokio::test]
async fn a_friend_on_the_referrers_ip_is_flagged_and_waits_for_review() {
    let app = TestApp::spawn().await;
    campaign_with(&app, json!({})).await;
    app.register(json!({ "externalId": "ann", "email": "ann@example.com", "ip": "198.51.100.4" }))
        .await;
    let response = app
        .refer("ann", "bob", json!({ "ip": "198.51.100.4" }))
        .await;
    let id = referral_of(&response)["id"].as_str().unwrap().to_owned();
    assert_eq!(referral_of(&response)["status"], "PENDING");
    assert_eq!(referral_of(&response)["flagged"], true);

    data(&app.record_order("o-1", "bob", 5000).await);
    let waiting = app.referral(&id).await;
    assert_eq!(waiting["status"], "QUALIFIED");
    assert!(
        waiting["rewards"].as_array().unwrap().is_empty(),
        "no reward before the review"
    );
    assert!(waiting["flagReason"].as_str().unwrap().contains("SAME_IP"));

    let listed = app
        .graphql(
            Some(&app.admin_token()),
            "{ referrals(flagged: true) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&listed)["referrals"]["edges"][0]["node"]["id"],
        id.as_str()
    );

    let review = "mutation($id: ID!, $approve: Boolean!) { reviewReferral(id: $id, approve: $approve, note: \"checked\") { status flagged } }";
    let approved = app
        .graphql(
            Some(&app.admin_token()),
            review,
            json!({ "id": id, "approve": true }),
        )
        .await;
    assert_eq!(
        data(&approved)["reviewReferral"],
        json!({ "status": "REWARDED", "flagged": false })
    );
    assert_eq!(app.me("ann").await["pointsBalance"], 500);
    let again = app
        .graphql(
            Some(&app.admin_token()),
            review,
            json!({ "id": id, "approve": true }),
        )
        .await;
    assert_error(&again, "CONFLICT");
}

#[tokio::test]
async fn a_refused_review_rejects_the_referral() {
    let app = TestApp::spawn_with(&[("TANDEM_SIGNUP_IP_HOURLY_LIMIT", "2")]).await;
    campaign_with(&app, json!({})).await;
    app.referral_code_of("ann").await;
    let mut last = Value::Null;
    for friend in ["bob", "cat", "dan"] {
        last = app
            .refer("ann", friend, json!({ "ip": "203.0.113.9" }))
            .await;
    }
    assert_eq!(
        referral_of(&last)["flagged"],
        true,
        "the third signup from one IP in an hour"
    );
    let id = referral_of(&last)["id"].as_str().unwrap().to_owned();
    let review =
        "mutation($id: ID!) { reviewReferral(id: $id, approve: false) { status rejectionReason } }";
    let refused = app
        .graphql(Some(&app.admin_token()), review, json!({ "id": id }))
        .await;
    assert_eq!(
        data(&refused)["reviewReferral"],
        json!({ "status": "REJECTED", "rejectionReason": "REVIEW_REJECTED" })
    );
    data(&app.record_order("o-1", "dan", 5000).await);
    assert!(
        app.referral(&id).await["rewards"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// The keyed hashes of the IP addresses stored with clicks, oldest first.
async fn click_ip_hashes(app: &TestApp) -> Vec<Option<String>> {
    use sea_orm::{EntityTrait, QueryOrder};
    tandem::entities::referral_click::Entity::find()
        .order_by_asc(tandem::entities::referral_click::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|click| click.ip_hash)
        .collect()
}

async fn click_forwarded_for(app: &TestApp, code: &str, forwarded_for: &str) {
    let response = app
        .client
        .get(format!("{}/r/{code}", app.address))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = TestApp::spawn().await;
    let code = app.referral_code_of("ann").await;
    click_forwarded_for(&app, &code, "203.0.113.7").await;
    click_forwarded_for(&app, &code, "198.51.100.9").await;
    let peer = Some(app.state.ip_hasher.hash("127.0.0.1"));
    assert_eq!(click_ip_hashes(&app).await, vec![peer.clone(), peer]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_last_untrusted_hop() {
    let app = TestApp::spawn_with(&[("TANDEM_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]).await;
    let code = app.referral_code_of("ann").await;
    // A client may prepend anything; only the hops our proxies appended are believed.
    click_forwarded_for(&app, &code, "1.1.1.1, 203.0.113.7, 10.1.2.3").await;
    click_forwarded_for(&app, &code, "not-an-address").await;
    let hash = |ip: &str| Some(app.state.ip_hasher.hash(ip));
    assert_eq!(
        click_ip_hashes(&app).await,
        vec![hash("203.0.113.7"), hash("127.0.0.1")]
    );
}

async fn first_order_placed(app: &TestApp, minutes_before_signup: i64) -> Value {
    campaign_with(app, json!({})).await;
    let signup = app.refer("ann", "bob", json!({})).await;
    let id = referral_of(&signup)["id"].as_str().unwrap().to_owned();
    let placed_at =
        (app.clock_now() - chrono::Duration::minutes(minutes_before_signup)).to_rfc3339();
    data(
        &app.record_order_with(json!({
            "externalId": "o-1",
            "customerExternalId": "bob",
            "amount": 5000,
            "currency": "USD",
            "placedAt": placed_at,
        }))
        .await,
    );
    app.referral(&id).await
}

#[tokio::test]
async fn a_first_order_stamped_within_the_clock_skew_before_signup_qualifies() {
    let app = TestApp::spawn().await;
    let referral = first_order_placed(&app, 3).await;
    assert_eq!(referral["status"], "REWARDED", "{referral}");
}

#[tokio::test]
async fn a_first_order_stamped_beyond_the_clock_skew_before_signup_is_existing_customer() {
    let app = TestApp::spawn_with(&[("TANDEM_CLOCK_SKEW", "1m")]).await;
    let referral = first_order_placed(&app, 3).await;
    assert_eq!(referral["status"], "REJECTED");
    assert_eq!(referral["rejectionReason"], "EXISTING_CUSTOMER");
}
