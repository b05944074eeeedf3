//! Loyalty through the API: points as lots (FIFO, expiry per lot, pending, refunds), program
//! settings, tiers, badges, the leaderboard, the catalog, and their emails.

use chrono::Duration;
use futures::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use tandem::entities::{email_outbox, points_ledger_entry};

use crate::common::{TestApp, assert_error, data};

const POINTS: &str = "{ me { pointsBalance pendingPoints lifetimePoints
    pointsExpiringSoon(days: 3650) { amount expiresAt }
    pointsHistory(first: 100) { edges { node { delta reason description source createdAt expiresAt } } } } }";

async fn settings(app: &TestApp, input: Value) -> Value {
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "mutation($input: ProgramSettingsInput!) { updateProgramSettings(input: $input) {
                pointsPerUnit pointsExpireAfterDays pointsPendingDays tierMetric tierPeriod
                tierDowngrade tierGraceDays updatedBy } }",
            json!({ "input": input }),
        )
        .await;
    data(&response)["updateProgramSettings"].clone()
}

async fn points(app: &TestApp, customer: &str) -> Value {
    let response = app
        .graphql(Some(&app.customer_token(customer)), POINTS, json!({}))
        .await;
    data(&response)["me"].clone()
}

fn history(me: &Value) -> Vec<Value> {
    me["pointsHistory"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn option(app: &TestApp, cost: i64, min_tier: Option<&str>) -> String {
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "mutation($input: RewardOptionInput!) { createRewardOption(input: $input) { id } }",
            json!({ "input": { "name": format!("{cost} off"), "pointsCost": cost,
                "kind": "FIXED_COUPON", "amount": 500, "minTier": min_tier } }),
        )
        .await;
    data(&response)["createRewardOption"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn redeem_points(app: &TestApp, customer: &str, option_id: &str) -> Value {
    app.graphql(
        Some(&app.customer_token(customer)),
        "mutation($id: ID!) { redeemPoints(optionId: $id) { kind amount couponCode status side } }",
        json!({ "id": option_id }),
    )
    .await
}

async fn create_tier(app: &TestApp, name: &str, threshold: i64, multiplier: f64) -> String {
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "mutation($input: TierInput!) { createTier(input: $input) { id name } }",
            json!({ "input": { "name": name, "threshold": threshold,
                "pointsMultiplier": multiplier, "perks": ["Free shipping"] } }),
        )
        .await;
    data(&response)["createTier"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn tier_of(app: &TestApp, customer: &str) -> Value {
    let response = app
        .graphql(
            Some(&app.customer_token(customer)),
            "{ me { tier { name } nextTier { tier { name } remaining progress }
                tierHistory { tier from to reason } } }",
            json!({}),
        )
        .await;
    data(&response)["me"].clone()
}

async fn expiry_rows(app: &TestApp) -> Vec<points_ledger_entry::Model> {
    points_ledger_entry::Entity::find()
        .filter(points_ledger_entry::Column::SourceKind.eq("expiry"))
        .all(&app.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn points_are_spent_oldest_first_and_each_lot_expires_on_its_own_date() {
    let app = TestApp::spawn().await;
    settings(&app, json!({ "pointsExpireAfterDays": 60 })).await;
    app.register_customer("ann", "ann@example.com").await;
    let spend = option(&app, 120, None).await;

    data(&app.record_order("o-1", "ann", 10_000).await); // day 0: 100 points
    app.clock.advance(Duration::days(20));
    data(&app.record_order("o-2", "ann", 5_000).await); // day 20: 50 points
    app.clock.advance(Duration::days(10));
    data(&redeem_points(&app, "ann", &spend).await); // day 30: spend 120
    assert_eq!(points(&app, "ann").await["pointsBalance"], 30);

    app.clock.advance(Duration::days(31)); // day 61: the first lot's date has passed
    app.run_scheduler().await;
    let me = points(&app, "ann").await;
    assert_eq!(me["pointsBalance"], 30, "not 0 and not 50");
    assert!(
        expiry_rows(&app).await.is_empty(),
        "the first lot was wholly spent: nothing of it expires"
    );
    assert_eq!(me["lifetimePoints"], 150);

    app.clock.advance(Duration::days(19)); // day 80: the second lot's date has passed
    let report = app.run_scheduler().await;
    assert_eq!(report.lots_expired, 1);
    let rows = expiry_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].delta, -30, "only what remained of the second lot");
    let me = points(&app, "ann").await;
    assert_eq!(me["pointsBalance"], 0);
    assert_eq!(
        me["lifetimePoints"], 150,
        "expiry does not lower lifetime points"
    );
    let newest = &history(&me)[0];
    assert_eq!(newest["reason"], "EXPIRY");
    assert_eq!(newest["delta"], -30);
    assert!(
        newest["description"]
            .as_str()
            .unwrap()
            .starts_with("30 points expired (earned "),
        "{newest}"
    );
    assert_eq!(
        app.run_scheduler().await.lots_expired,
        0,
        "expiry runs once"
    );
}

#[tokio::test]
async fn every_entry_says_why_in_a_sentence() {
    let app = TestApp::spawn().await;
    settings(&app, json!({ "pointsExpireAfterDays": 365 })).await;
    create_tier(&app, "Silver", 0, 1.5).await;
    app.register_customer("ann", "ann@example.com").await;
    data(&app.record_order("A-1000", "ann", 100).await); // reaches Silver (threshold 0)
    data(&app.record_order("A-1001", "ann", 10_000).await);
    let me = points(&app, "ann").await;
    let entries = history(&me);
    let order = &entries[0];
    assert_eq!(order["reason"], "ORDER");
    assert_eq!(order["delta"], 150);
    assert_eq!(
        order["description"],
        "150 points for order #A-1001 (100.00 USD at 1.5× for Silver)"
    );
    assert!(order["expiresAt"].is_string());
    assert!(order["source"].as_str().unwrap().starts_with("order:"));
}

#[tokio::test]
async fn a_refund_takes_back_its_share_of_the_points_and_a_debt_is_paid_by_later_credits() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let spend = option(&app, 100, None).await;
    data(&app.record_order("o-1", "ann", 10_000).await); // 100 points
    data(&app.refund_order("o-1", 2_500).await); // a quarter back: -25
    assert_eq!(points(&app, "ann").await["pointsBalance"], 75);
    data(&app.record_order("o-2", "ann", 2_500).await); // +25
    data(&redeem_points(&app, "ann", &spend).await); // spend all 100
    data(&app.refund_order("o-1", 7_500).await); // the rest of o-1: -75, already spent
    let me = points(&app, "ann").await;
    assert_eq!(
        me["pointsBalance"], -75,
        "spent points taken back leave a debt"
    );
    assert_eq!(me["lifetimePoints"], 25);
    data(&app.record_order("o-3", "ann", 10_000).await); // +100 pays the debt first
    let me = points(&app, "ann").await;
    assert_eq!(me["pointsBalance"], 25);
    let reasons: Vec<_> = history(&me).iter().map(|e| e["reason"].clone()).collect();
    assert_eq!(
        reasons,
        vec![
            json!("ORDER"),
            json!("REFUND"),
            json!("REDEMPTION"),
            json!("ORDER"),
            json!("REFUND"),
            json!("ORDER")
        ]
    );
    // A replayed refund id and a replayed order write nothing.
    data(&app.record_order("o-3", "ann", 10_000).await);
    assert_eq!(points(&app, "ann").await["pointsBalance"], 25);
}

#[tokio::test]
async fn pending_points_cannot_be_spent_and_a_refund_inside_the_period_cancels_them() {
    let app = TestApp::spawn().await;
    settings(&app, json!({ "pointsPendingDays": 14 })).await;
    app.register_customer("ann", "ann@example.com").await;
    let spend = option(&app, 50, None).await;
    data(&app.record_order("o-1", "ann", 10_000).await);
    let me = points(&app, "ann").await;
    assert_eq!(me["pointsBalance"], 0);
    assert_eq!(me["pendingPoints"], 100);
    let refused = redeem_points(&app, "ann", &spend).await;
    assert_error(&refused, "INSUFFICIENT_POINTS");

    data(&app.refund_order("o-1", 10_000).await);
    let me = points(&app, "ann").await;
    assert_eq!(
        me["pendingPoints"], 0,
        "cancelled before it was ever spendable"
    );
    assert_eq!(
        me["pointsBalance"], 0,
        "no debt: the refund took its own lot"
    );

    data(&app.record_order("o-2", "ann", 10_000).await);
    app.clock.advance(Duration::days(15));
    let me = points(&app, "ann").await;
    assert_eq!(me["pointsBalance"], 100);
    assert_eq!(me["pendingPoints"], 0);
}

#[tokio::test]
async fn redemption_refuses_short_balances_and_low_tiers_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let gold = create_tier(&app, "Gold", 1_000, 2.0).await;
    let cheap = option(&app, 50, None).await;
    let golden = option(&app, 10, Some(&gold)).await;
    data(&app.record_order("o-1", "ann", 4_000).await); // 40 points
    assert_error(
        &redeem_points(&app, "ann", &cheap).await,
        "INSUFFICIENT_POINTS",
    );
    assert_error(&redeem_points(&app, "ann", &golden).await, "FORBIDDEN");
    let me = points(&app, "ann").await;
    assert_eq!(me["pointsBalance"], 40);
    assert_eq!(history(&me).len(), 1, "nothing was written");

    data(&app.record_order("o-2", "ann", 1_000).await); // 50 points
    let reward = redeem_points(&app, "ann", &cheap).await;
    let reward = &data(&reward)["redeemPoints"];
    assert_eq!(reward["side"], "REDEMPTION");
    assert_eq!(reward["status"], "ISSUED");
    assert!(reward["couponCode"].as_str().unwrap().len() >= 16);
    assert_eq!(points(&app, "ann").await["pointsBalance"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_redemptions_never_overdraw_the_balance() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let spend = option(&app, 30, None).await;
    data(&app.record_order("o-1", "ann", 20_000).await); // 200 points: 6 redemptions of 30
    let responses = join_all((0..20).map(|_| redeem_points(&app, "ann", &spend))).await;
    let won = responses.iter().filter(|r| r["errors"].is_null()).count();
    for response in responses.iter().filter(|r| !r["errors"].is_null()) {
        assert_error(response, "INSUFFICIENT_POINTS");
    }
    assert_eq!(won, 6);
    assert_eq!(points(&app, "ann").await["pointsBalance"], 20);
}

#[tokio::test]
async fn adjustments_need_a_reason_and_record_the_admin() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let adjust = "mutation($delta: Int!, $reason: String!) {
        adjustPoints(customerExternalId: \"ann\", delta: $delta, reason: $reason) { delta reason description } }";
    let blank = app
        .graphql(
            Some(&app.admin_token()),
            adjust,
            json!({ "delta": 10, "reason": "  " }),
        )
        .await;
    assert_error(&blank, "BAD_USER_INPUT");
    let denied = app
        .graphql(
            Some(&app.service_token()),
            adjust,
            json!({ "delta": 10, "reason": "goodwill" }),
        )
        .await;
    assert_error(&denied, "FORBIDDEN");
    let done = app
        .graphql(
            Some(&app.admin_token()),
            adjust,
            json!({ "delta": 40, "reason": "Sorry your parcel was late" }),
        )
        .await;
    assert_eq!(data(&done)["adjustPoints"]["reason"], "ADJUSTMENT");
    let row = points_ledger_entry::Entity::find()
        .filter(points_ledger_entry::Column::SourceKind.eq("adjustment"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.actor.as_deref(), Some("ops"));
    data(
        &app.graphql(
            Some(&app.admin_token()),
            adjust,
            json!({ "delta": -50, "reason": "Correction" }),
        )
        .await,
    );
    assert_eq!(points(&app, "ann").await["pointsBalance"], -10);
}

#[tokio::test]
async fn a_rolling_tier_drops_after_the_grace_period_and_a_never_tier_stays() {
    for (policy, expected) in [("RECALCULATE", Value::Null), ("NEVER", json!("Silver"))] {
        let app = TestApp::spawn().await;
        settings(
            &app,
            json!({ "tierPeriod": "ROLLING_12_MONTHS", "tierDowngrade": policy, "tierGraceDays": 30 }),
        )
        .await;
        create_tier(&app, "Silver", 100, 1.0).await;
        create_tier(&app, "Gold", 1_000, 1.0).await;
        app.register_customer("ann", "ann@example.com").await;
        data(&app.record_order("o-1", "ann", 20_000).await); // 200 points
        let me = tier_of(&app, "ann").await;
        assert_eq!(me["tier"]["name"], "Silver", "going up is immediate");
        assert_eq!(me["nextTier"]["tier"]["name"], "Gold");
        assert_eq!(me["nextTier"]["remaining"], 800);
        assert_eq!(me["nextTier"]["progress"], 0.2);

        app.clock.advance(Duration::days(366)); // the order leaves the period
        app.run_scheduler().await;
        assert_eq!(
            tier_of(&app, "ann").await["tier"]["name"],
            "Silver",
            "{policy}: the grace period starts"
        );
        app.clock.advance(Duration::days(29));
        app.run_scheduler().await;
        assert_eq!(tier_of(&app, "ann").await["tier"]["name"], "Silver");
        app.clock.advance(Duration::days(2));
        app.run_scheduler().await;
        let me = tier_of(&app, "ann").await;
        assert_eq!(me["tier"]["name"], expected, "{policy}");
        if policy == "RECALCULATE" {
            let history = me["tierHistory"].as_array().unwrap();
            assert_eq!(history.len(), 1);
            assert_eq!(history[0]["tier"], "Silver");
            assert!(history[0]["to"].is_string(), "the Silver period ended");
        }
    }
}

#[tokio::test]
async fn a_tier_upgrade_multiplies_later_orders_and_is_announced_once() {
    let app = TestApp::spawn().await;
    create_tier(&app, "Silver", 100, 2.0).await;
    app.register_customer("ann", "ann@example.com").await;
    data(&app.record_order("o-1", "ann", 10_000).await); // 100 points → Silver
    data(&app.record_order("o-2", "ann", 10_000).await); // 200 points at 2×
    assert_eq!(points(&app, "ann").await["pointsBalance"], 300);
    let notices = email_outbox::Entity::find()
        .filter(email_outbox::Column::Template.eq("tier_upgraded"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(notices, 1);
}

async fn create_badge(app: &TestApp, key: &str, rule: &str, threshold: i64) {
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation($input: BadgeInput!) { createBadge(input: $input) { key } }",
            json!({ "input": { "key": key, "name": key, "rule": rule, "threshold": threshold } }),
        )
        .await,
    );
}

async fn badges_of(app: &TestApp, customer: &str) -> Value {
    let response = app
        .graphql(
            Some(&app.customer_token(customer)),
            "{ me { badges { badge { key } awardedAt }
                badgeProgress { badge { key } current threshold achieved } } }",
            json!({}),
        )
        .await;
    data(&response)["me"].clone()
}

#[tokio::test]
async fn a_badge_shows_progress_and_is_awarded_once_by_the_event_or_by_the_job() {
    let app = TestApp::spawn().await;
    create_badge(&app, "three-orders", "ORDERS", 3).await;
    app.register_customer("ann", "ann@example.com").await;
    data(&app.record_order("o-1", "ann", 1_000).await);
    data(&app.record_order("o-2", "ann", 1_000).await);
    let me = badges_of(&app, "ann").await;
    assert_eq!(me["badges"], json!([]));
    assert_eq!(
        me["badgeProgress"],
        json!([{ "badge": { "key": "three-orders" }, "current": 2, "threshold": 3, "achieved": false }])
    );
    data(&app.record_order("o-3", "ann", 1_000).await);
    data(&app.record_order("o-4", "ann", 1_000).await);
    let me = badges_of(&app, "ann").await;
    assert_eq!(me["badges"].as_array().unwrap().len(), 1);
    assert_eq!(me["badgeProgress"][0]["achieved"], true);
    assert_eq!(me["badgeProgress"][0]["current"], 4);

    // Created after the fact: the job awards it, not the admin's request.
    create_badge(&app, "big-spender", "LIFETIME_SPEND", 3_000).await;
    assert_eq!(
        badges_of(&app, "ann").await["badges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.run_scheduler().await.badges_backfilled, 1);
    assert_eq!(
        badges_of(&app, "ann").await["badges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(app.run_scheduler().await.badges_backfilled, 0);
}

#[tokio::test]
async fn the_leaderboard_ranks_points_earned_in_the_range_and_breaks_ties_by_who_got_there_first() {
    let app = TestApp::spawn().await;
    for (id, name) in [("ann", "Ann Lee"), ("bob", "Bob Stone"), ("cy", "Cy")] {
        app.register(
            json!({ "externalId": id, "email": format!("{id}@example.com"), "name": name }),
        )
        .await;
    }
    data(&app.record_order("o-1", "bob", 5_000).await);
    app.clock.advance(Duration::minutes(1));
    data(&app.record_order("o-2", "ann", 5_000).await);
    data(&app.record_order("o-3", "cy", 9_000).await);
    data(&app.record_order("o-4", "cy", 1_000).await);
    data(&app.refund_order("o-4", 1_000).await); // taken back: does not count
    let response = app
        .graphql(
            Some(&app.customer_token("ann")),
            "{ leaderboard(metric: POINTS_EARNED) { rank displayName value }
               me { leaderboardPosition(metric: POINTS_EARNED) { rank value } } }",
            json!({}),
        )
        .await;
    let board = &data(&response)["leaderboard"];
    assert_eq!(
        board,
        &json!([
            { "rank": 1, "displayName": "Cy", "value": 90 },
            { "rank": 2, "displayName": "Bob S.", "value": 50 },
            { "rank": 3, "displayName": "Ann L.", "value": 50 },
        ])
    );
    assert_eq!(
        data(&response)["me"]["leaderboardPosition"],
        json!({ "rank": 3, "value": 50 })
    );
    let tomorrow = (app.clock_now() + Duration::days(1)).to_rfc3339();
    let empty = app
        .graphql(
            Some(&app.admin_token()),
            "query($from: DateTime) { leaderboard(metric: POINTS_EARNED, from: $from) { rank } }",
            json!({ "from": tomorrow }),
        )
        .await;
    assert_eq!(data(&empty)["leaderboard"], json!([]));
}

#[tokio::test]
async fn points_about_to_expire_are_announced_once_per_date_to_consenting_customers() {
    let app = TestApp::spawn().await;
    settings(&app, json!({ "pointsExpireAfterDays": 30 })).await;
    app.register(
        json!({ "externalId": "ann", "email": "ann@example.com", "marketingConsent": true }),
    )
    .await;
    app.register(json!({ "externalId": "bob", "email": "bob@example.com" }))
        .await;
    data(&app.record_order("o-1", "ann", 5_000).await);
    data(&app.record_order("o-2", "ann", 5_000).await);
    data(&app.record_order("o-3", "bob", 5_000).await);
    assert_eq!(app.run_scheduler().await.expiry_notices, 0, "not yet");
    app.clock.advance(Duration::days(24));
    assert_eq!(
        app.run_scheduler().await.expiry_notices,
        1,
        "ann only: bob did not consent"
    );
    assert_eq!(app.run_scheduler().await.expiry_notices, 0, "once per date");
    let row = email_outbox::Entity::find()
        .filter(email_outbox::Column::Template.eq("points_expiring"))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.data["amount"], 100, "both lots expire the same day");
    assert!(row.marketing);
}

#[tokio::test]
async fn program_settings_are_for_admins_and_refuse_values_out_of_range() {
    let app = TestApp::spawn().await;
    let read = "{ programSettings { pointsPerUnit pointsExpireAfterDays tierMetric } }";
    assert_error(
        &app.graphql(Some(&app.service_token()), read, json!({}))
            .await,
        "FORBIDDEN",
    );
    let defaults = app.graphql(Some(&app.admin_token()), read, json!({})).await;
    assert_eq!(
        data(&defaults)["programSettings"],
        json!({ "pointsPerUnit": 1, "pointsExpireAfterDays": null, "tierMetric": "LIFETIME_POINTS" })
    );
    let bad = app
        .graphql(
            Some(&app.admin_token()),
            "mutation { updateProgramSettings(input: { pointsExpireAfterDays: 0 }) { pointsPerUnit } }",
            json!({}),
        )
        .await;
    assert_error(&bad, "BAD_USER_INPUT");
    let changed = settings(
        &app,
        json!({ "pointsPerUnit": 3, "pointsExpireAfterDays": 90 }),
    )
    .await;
    assert_eq!(changed["pointsPerUnit"], 3);
    assert_eq!(changed["updatedBy"], "ops");
    let cleared = settings(&app, json!({ "pointsExpireAfterDays": null })).await;
    assert_eq!(cleared["pointsExpireAfterDays"], Value::Null);
    assert_eq!(cleared["pointsPerUnit"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_expire_each_lot_once() {
    let app = TestApp::spawn().await;
    settings(&app, json!({ "pointsExpireAfterDays": 10 })).await;
    for i in 0..30 {
        let id = format!("c{i}");
        app.register_customer(&id, &format!("{id}@example.com"))
            .await;
        data(
            &app.record_order(&format!("o-{i}"), &id, 1_000 + i * 100)
                .await,
        );
    }
    app.clock.advance(Duration::days(11));
    let (a, b) = tokio::join!(app.run_scheduler(), app.run_scheduler());
    assert_eq!(a.lots_expired + b.lots_expired, 30);
    let rows = expiry_rows(&app).await;
    assert_eq!(rows.len(), 30, "one EXPIRY per lot");
    assert_eq!(
        rows.iter().map(|r| r.delta).sum::<i64>(),
        -(0..30).map(|i| 10 + i).sum::<i64>(),
        "each exactly its lot"
    );
    assert_eq!(app.run_scheduler().await.lots_expired, 0);
}

#[tokio::test]
async fn a_lot_that_cannot_expire_is_left_for_the_next_pass_and_the_others_expire() {
    let app = TestApp::spawn().await;
    settings(&app, json!({ "pointsExpireAfterDays": 10 })).await;
    for id in ["amy", "ben", "cal"] {
        app.register_customer(id, &format!("{id}@example.com"))
            .await;
        data(&app.record_order(&format!("{id}-1"), id, 2_000).await);
    }
    let lots = points_ledger_entry::Entity::find()
        .filter(points_ledger_entry::Column::SourceKind.eq("order"))
        .order_by_asc(points_ledger_entry::Column::Id)
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(lots.len(), 3, "amy's, ben's and cal's, in that order");
    // A row in the way of one lot's expiry: its debit meets an entry of the same source, so
    // the pass's write for that lot fails.
    let blocked = &lots[1];
    let squatter = points_ledger_entry::Model {
        id: uuid::Uuid::now_v7(),
        delta: 0,
        reason: tandem::entities::enums::PointsReason::Expiry,
        description: "in the way".into(),
        source_kind: "expiry".into(),
        source_id: blocked.id.to_string(),
        available_at: None,
        expires_at: None,
        remaining: 0,
        ..blocked.clone()
    };
    points_ledger_entry::Entity::insert(sea_orm::IntoActiveModel::into_active_model(squatter))
        .exec_without_returning(&app.state.db)
        .await
        .unwrap();

    app.clock.advance(Duration::days(11));
    assert_eq!(app.run_scheduler().await.lots_expired, 2);
    let open = |id: uuid::Uuid| {
        let app = &app;
        async move {
            points_ledger_entry::Entity::find_by_id(id)
                .one(&app.state.db)
                .await
                .unwrap()
                .unwrap()
                .remaining
        }
    };
    assert_eq!(open(blocked.id).await, 20, "left open for the next pass");
    assert_eq!(open(lots[0].id).await, 0);
    assert_eq!(open(lots[2].id).await, 0);
    assert_eq!(points(&app, "amy").await["pointsBalance"], 0);
    assert_eq!(points(&app, "cal").await["pointsBalance"], 0);
}

#[tokio::test]
async fn a_backdated_order_past_its_expiry_still_counts_for_lifetime_points_and_tiers() {
    let app = TestApp::spawn().await;
    settings(&app, json!({ "pointsExpireAfterDays": 30 })).await;
    create_tier(&app, "Silver", 100, 1.0).await;
    app.register_customer("ann", "ann@example.com").await;
    let placed = (app.clock_now() - Duration::days(45)).to_rfc3339();
    data(
        &app.record_order_with(json!({ "externalId": "old", "customerExternalId": "ann",
            "amount": 20_000, "currency": "USD", "placedAt": placed }))
            .await,
    );
    let me = points(&app, "ann").await;
    assert_eq!(me["pointsBalance"], 0, "past its date: not spendable");
    assert_eq!(me["lifetimePoints"], 200);
    assert_eq!(tier_of(&app, "ann").await["tier"]["name"], "Silver");
    assert_eq!(app.run_scheduler().await.lots_expired, 1);
    assert_eq!(expiry_rows(&app).await[0].delta, -200);
    let me = points(&app, "ann").await;
    assert_eq!(me["pointsBalance"], 0);
    assert_eq!(me["lifetimePoints"], 200);
}

#[tokio::test]
async fn referrals_count_for_tiers_and_the_leaderboard_until_they_are_reversed() {
    let app = TestApp::spawn().await;
    app.create_campaign(json!({
        "name": "Coupons",
        "referrerReward": { "kind": "FIXED_COUPON", "amount": 500 },
        "refereeReward": { "kind": "FIXED_COUPON", "amount": 500 },
        "minOrderAmount": 2_000,
    }))
    .await;
    settings(
        &app,
        json!({ "tierMetric": "SUCCESSFUL_REFERRALS", "tierDowngrade": "RECALCULATE" }),
    )
    .await;
    create_tier(&app, "Ambassador", 1, 1.0).await;
    app.register(json!({ "externalId": "ann", "email": "ann@example.com", "name": "Ann Lee" }))
        .await;
    data(&app.refer("ann", "bob", json!({})).await);
    data(&app.record_order("o-1", "bob", 5_000).await);
    assert_eq!(tier_of(&app, "ann").await["tier"]["name"], "Ambassador");
    let board = "{ leaderboard(metric: SUCCESSFUL_REFERRALS) { rank displayName value } }";
    let response = app
        .graphql(Some(&app.admin_token()), board, json!({}))
        .await;
    assert_eq!(
        data(&response)["leaderboard"],
        json!([{ "rank": 1, "displayName": "Ann L.", "value": 1 }])
    );

    data(&app.refund_order("o-1", 5_000).await); // below the minimum: reversed
    let response = app
        .graphql(Some(&app.admin_token()), board, json!({}))
        .await;
    assert_eq!(data(&response)["leaderboard"], json!([]));
    assert_eq!(
        tier_of(&app, "ann").await["tier"],
        Value::Null,
        "RECALCULATE with no grace: the tier goes with the referral"
    );
}

#[tokio::test]
async fn drop_one_steps_down_a_tier_per_grace_period() {
    let app = TestApp::spawn().await;
    settings(
        &app,
        json!({ "tierMetric": "SPEND", "tierPeriod": "ROLLING_12_MONTHS", "tierDowngrade": "DROP_ONE", "tierGraceDays": 10 }),
    )
    .await;
    create_tier(&app, "Bronze", 1_000, 1.0).await;
    create_tier(&app, "Silver", 5_000, 1.0).await;
    create_tier(&app, "Gold", 10_000, 1.0).await;
    app.register_customer("ann", "ann@example.com").await;
    data(&app.record_order("o-1", "ann", 12_000).await);
    assert_eq!(tier_of(&app, "ann").await["tier"]["name"], "Gold");
    app.clock.advance(Duration::days(366));
    app.run_scheduler().await; // below from now on
    app.clock.advance(Duration::days(11));
    app.run_scheduler().await;
    assert_eq!(tier_of(&app, "ann").await["tier"]["name"], "Silver");
    app.clock.advance(Duration::days(5));
    app.run_scheduler().await;
    assert_eq!(
        tier_of(&app, "ann").await["tier"]["name"],
        "Silver",
        "the next drop waits another grace period (the daily check runs once a day)"
    );
    app.clock.advance(Duration::days(6));
    app.run_scheduler().await;
    assert_eq!(tier_of(&app, "ann").await["tier"]["name"], "Bronze");
}

#[tokio::test]
async fn an_order_streak_badge_counts_consecutive_calendar_months() {
    let app = TestApp::spawn().await;
    create_badge(&app, "regular", "ORDER_STREAK_MONTHS", 3).await;
    app.register_customer("ann", "ann@example.com").await;
    let now = app.clock_now();
    let order_in = |months_ago: u32| {
        let placed = now - chrono::Months::new(months_ago);
        json!({ "externalId": format!("o-{months_ago}"), "customerExternalId": "ann",
            "amount": 1_000, "currency": "USD", "placedAt": placed.to_rfc3339() })
    };
    data(&app.record_order_with(order_in(4)).await);
    data(&app.record_order_with(order_in(2)).await);
    data(&app.record_order_with(order_in(1)).await);
    let me = badges_of(&app, "ann").await;
    assert_eq!(me["badgeProgress"][0]["current"], 2, "a gap breaks the run");
    data(&app.record_order_with(order_in(0)).await);
    let me = badges_of(&app, "ann").await;
    assert_eq!(me["badgeProgress"][0]["current"], 3);
    assert_eq!(me["badges"][0]["badge"]["key"], "regular");
}

#[tokio::test]
async fn a_wholly_refunded_order_leaves_the_order_and_streak_badges_and_a_partly_refunded_one_stays()
 {
    let app = TestApp::spawn().await;
    create_badge(&app, "many", "ORDERS", 10).await;
    create_badge(&app, "regular", "ORDER_STREAK_MONTHS", 6).await;
    app.register_customer("ann", "ann@example.com").await;
    let now = app.clock_now();
    let order_in = |id: &str, months_ago: u32| {
        let placed = now - chrono::Months::new(months_ago);
        json!({ "externalId": id, "customerExternalId": "ann",
            "amount": 1_000, "currency": "USD", "placedAt": placed.to_rfc3339() })
    };
    for (id, months_ago) in [("m3", 3), ("m2-a", 2), ("m2-b", 2), ("m1", 1)] {
        data(&app.record_order_with(order_in(id, months_ago)).await);
    }
    let progress = |me: &Value| {
        me["badgeProgress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["badge"]["key"].as_str().unwrap().to_owned(),
                    p["current"].as_i64().unwrap(),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let measured = progress(&badges_of(&app, "ann").await);
    assert_eq!((measured["many"], measured["regular"]), (4, 3));

    data(&app.refund_order("m3", 400).await);
    data(&app.refund_order("m2-b", 1_000).await);
    let measured = progress(&badges_of(&app, "ann").await);
    assert_eq!(
        (measured["many"], measured["regular"]),
        (3, 3),
        "a partial refund keeps its order; a month keeps its run while another order is in it"
    );
    data(&app.refund_order("m2-a", 1_000).await);
    let measured = progress(&badges_of(&app, "ann").await);
    assert_eq!(
        (measured["many"], measured["regular"]),
        (2, 1),
        "the month's last kept order refunded splits the run"
    );
    data(&app.record_order_with(order_in("m2-c", 2)).await);
    let measured = progress(&badges_of(&app, "ann").await);
    assert_eq!(
        (measured["many"], measured["regular"]),
        (3, 3),
        "and an order joins it again"
    );
}

#[tokio::test]
async fn catalog_and_tier_inputs_out_of_range_are_refused() {
    let app = TestApp::spawn().await;
    let points_option = app
        .graphql(
            Some(&app.admin_token()),
            "mutation { createRewardOption(input: { name: \"x\", pointsCost: 10, kind: POINTS, amount: 5 }) { id } }",
            json!({}),
        )
        .await;
    assert_error(&points_option, "BAD_USER_INPUT");
    let bad_multiplier = app
        .graphql(
            Some(&app.admin_token()),
            "mutation { createTier(input: { name: \"x\", threshold: 1, pointsMultiplier: 1000 }) { id } }",
            json!({}),
        )
        .await;
    assert_error(&bad_multiplier, "BAD_USER_INPUT");
    create_tier(&app, "Silver", 100, 1.0).await;
    let twin = app
        .graphql(
            Some(&app.admin_token()),
            "mutation { createTier(input: { name: \"Other\", threshold: 100 }) { id } }",
            json!({}),
        )
        .await;
    assert_error(&twin, "CONFLICT");
    let unknown = app
        .graphql(
            Some(&app.customer_token("ann")),
            "mutation { redeemPoints(optionId: \"nope\") { id } }",
            json!({}),
        )
        .await;
    assert_error(&unknown, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_change_to_the_program_on_one_instance_applies_to_the_next_order_and_screen_on_another() {
    let first = TestApp::spawn().await;
    let second = first.second_instance().await;
    let admin = first.admin_token();
    data(&first.register_customer("kim", "kim@example.com").await);
    // The second instance reads the configuration and keeps it.
    data(&second.record_order("kim-1", "kim", 1_000).await);
    assert_eq!(second.me("kim").await["pointsBalance"], 10);
    // Changed through the first instance only.
    data(
        &first
            .graphql(
                Some(&admin),
                "mutation { updateProgramSettings(input: { pointsPerUnit: 5 }) { pointsPerUnit } }",
                json!({}),
            )
            .await,
    );
    data(
        &first
            .graphql(
                Some(&admin),
                "mutation { createTier(input: { name: \"Silver\", threshold: 20, pointsMultiplier: 2 }) { id } }",
                json!({}),
            )
            .await,
    );
    // 5 points a unit: 50 more, and 60 reaches Silver.
    data(&second.record_order("kim-2", "kim", 1_000).await);
    let me = second
        .graphql(
            Some(&second.customer_token("kim")),
            "{ me { pointsBalance tier { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&me)["me"]["pointsBalance"], 60);
    assert_eq!(data(&me)["me"]["tier"]["name"], "Silver");
    // And Silver's multiplier on the order after: 10 units × 5 × 2.
    data(&second.record_order("kim-3", "kim", 1_000).await);
    assert_eq!(second.me("kim").await["pointsBalance"], 160);
}
