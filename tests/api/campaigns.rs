use chrono::Duration;
use serde_json::{Value, json};

use crate::common::{TestApp, assert_error, data};

pub fn points_campaign(name: &str) -> Value {
    json!({
        "name": name,
        "referrerReward": { "kind": "POINTS", "amount": 500 },
        "refereeReward": { "kind": "FIXED_COUPON", "amount": 1000 },
    })
}

const ACTIVE: &str = "{ activeCampaign { id name referrerReward { kind amount } refereeReward { kind amount } qualifyWithinDays holdDays minOrderAmount running } }";

#[tokio::test]
async fn a_created_campaign_is_active_with_its_defaults() {
    let app = TestApp::spawn().await;
    let created = app.create_campaign(points_campaign("Spring")).await;
    let active = app.graphql(None, ACTIVE, json!({})).await;
    let active = &data(&active)["activeCampaign"];
    assert_eq!(active["id"], created["id"]);
    assert_eq!(
        active["referrerReward"],
        json!({ "kind": "POINTS", "amount": 500 })
    );
    assert_eq!(active["qualifyWithinDays"], 30);
    assert_eq!(active["holdDays"], 0);
    assert_eq!(active["minOrderAmount"], 0);
    assert_eq!(active["running"], true);
}

#[tokio::test]
async fn the_newest_campaign_whose_window_contains_now_is_active() {
    let app = TestApp::spawn().await;
    let now = app.clock_now();
    app.create_campaign(points_campaign("Always")).await;
    let mut later = points_campaign("Later");
    later["startsAt"] = json!((now + Duration::days(10)).to_rfc3339());
    later["endsAt"] = json!((now + Duration::days(20)).to_rfc3339());
    app.create_campaign(later).await;

    assert_eq!(active_name(&app).await, "Always");
    app.clock.advance(Duration::days(11));
    assert_eq!(active_name(&app).await, "Later");
    app.clock.advance(Duration::days(10));
    assert_eq!(active_name(&app).await, "Always");
}

async fn active_name(app: &TestApp) -> Value {
    let response = app.graphql(None, ACTIVE, json!({})).await;
    data(&response)["activeCampaign"]["name"].clone()
}

#[tokio::test]
async fn without_any_campaign_there_is_no_active_one() {
    let app = TestApp::spawn().await;
    let response = app.graphql(None, ACTIVE, json!({})).await;
    assert_eq!(data(&response)["activeCampaign"], Value::Null);
}

#[tokio::test]
async fn invalid_campaign_rules_are_bad_user_input_naming_the_field() {
    let app = TestApp::spawn().await;
    let now = app.clock_now();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "referrerReward": { "kind": "POINTS", "amount": -5 } }),
            "referrerReward.amount",
        ),
        (
            json!({ "refereeReward": { "kind": "PERCENT_COUPON", "amount": 150 } }),
            "refereeReward.amount",
        ),
        (
            json!({ "startsAt": now.to_rfc3339(), "endsAt": (now - Duration::days(1)).to_rfc3339() }),
            "endsAt",
        ),
        (json!({ "minOrderAmount": -1 }), "minOrderAmount"),
        (json!({ "holdDays": -1 }), "holdDays"),
        (json!({ "qualifyWithinDays": 0 }), "qualifyWithinDays"),
        (
            json!({ "maxRewardsPerReferrer": 0 }),
            "maxRewardsPerReferrer",
        ),
        (json!({ "landingUrl": "javascript:alert(1)" }), "landingUrl"),
        (json!({ "name": "  " }), "name"),
        (
            json!({ "milestones": [
                { "referrals": 3, "reward": { "kind": "POINTS", "amount": 10 } },
                { "referrals": 3, "reward": { "kind": "POINTS", "amount": 20 } }
            ] }),
            "milestones.referrals",
        ),
    ];
    for (change, field) in cases {
        let mut input = points_campaign("Bad");
        for (key, value) in change.as_object().unwrap() {
            input[key] = value.clone();
        }
        let response = app
            .graphql(
                Some(&app.admin_token()),
                "mutation($input: CampaignInput!) { createCampaign(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        assert_error(&response, "BAD_USER_INPUT");
        assert_eq!(
            response["errors"][0]["extensions"]["field"], field,
            "{response}"
        );
    }
    let listed = app
        .graphql(Some(&app.admin_token()), "{ campaigns { id } }", json!({}))
        .await;
    assert_eq!(data(&listed)["campaigns"], json!([]), "nothing was written");
}

#[tokio::test]
async fn update_campaign_replaces_the_rules_and_only_admins_manage_campaigns() {
    let app = TestApp::spawn().await;
    let created = app.create_campaign(points_campaign("Spring")).await;
    let mut changed = points_campaign("Summer");
    changed["holdDays"] = json!(7);
    let update = "mutation($id: ID!, $input: CampaignInput!) { updateCampaign(id: $id, input: $input) { name holdDays } }";
    let response = app
        .graphql(
            Some(&app.admin_token()),
            update,
            json!({ "id": created["id"], "input": changed }),
        )
        .await;
    assert_eq!(
        data(&response)["updateCampaign"],
        json!({ "name": "Summer", "holdDays": 7 })
    );

    let unknown = app
        .graphql(
            Some(&app.admin_token()),
            update,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "input": changed }),
        )
        .await;
    assert_error(&unknown, "NOT_FOUND");

    let as_service = app
        .graphql(
            Some(&app.service_token()),
            update,
            json!({ "id": created["id"], "input": changed }),
        )
        .await;
    assert_error(&as_service, "FORBIDDEN");
}
