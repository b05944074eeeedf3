//! Every date a client can send, at the edges of the calendar: each answer is data or an error
//! with a code, never a dropped connection, and the window is the same everywhere. The table of
//! date inputs is held complete against `schema.graphql`. Runs on SQLite and, with
//! TEST_DATABASE_URL, on PostgreSQL.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::{TestApp, data, error_code};

/// Dates at and past the documented window (0001-01-01 to 9999-12-31), and chrono's own limits.
const EXTREMES: [&str; 8] = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-01T00:00:00Z",
    "0000-12-31T23:59:59Z",
    "+10000-01-01T00:00:00Z",
    "-262143-01-01T00:00:00Z",
    "+262142-12-31T23:59:59Z",
    "1969-12-31T23:59:59.999999999-23:59",
];

const NOW: &str = "2026-11-01T00:00:00Z";

struct DateInput {
    /// Where the date goes, as `schema.graphql` names it: `Input.field` or `Root.field.argument`.
    at: &'static str,
    role: &'static str,
    /// An operation taking `$d: DateTime!` (and, where it needs one, `$n: String!`, a fresh id
    /// for each run).
    operation: &'static str,
}

const DATE_INPUTS: &[DateInput] = &[
    DateInput {
        at: "OrderInput.placedAt",
        role: "service",
        operation: "mutation($d: DateTime!, $n: String!) { recordOrder(input: { externalId: $n, customerExternalId: \"ann\", amount: 1000, currency: \"USD\", placedAt: $d }) { id } }",
    },
    DateInput {
        at: "CampaignInput.startsAt",
        role: "admin",
        operation: "mutation($d: DateTime!, $n: String!) { createCampaign(input: { name: $n, referrerReward: { kind: POINTS, amount: 1 }, refereeReward: { kind: POINTS, amount: 1 }, startsAt: $d }) { id } }",
    },
    DateInput {
        at: "CampaignInput.endsAt",
        role: "admin",
        operation: "mutation($d: DateTime!, $n: String!) { createCampaign(input: { name: $n, referrerReward: { kind: POINTS, amount: 1 }, refereeReward: { kind: POINTS, amount: 1 }, endsAt: $d }) { id } }",
    },
    DateInput {
        at: "MarketingSpendInput.periodStart",
        role: "admin",
        operation: "mutation($d: DateTime!) { recordMarketingSpend(input: { channel: \"ads\", amount: 1, periodStart: $d, periodEnd: \"2026-11-01T00:00:00Z\" }) { amount } }",
    },
    DateInput {
        at: "MarketingSpendInput.periodEnd",
        role: "admin",
        operation: "mutation($d: DateTime!) { recordMarketingSpend(input: { channel: \"ads\", amount: 1, periodStart: \"2026-10-01T00:00:00Z\", periodEnd: $d }) { amount } }",
    },
    DateInput {
        at: "Query.leaderboard.from",
        role: "admin",
        operation: "query($d: DateTime!) { leaderboard(metric: POINTS_EARNED, from: $d) { rank } }",
    },
    DateInput {
        at: "Query.leaderboard.to",
        role: "admin",
        operation: "query($d: DateTime!) { leaderboard(metric: SUCCESSFUL_REFERRALS, to: $d) { rank } }",
    },
];

/// The metrics queries, each run with the date as `from` (to: [`NOW`]) and as `to` (from: a
/// month before [`NOW`]), and with the date as both ends' neighbour.
const METRICS: &[(&str, &str)] = &[
    (
        "referralMetrics",
        "referralMetrics(from: $from, to: $to) { newCustomers rewardCost series(interval: MONTH) { newCustomers } weeks: series(interval: WEEK) { newCustomers } }",
    ),
    (
        "marketingSpend",
        "marketingSpend(from: $from, to: $to) { amount }",
    ),
    (
        "acquisitionCost",
        "acquisitionCost(from: $from, to: $to) { channel }",
    ),
    (
        "customerLifetimeValue",
        "customerLifetimeValue(from: $from, to: $to, horizonDays: 3650) { referred { customers } }",
    ),
    ("retention", "retention(from: $from, to: $to) { month }"),
    (
        "programEconomics",
        "programEconomics(from: $from, to: $to) { rewardCost }",
    ),
    (
        "pointsLiability",
        "pointsLiability(from: $from, to: $to) { outstandingPoints outstandingValue }",
    ),
];

/// An answer a person can act on: data, or errors that each carry a code.
fn assert_answered(response: &Value, what: &str) {
    match response.get("errors").and_then(Value::as_array) {
        Some(errors) => {
            assert!(!errors.is_empty(), "{what}: {response}");
            for error in errors {
                let code = error["extensions"]["code"].as_str();
                assert!(
                    code.is_some_and(|c| c != "INTERNAL"),
                    "{what}: an error without a client code: {response}"
                );
            }
        }
        None => assert!(!response["data"].is_null(), "{what}: {response}"),
    }
}

/// What `schema.graphql` takes a `DateTime` in: `Input.field` for input objects, and
/// `Root.field.argument` for the arguments of root fields.
fn date_inputs_in_schema() -> BTreeSet<String> {
    let schema = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql");
    let mut found = BTreeSet::new();
    let mut block: Option<(String, bool)> = None;
    let mut root_field = String::new();
    let mut in_description = false;
    for line in schema.lines() {
        if line.trim() == "\"\"\"" || line.trim().starts_with("\"\"\"") && line.trim() != "\"\"\"" {
            if line.trim() == "\"\"\"" {
                in_description = !in_description;
            }
            continue;
        }
        if in_description {
            continue;
        }
        if let Some(rest) = line.strip_prefix("input ") {
            block = Some((rest.trim_end_matches(" {").to_owned(), true));
            continue;
        }
        if let Some(rest) = line.strip_prefix("type ") {
            let name = rest.trim_end_matches(" {").to_owned();
            let root = matches!(name.as_str(), "Query" | "Mutation" | "Subscription");
            block = root.then_some((name, false));
            continue;
        }
        if line == "}" {
            block = None;
            continue;
        }
        let Some((name, is_input)) = &block else {
            continue;
        };
        if *is_input {
            if let Some((field, ty)) = line.trim().split_once(':')
                && ty.trim().starts_with("DateTime")
            {
                found.insert(format!("{name}.{}", field.trim()));
            }
            continue;
        }
        // A root field's line, possibly with its arguments on it; or one argument's line.
        let trimmed = line.trim();
        let arguments = if line.starts_with("\t\t") {
            trimmed
        } else {
            let (field, rest) = trimmed.split_once('(').unwrap_or((trimmed, ""));
            root_field = field.split(':').next().unwrap_or_default().to_owned();
            rest
        };
        for argument in arguments.split(',') {
            if let Some((argument, ty)) = argument.split_once(':')
                && ty.trim().starts_with("DateTime")
            {
                found.insert(format!("{name}.{root_field}.{}", argument.trim()));
            }
        }
    }
    found
}

#[test]
fn the_table_names_every_date_the_schema_takes() {
    let mut covered: BTreeSet<String> = DATE_INPUTS.iter().map(|d| d.at.to_owned()).collect();
    for (field, _) in METRICS {
        covered.insert(format!("Query.{field}.from"));
        covered.insert(format!("Query.{field}.to"));
    }
    let in_schema = date_inputs_in_schema();
    assert!(in_schema.len() > 10, "the schema was read: {in_schema:?}");
    let missing: Vec<_> = in_schema.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "dates the sweep does not try: {missing:?}"
    );
}

#[tokio::test]
async fn every_date_input_at_the_edges_of_the_calendar_answers_with_data_or_a_code() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("ann", "ann@example.com").await);
    let mut run = 0;
    for input in DATE_INPUTS {
        let token = app.token(input.role, "sweep");
        for date in EXTREMES {
            run += 1;
            let response = app
                .graphql(
                    Some(&token),
                    input.operation,
                    json!({ "d": date, "n": format!("sweep-{run}") }),
                )
                .await;
            assert_answered(&response, &format!("{} = {date}", input.at));
        }
    }
    let admin = app.admin_token();
    for (field, selection) in METRICS {
        let operation = format!("query($from: DateTime!, $to: DateTime!) {{ {selection} }}");
        for date in EXTREMES {
            for (from, to) in [
                (date, NOW),
                ("2026-10-01T00:00:00Z", date),
                (date, "9999-12-31T23:59:59Z"),
                ("0001-01-01T00:00:00Z", date),
            ] {
                let response = app
                    .graphql(Some(&admin), &operation, json!({ "from": from, "to": to }))
                    .await;
                assert_answered(&response, &format!("{field}({from}, {to})"));
            }
        }
    }
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_date_outside_the_window_is_refused_naming_it() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("ann", "ann@example.com").await);
    let response = app
        .graphql(
            Some(&app.service_token()),
            "mutation { recordOrder(input: { externalId: \"late\", customerExternalId: \"ann\", amount: 1000, currency: \"USD\", placedAt: \"+10000-01-01T00:00:00Z\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&response), Some("BAD_USER_INPUT"), "{response}");
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "{ referralMetrics(from: \"9999-06-01T00:00:00Z\", to: \"9999-12-31T23:59:59Z\") { series(interval: MONTH) { newCustomers } } }",
            json!({}),
        )
        .await;
    let months = data(&response)["referralMetrics"]["series"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(months, 7, "June to December of the last year: {response}");
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "{ referralMetrics(from: \"0000-12-31T00:00:00Z\", to: \"0001-01-02T00:00:00Z\") { newCustomers } }",
            json!({}),
        )
        .await;
    let message = crate::common::assert_error(&response, "BAD_USER_INPUT");
    assert!(message.contains("0001-01-01"), "{message}");
}

/// A figure as the API writes a `Long`: a JSON number up to 2^53 - 1, else a string of digits.
fn long_of(value: &Value) -> i128 {
    match value {
        Value::Number(n) => {
            let n = n.as_i64().expect("a whole number");
            assert!(
                n.abs() < (1 << 53),
                "a number past 2^53 would lose precision: {n}"
            );
            i128::from(n)
        }
        Value::String(digits) => {
            let n: i128 = digits.parse().expect("decimal digits");
            assert!(n.abs() >= 1 << 53, "a string only past 2^53: {digits}");
            n
        }
        other => panic!("not a Long: {other}"),
    }
}

#[tokio::test]
async fn money_at_the_largest_legal_settings_is_exact_and_never_an_error() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    data(
        &app.graphql(
            Some(&admin),
            "mutation { updateProgramSettings(input: { pointsPerUnit: 10000, pointValue: 1000000000 }) { pointValue } }",
            json!({}),
        )
        .await,
    );
    data(
        &app.create_campaign(json!({
            "name": "Largest",
            "referrerReward": { "kind": "POINTS", "amount": 1_000_000_000 },
            "refereeReward": { "kind": "POINTS", "amount": 1_000_000_000 },
        }))
        .await,
    );
    for n in 0..5 {
        let friend = format!("big-friend-{n}");
        data(&app.refer("big-amy", &friend, json!({})).await);
        data(
            &app.record_order(&format!("big-{n}"), &friend, 1_000_000_000)
                .await,
        );
    }
    let range = json!({ "from": "2026-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z" });
    let figures = app
        .graphql(
            Some(&admin),
            "query($from: DateTime!, $to: DateTime!) {
               pointsLiability(from: $from, to: $to) { outstandingPoints outstandingValue }
               referralMetrics(from: \"2026-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { rewardCost }
               acquisitionCost(from: \"2026-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { channel spend }
               programEconomics(from: \"2026-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { rewardCost roi }
               customerLifetimeValue(from: \"2026-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { referred { customers } }
             }",
            range,
        )
        .await;
    let figures = data(&figures);
    let held = long_of(&figures["pointsLiability"]["outstandingPoints"]);
    assert!(
        held >= 10_000_000_000,
        "ten rewards of 10^9 points at least: {held}"
    );
    assert_eq!(
        long_of(&figures["pointsLiability"]["outstandingValue"]),
        held * 1_000_000_000,
        "exact, not saturated at 2^63"
    );
    assert_eq!(
        long_of(&figures["referralMetrics"]["rewardCost"]),
        10 * 1_000_000_000 * 1_000_000_000,
        "ten rewards of 10^9 points at 10^9 each: past 2^63"
    );
    assert_eq!(
        long_of(&figures["programEconomics"]["rewardCost"]),
        10 * 1_000_000_000 * 1_000_000_000
    );
    let referral = figures["acquisitionCost"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "referral")
        .expect("the referral channel");
    assert_eq!(
        long_of(&referral["spend"]),
        10 * 1_000_000_000 * 1_000_000_000
    );
}

struct AmountInput {
    at: &'static str,
    role: &'static str,
    /// An operation taking `$a: Int!` and, where it needs one, `$n: String!`.
    operation: &'static str,
}

const AMOUNT_INPUTS: &[AmountInput] = &[
    AmountInput {
        at: "OrderInput.amount",
        role: "service",
        operation: "mutation($a: Int!, $n: String!) { recordOrder(input: { externalId: $n, customerExternalId: \"ann\", amount: $a, currency: \"USD\" }) { id } }",
    },
    AmountInput {
        at: "OrderItemInput.unitPrice",
        role: "service",
        operation: "mutation($a: Int!, $n: String!) { recordOrder(input: { externalId: $n, customerExternalId: \"ann\", amount: 1000, currency: \"USD\", items: [{ productId: \"p\", unitPrice: $a, quantity: 1 }] }) { id } }",
    },
    AmountInput {
        at: "OrderItemInput.quantity",
        role: "service",
        operation: "mutation($a: Int!, $n: String!) { recordOrder(input: { externalId: $n, customerExternalId: \"ann\", amount: 1000, currency: \"USD\", items: [{ productId: \"p\", unitPrice: 10, quantity: $a }] }) { id } }",
    },
    AmountInput {
        at: "refundOrder.amount",
        role: "service",
        operation: "mutation($a: Int!, $n: String!) { refundOrder(externalId: \"refundable\", amount: $a, refundId: $n) { refundedAmount } }",
    },
    AmountInput {
        at: "adjustPoints.delta",
        role: "admin",
        operation: "mutation($a: Int!, $n: String!) { adjustPoints(customerExternalId: \"ann\", delta: $a, reason: $n) { delta } }",
    },
    AmountInput {
        at: "MarketingSpendInput.amount",
        role: "admin",
        operation: "mutation($a: Int!) { recordMarketingSpend(input: { channel: \"ads\", amount: $a, periodStart: \"2026-10-01T00:00:00Z\", periodEnd: \"2026-11-01T00:00:00Z\" }) { amount } }",
    },
    AmountInput {
        at: "RewardRuleInput.amount",
        role: "admin",
        operation: "mutation($a: Int!, $n: String!) { createCampaign(input: { name: $n, referrerReward: { kind: FIXED_COUPON, amount: $a }, refereeReward: { kind: POINTS, amount: $a } }) { id } }",
    },
    AmountInput {
        at: "CampaignInput.minOrderAmount",
        role: "admin",
        operation: "mutation($a: Int!, $n: String!) { createCampaign(input: { name: $n, referrerReward: { kind: POINTS, amount: 1 }, refereeReward: { kind: POINTS, amount: 1 }, minOrderAmount: $a }) { id } }",
    },
    AmountInput {
        at: "RewardOptionInput.pointsCost",
        role: "admin",
        operation: "mutation($a: Int!, $n: String!) { createRewardOption(input: { name: $n, pointsCost: $a, kind: FIXED_COUPON, amount: 100 }) { id } }",
    },
    AmountInput {
        at: "RewardOptionInput.amount",
        role: "admin",
        operation: "mutation($a: Int!, $n: String!) { createRewardOption(input: { name: $n, pointsCost: 10, kind: FIXED_COUPON, amount: $a }) { id } }",
    },
    AmountInput {
        at: "ProgramSettingsInput.pointValue",
        role: "admin",
        operation: "mutation($a: Int!) { updateProgramSettings(input: { pointValue: $a }) { pointValue } }",
    },
    AmountInput {
        at: "ProgramSettingsInput.pointsPerUnit",
        role: "admin",
        operation: "mutation($a: Int!) { updateProgramSettings(input: { pointsPerUnit: $a }) { pointsPerUnit } }",
    },
    AmountInput {
        at: "TierInput.threshold",
        role: "admin",
        operation: "mutation($a: Int!, $n: String!) { createTier(input: { name: $n, threshold: $a }) { id } }",
    },
    AmountInput {
        at: "CartItemInput.unitPrice",
        role: "service",
        operation: "mutation($a: Int!, $n: String!) { upsertCart(input: { externalId: $n, customerExternalId: \"ann\", items: [{ productId: \"p\", unitPrice: $a, quantity: 1 }] }) { id } }",
    },
];

#[tokio::test]
async fn every_amount_at_zero_one_the_maximum_and_past_it_answers_with_data_or_a_code() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("ann", "ann@example.com").await);
    data(&app.record_order("refundable", "ann", 5_000).await);
    let max = 1_000_000_000_i64;
    let values = [
        0,
        1,
        -1,
        max,
        max + 1,
        i64::from(i32::MAX),
        i64::from(i32::MIN),
    ];
    let mut run = 0;
    for input in AMOUNT_INPUTS {
        let token = app.token(input.role, "sweep");
        let mut answered_with_data = false;
        for value in values {
            run += 1;
            let response = app
                .graphql(
                    Some(&token),
                    input.operation,
                    json!({ "a": value, "n": format!("sweep-{run}") }),
                )
                .await;
            assert_answered(&response, &format!("{} = {value}", input.at));
            answered_with_data |= response.get("errors").is_none();
        }
        assert!(
            answered_with_data,
            "{}: some value in the range runs, so the operation itself is sound",
            input.at
        );
    }
    // A number past Int's 32 bits is refused as input, not as a fault.
    let response = app
        .graphql(
            Some(&app.service_token()),
            AMOUNT_INPUTS[0].operation,
            json!({ "a": 1_i64 << 40, "n": "past-32-bits" }),
        )
        .await;
    assert_eq!(error_code(&response), Some("BAD_USER_INPUT"), "{response}");
    app.assert_still_serves().await;
}
