//! Program metrics through the API: exact values on a small dataset worked out by hand (the same
//! numbers on SQLite and PostgreSQL), properties of series, refusals and roles.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::common::{TestApp, assert_error, data};

const METRICS: &str = "query($from: DateTime!, $to: DateTime!) {
    referralMetrics(from: $from, to: $to) {
        newCustomers referredCustomers referralRate clicks referredSignups qualifiedReferrals
        clickToSignupRate signupToQualifiedRate participationRate orderingCustomers rewardCost
        unpricedRewards } }";

const ACQUISITION: &str = "query($from: DateTime!, $to: DateTime!) {
    acquisitionCost(from: $from, to: $to) { channel spend newCustomers cac } }";

/// The dataset of docs/metrics.md's worked example, in a range starting an hour before now.
async fn example(app: &TestApp) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = app.clock_now() - Duration::hours(1);
    let to = from + Duration::days(10);
    app.create_campaign(json!({
        "name": "Example",
        "referrerReward": { "kind": "POINTS", "amount": 500 },
        "refereeReward": { "kind": "FIXED_COUPON", "amount": 1000 },
        "minOrderAmount": 2000,
    }))
    .await;
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation { updateProgramSettings(input: { pointValue: 2 }) { pointValue } }",
            json!({}),
        )
        .await,
    );
    app.register(json!({ "externalId": "ann", "email": "ann@example.com" }))
        .await;
    let code = app.referral_code_of("ann").await;
    for _ in 0..4 {
        data(
            &app.graphql(
                None,
                "mutation($code: String!) { trackReferralClick(code: $code) { recorded } }",
                json!({ "code": code }),
            )
            .await,
        );
    }
    data(
        &app.refer("ann", "bob", json!({ "acquisitionChannel": "ads" }))
            .await,
    );
    data(&app.refer("ann", "cy", json!({})).await);
    for id in ["dee", "eve"] {
        app.register(json!({ "externalId": id, "email": format!("{id}@example.com"), "acquisitionChannel": "Ads" }))
            .await;
    }
    data(&app.record_order("o-bob", "bob", 5_000).await); // qualifies: 500 points + 10.00 coupon
    data(&app.record_order("o-ann", "ann", 3_000).await);
    data(&app.record_order("o-dee", "dee", 1_000).await);
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation($input: MarketingSpendInput!) { recordMarketingSpend(input: $input) { channel } }",
            json!({ "input": { "channel": "ads", "amount": 10_000,
                "periodStart": (from - Duration::days(10)).to_rfc3339(),
                "periodEnd": (from + Duration::days(10)).to_rfc3339() } }),
        )
        .await,
    );
    (from, to)
}

fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
    json!({ "from": from.to_rfc3339(), "to": to.to_rfc3339() })
}

#[tokio::test]
async fn referral_metrics_match_the_worked_example() {
    let app = TestApp::spawn().await;
    let (from, to) = example(&app).await;
    let response = app
        .graphql(Some(&app.admin_token()), METRICS, span(from, to))
        .await;
    assert_eq!(
        data(&response)["referralMetrics"],
        json!({
            "newCustomers": 5,
            "referredCustomers": 2,
            "referralRate": 0.4,
            "clicks": 4,
            "referredSignups": 2,
            "qualifiedReferrals": 1,
            "clickToSignupRate": 0.5,
            "signupToQualifiedRate": 0.5,
            "participationRate": 1.0 / 3.0,
            "orderingCustomers": 3,
            "rewardCost": 2000,
            "unpricedRewards": 0,
        })
    );
}

#[tokio::test]
async fn acquisition_cost_prorates_spend_and_prices_referral_rewards() {
    let app = TestApp::spawn().await;
    let (from, to) = example(&app).await;
    let response = app
        .graphql(Some(&app.admin_token()), ACQUISITION, span(from, to))
        .await;
    assert_eq!(
        data(&response)["acquisitionCost"],
        json!([
            { "channel": "ads", "spend": 5000, "newCustomers": 2, "cac": 2500.0 },
            { "channel": "organic", "spend": 0, "newCustomers": 1, "cac": 0.0 },
            { "channel": "referral", "spend": 2000, "newCustomers": 2, "cac": 1000.0 },
        ])
    );
}

#[tokio::test]
async fn a_reversed_reward_costs_nothing_and_a_range_before_the_data_is_empty() {
    let app = TestApp::spawn().await;
    let (from, to) = example(&app).await;
    data(&app.refund_order("o-bob", 5_000).await); // below the minimum: reversed
    let response = app
        .graphql(Some(&app.admin_token()), METRICS, span(from, to))
        .await;
    let metrics = &data(&response)["referralMetrics"];
    assert_eq!(metrics["rewardCost"], 0);
    assert_eq!(metrics["qualifiedReferrals"], 0);
    assert_eq!(metrics["referredCustomers"], 2, "reversed is not rejected");
    let before = app
        .graphql(
            Some(&app.admin_token()),
            METRICS,
            span(from - Duration::days(30), from - Duration::days(20)),
        )
        .await;
    let before = &data(&before)["referralMetrics"];
    assert_eq!(before["newCustomers"], 0);
    assert_eq!(before["referralRate"], 0.0);
}

#[tokio::test]
async fn a_series_adds_up_to_the_totals_and_its_rates_stay_within_zero_and_one() {
    let app = TestApp::spawn().await;
    let (from, to) = example(&app).await;
    app.clock.advance(Duration::days(3));
    app.register(json!({ "externalId": "fay", "email": "fay@example.com" }))
        .await;
    data(&app.refer("ann", "gus", json!({})).await);
    let counts = [
        "newCustomers",
        "referredCustomers",
        "clicks",
        "referredSignups",
        "qualifiedReferrals",
        "rewardCost",
    ];
    let fields = counts.join(" ");
    for interval in ["DAY", "WEEK", "MONTH"] {
        let query = format!(
            "query($from: DateTime!, $to: DateTime!) {{ referralMetrics(from: $from, to: $to) {{
                {fields} series(interval: {interval}) {{ from to {fields}
                referralRate clickToSignupRate signupToQualifiedRate participationRate }} }} }}"
        );
        let response = app
            .graphql(Some(&app.admin_token()), &query, span(from, to))
            .await;
        let metrics = &data(&response)["referralMetrics"];
        let series = metrics["series"].as_array().unwrap();
        assert_eq!(series[0]["from"], json!(from.to_rfc3339()), "{interval}");
        for pair in series.windows(2) {
            assert_eq!(pair[0]["to"], pair[1]["from"], "{interval}: contiguous");
        }
        for count in counts {
            let sum: i64 = series.iter().map(|p| p[count].as_i64().unwrap()).sum();
            assert_eq!(json!(sum), metrics[count], "{interval}: {count}");
        }
        for point in series {
            for rate in [
                "referralRate",
                "clickToSignupRate",
                "signupToQualifiedRate",
                "participationRate",
            ] {
                let value = point[rate].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&value), "{interval}: {rate} {value}");
            }
        }
        assert_eq!(metrics["newCustomers"], 7);
    }
}

#[tokio::test]
async fn metrics_refuse_bad_ranges_and_anyone_but_admins() {
    let app = TestApp::spawn().await;
    let now = app.clock_now();
    let backwards = app
        .graphql(
            Some(&app.admin_token()),
            METRICS,
            span(now, now - Duration::days(1)),
        )
        .await;
    assert_error(&backwards, "BAD_USER_INPUT");
    let too_long = app
        .graphql(
            Some(&app.admin_token()),
            ACQUISITION,
            span(now - Duration::days(6 * 365), now),
        )
        .await;
    assert_error(&too_long, "BAD_USER_INPUT");
    let unknown_interval = app
        .graphql(
            Some(&app.admin_token()),
            "query($from: DateTime!, $to: DateTime!) { referralMetrics(from: $from, to: $to) { series(interval: YEAR) { clicks } } }",
            span(now - Duration::days(1), now),
        )
        .await;
    assert_error(&unknown_interval, "BAD_USER_INPUT");
    let nested = app
        .graphql(
            Some(&app.admin_token()),
            "query($from: DateTime!, $to: DateTime!) { referralMetrics(from: $from, to: $to) { series(interval: DAY) { series(interval: DAY) { clicks } } } }",
            span(now - Duration::days(2), now),
        )
        .await;
    assert_error(&nested, "BAD_USER_INPUT");
    for token in [app.service_token(), app.customer_token("ann")] {
        let denied = app
            .graphql(Some(&token), METRICS, span(now - Duration::days(1), now))
            .await;
        assert_error(&denied, "FORBIDDEN");
    }
    let bad_spend = app
        .graphql(
            Some(&app.admin_token()),
            "mutation($input: MarketingSpendInput!) { recordMarketingSpend(input: $input) { channel } }",
            json!({ "input": { "channel": "ads", "amount": 100,
                "periodStart": now.to_rfc3339(), "periodEnd": now.to_rfc3339() } }),
        )
        .await;
    assert_error(&bad_spend, "BAD_USER_INPUT");
}

const VALUE: &str = "query($from: DateTime!, $to: DateTime!, $horizon: Int) {
    customerLifetimeValue(from: $from, to: $to, horizonDays: $horizon) {
        referred { customers averageOrderValue ordersPerCustomer averageNetRevenue clv }
        nonReferred { customers averageOrderValue ordersPerCustomer averageNetRevenue clv }
        lift byChannel { channel clv cac clvToCac } } }";

/// The worked example with dee's order refunded by 5.00 and a gross margin of 0.5.
async fn example_with_refund_and_margin(app: &TestApp) -> (DateTime<Utc>, DateTime<Utc>) {
    let range = example(app).await;
    data(&app.refund_order("o-dee", 500).await);
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation { updateProgramSettings(input: { grossMargin: 0.5 }) { grossMargin } }",
            json!({}),
        )
        .await,
    );
    range
}

fn close(actual: &Value, expected: f64) -> bool {
    (actual.as_f64().unwrap() - expected).abs() < 1e-9
}

#[tokio::test]
async fn lifetime_value_nets_refunds_counts_margin_and_splits_referred_from_the_rest() {
    let app = TestApp::spawn().await;
    let (from, to) = example_with_refund_and_margin(&app).await;
    let response = app
        .graphql(Some(&app.admin_token()), VALUE, span(from, to))
        .await;
    let value = &data(&response)["customerLifetimeValue"];
    assert_eq!(
        value["referred"],
        json!({ "customers": 2, "averageOrderValue": 5000.0, "ordersPerCustomer": 0.5,
                "averageNetRevenue": 2500.0, "clv": 1250.0 })
    );
    let other = &value["nonReferred"];
    assert_eq!(other["customers"], 3);
    assert!(close(&other["averageOrderValue"], 2000.0));
    assert!(close(&other["ordersPerCustomer"], 2.0 / 3.0));
    assert!(
        close(&other["averageNetRevenue"], 3500.0 / 3.0),
        "dee's refund is netted"
    );
    assert!(close(&other["clv"], 3500.0 / 3.0 * 0.5));
    assert!(close(&value["lift"], 2500.0 / (3500.0 / 3.0)));
    assert_eq!(
        value["byChannel"],
        json!([
            { "channel": "ads", "clv": 125.0, "cac": 2500.0, "clvToCac": 0.05 },
            { "channel": "organic", "clv": 1500.0, "cac": 0.0, "clvToCac": null },
            { "channel": "referral", "clv": 1250.0, "cac": 1000.0, "clvToCac": 1.25 },
        ])
    );

    // An order 40 days after signup counts to date, not within a 30-day horizon.
    app.clock.advance(Duration::days(40));
    data(&app.record_order("o-late", "bob", 10_000).await);
    let mut variables = span(from, to);
    variables["horizon"] = json!(30);
    let within = app
        .graphql(Some(&app.admin_token()), VALUE, variables)
        .await;
    assert_eq!(
        data(&within)["customerLifetimeValue"]["referred"]["averageNetRevenue"],
        2500.0
    );
    let to_date = app
        .graphql(Some(&app.admin_token()), VALUE, span(from, to))
        .await;
    assert_eq!(
        data(&to_date)["customerLifetimeValue"]["referred"]["averageNetRevenue"],
        7500.0
    );
    let mut negative = span(from, to);
    negative["horizon"] = json!(-1);
    assert_error(
        &app.graphql(Some(&app.admin_token()), VALUE, negative).await,
        "BAD_USER_INPUT",
    );
}

#[tokio::test]
async fn program_economics_weigh_extra_revenue_against_reward_cost() {
    let app = TestApp::spawn().await;
    let (from, to) = example_with_refund_and_margin(&app).await;
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "query($from: DateTime!, $to: DateTime!) { programEconomics(from: $from, to: $to) {
                rewardCost referredCustomers referredRevenue baselineRevenue incrementalRevenue
                grossMargin roi } }",
            span(from, to),
        )
        .await;
    let economics = &data(&response)["programEconomics"];
    assert_eq!(economics["rewardCost"], 2000);
    assert_eq!(economics["referredCustomers"], 2);
    assert_eq!(economics["referredRevenue"], 5000);
    let baseline = 2.0 * 3500.0 / 3.0;
    assert!(close(&economics["baselineRevenue"], baseline));
    assert!(close(&economics["incrementalRevenue"], 5000.0 - baseline));
    assert!(close(
        &economics["roi"],
        ((5000.0 - baseline) * 0.5 - 2000.0) / 2000.0
    ));
}

#[tokio::test]
async fn retention_follows_each_cohort_month_by_month() {
    let app = TestApp::spawn().await;
    let (from, to) = example(&app).await;
    let start = app.clock_now();
    app.clock.set(start + chrono::Months::new(1));
    data(&app.record_order("o-ann-1", "ann", 1_000).await);
    app.clock.set(start + chrono::Months::new(2));
    data(&app.record_order("o-bob-2", "bob", 1_000).await);
    app.clock.set(start + chrono::Months::new(12));
    data(&app.record_order("o-ann-12", "ann", 1_000).await);
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "query($from: DateTime!, $to: DateTime!) { retention(from: $from, to: $to) {
                month referred customers months twelveMonthRetention } }",
            span(from, to),
        )
        .await;
    let cohorts = data(&response)["retention"].as_array().unwrap().clone();
    let month = start.format("%Y-%m").to_string();
    let mut other = vec![0.0; 12];
    other[0] = 1.0 / 3.0;
    other[11] = 1.0 / 3.0;
    let mut referred = vec![0.0; 12];
    referred[1] = 0.5;
    let find = |is_referred: bool| {
        cohorts
            .iter()
            .find(|c| c["referred"] == is_referred && c["month"] == month.as_str())
            .cloned()
            .unwrap()
    };
    let (other_cohort, referred_cohort) = (find(false), find(true));
    assert_eq!(other_cohort["customers"], 3);
    assert_eq!(other_cohort["months"], json!(other));
    assert!(close(&other_cohort["twelveMonthRetention"], 1.0 / 3.0));
    assert_eq!(referred_cohort["customers"], 2);
    assert_eq!(referred_cohort["months"], json!(referred));
    assert_eq!(referred_cohort["twelveMonthRetention"], 0.0);
}

#[tokio::test]
async fn points_liability_counts_what_is_held_and_what_expired() {
    let app = TestApp::spawn().await;
    let (from, _) = example(&app).await;
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation { updateProgramSettings(input: { pointsExpireAfterDays: 30 }) { pointValue } }",
            json!({}),
        )
        .await,
    );
    let query = "query($from: DateTime!, $to: DateTime!) { pointsLiability(from: $from, to: $to) {
        outstandingPoints outstandingValue breakage breakageValue } }";
    let now = app.clock_now();
    let before = app
        .graphql(
            Some(&app.admin_token()),
            query,
            span(from, now + Duration::days(1)),
        )
        .await;
    // 500 referral points for ann, plus orders: ann 30, bob 50, dee 10; pointValue 2.
    assert_eq!(
        data(&before)["pointsLiability"],
        json!({ "outstandingPoints": 590, "outstandingValue": 1180, "breakage": 0, "breakageValue": 0 })
    );
    // Lots written before expiry was configured never expire; a new one does.
    data(&app.record_order("o-eve", "eve", 2_000).await);
    app.clock.advance(Duration::days(31));
    app.run_scheduler().await;
    let after = app
        .graphql(
            Some(&app.admin_token()),
            query,
            span(from, app.clock_now() + Duration::days(1)),
        )
        .await;
    assert_eq!(
        data(&after)["pointsLiability"],
        json!({ "outstandingPoints": 590, "outstandingValue": 1180, "breakage": 20, "breakageValue": 40 })
    );
}
