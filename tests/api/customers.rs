use std::collections::HashSet;

use futures::future::join_all;
use serde_json::{Value, json};
use tandem::customers::EmailAddress;
use tandem::customers::ReferralCode;
use tandem::customers::service::{NewCustomer, register_with_codes};

use crate::common::{CUSTOMER_FIELDS, TestApp, assert_error, data};

fn customer(response: &Value) -> &Value {
    &data(response)["registerCustomer"]["customer"]
}

fn is_crockford_code(code: &str) -> bool {
    code.len() >= 8
        && code
            .bytes()
            .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
}

const UPDATE_CUSTOMER: &str = "mutation($id: String!, $input: UpdateCustomerInput!) {
  updateCustomer(externalId: $id, input: $input) { externalId email name marketingConsent }
}";

#[tokio::test]
async fn registering_a_customer_returns_it_with_a_referral_code_and_link() {
    let app = TestApp::spawn().await;
    let response = app
        .register(json!({
            "externalId": "cust-1",
            "email": "Ann.Smith@Example.com",
            "name": "Ann Smith",
            "acquisitionChannel": "Podcast",
            "marketingConsent": true,
            "ip": "203.0.113.7",
            "deviceId": "device-1"
        }))
        .await;
    let customer = customer(&response);
    assert_eq!(customer["externalId"], "cust-1");
    assert_eq!(customer["email"], "Ann.Smith@Example.com");
    assert_eq!(customer["name"], "Ann Smith");
    assert_eq!(customer["acquisitionChannel"], "podcast");
    assert_eq!(customer["marketingConsent"], true);
    let code = customer["referralCode"].as_str().unwrap();
    assert!(is_crockford_code(code), "{code}");
    assert_eq!(
        customer["referralLink"],
        format!("https://shop.example/r/{code}")
    );
    assert!(uuid::Uuid::parse_str(customer["id"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn a_registration_without_options_gets_the_defaults() {
    let app = TestApp::spawn().await;
    let response = app.register_customer("c1", "c1@example.com").await;
    let customer = customer(&response);
    assert_eq!(customer["acquisitionChannel"], "organic");
    assert_eq!(customer["marketingConsent"], false);
    assert_eq!(customer["name"], Value::Null);
}

#[tokio::test]
async fn registering_the_same_external_id_again_returns_the_same_customer_and_code() {
    let app = TestApp::spawn().await;
    let first = app.register_customer("c1", "c1@example.com").await;
    let again = app.register_customer("c1", "C1@Example.com").await;
    assert_eq!(customer(&first)["id"], customer(&again)["id"]);
    assert_eq!(
        customer(&first)["referralCode"],
        customer(&again)["referralCode"]
    );
}

#[tokio::test]
async fn the_same_external_id_with_another_email_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.register_customer("c1", "c1@example.com").await;
    let response = app
        .register_customer("c1", "someone-else@example.com")
        .await;
    let message = assert_error(&response, "CONFLICT");
    assert!(message.contains("c1"), "{message}");
}

#[tokio::test]
async fn an_email_registered_under_another_external_id_is_a_conflict_in_any_spelling() {
    let app = TestApp::spawn().await;
    app.register_customer("c1", "annsmith@gmail.com").await;
    app.register_customer("c2", "bob@example.com").await;
    for (external_id, email) in [
        ("c3", "annsmith@gmail.com"),
        ("c4", "Ann.Smith@gmail.com"),
        ("c5", "annsmith+deals@googlemail.com"),
        ("c6", "BOB@example.com"),
    ] {
        let response = app.register_customer(external_id, email).await;
        assert_error(&response, "CONFLICT");
    }
    let count = app
        .graphql(
            Some(&app.admin_token()),
            "{ customers(first: 100) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&count)["customers"]["edges"].as_array().unwrap().len(),
        2,
        "nothing was written by the refused registrations"
    );
}

#[tokio::test]
async fn a_malformed_email_is_bad_user_input_naming_the_field() {
    let app = TestApp::spawn().await;
    for email in ["", "not-an-email", "a@b", "two@@example.com"] {
        let response = app.register_customer("c1", email).await;
        assert_error(&response, "BAD_USER_INPUT");
        assert_eq!(response["errors"][0]["extensions"]["field"], "email");
    }
}

#[tokio::test]
async fn an_empty_external_id_is_bad_user_input_naming_the_field() {
    let app = TestApp::spawn().await;
    for external_id in ["", "   "] {
        let response = app.register_customer(external_id, "a@example.com").await;
        assert_error(&response, "BAD_USER_INPUT");
        assert_eq!(response["errors"][0]["extensions"]["field"], "externalId");
    }
}

#[tokio::test]
async fn a_missing_required_input_field_is_bad_user_input() {
    let app = TestApp::spawn().await;
    let response = app.register(json!({ "externalId": "c1" })).await;
    assert_error(&response, "BAD_USER_INPUT");
}

#[tokio::test]
async fn me_returns_the_customer_of_the_token() {
    let app = TestApp::spawn().await;
    let registered = app.register_customer("c1", "c1@example.com").await;
    let token = app.customer_token("c1");
    let response = app
        .graphql(
            Some(&token),
            &format!("{{ me {{ {CUSTOMER_FIELDS} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(&data(&response)["me"], customer(&registered));
}

#[tokio::test]
async fn customer_by_external_id_returns_it_or_null() {
    let app = TestApp::spawn().await;
    app.register_customer("c1", "c1@example.com").await;
    let query = "query($id: String!) { customer(externalId: $id) { email } }";
    for token in [app.service_token(), app.admin_token()] {
        let found = app
            .graphql(Some(&token), query, json!({ "id": "c1" }))
            .await;
        assert_eq!(data(&found)["customer"]["email"], "c1@example.com");
        let missing = app
            .graphql(Some(&token), query, json!({ "id": "nobody" }))
            .await;
        assert_eq!(data(&missing)["customer"], Value::Null);
    }
}

#[tokio::test]
async fn customers_are_listed_a_page_at_a_time_in_registration_order() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.register_customer(&format!("c{i}"), &format!("c{i}@example.com"))
            .await;
    }
    let query = "query($first: Int, $after: String) {
      customers(first: $first, after: $after) {
        edges { cursor node { externalId } }
        pageInfo { hasNextPage hasPreviousPage endCursor }
      }
    }";
    let token = app.admin_token();
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let response = app
            .graphql(Some(&token), query, json!({ "first": 2, "after": after }))
            .await;
        let page = &data(&response)["customers"];
        for edge in page["edges"].as_array().unwrap() {
            seen.push(edge["node"]["externalId"].as_str().unwrap().to_owned());
        }
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4"]);
}

#[tokio::test]
async fn a_page_larger_than_the_limit_or_a_foreign_cursor_is_bad_user_input() {
    let app = TestApp::spawn().await;
    let token = app.admin_token();
    let too_many = app
        .graphql(
            Some(&token),
            "{ customers(first: 1000) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_error(&too_many, "BAD_USER_INPUT");
    let bad_cursor = app
        .graphql(
            Some(&token),
            "{ customers(after: \"xyz\") { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_error(&bad_cursor, "BAD_USER_INPUT");
}

#[tokio::test]
async fn update_customer_changes_name_email_and_consent() {
    let app = TestApp::spawn().await;
    let registered = app.register_customer("c1", "old@example.com").await;
    let response = app
        .graphql(
            Some(&app.service_token()),
            UPDATE_CUSTOMER,
            json!({ "id": "c1", "input": { "name": "New Name", "email": "new@example.com", "marketingConsent": true } }),
        )
        .await;
    let updated = &data(&response)["updateCustomer"];
    assert_eq!(updated["email"], "new@example.com");
    assert_eq!(updated["name"], "New Name");
    assert_eq!(updated["marketingConsent"], true);

    let cleared = app
        .graphql(
            Some(&app.service_token()),
            UPDATE_CUSTOMER,
            json!({ "id": "c1", "input": { "name": null } }),
        )
        .await;
    assert_eq!(data(&cleared)["updateCustomer"]["name"], Value::Null);
    assert_eq!(data(&cleared)["updateCustomer"]["email"], "new@example.com");

    // The referral code does not change with the email.
    let again = app.register_customer("c1", "new@example.com").await;
    assert_eq!(
        customer(&again)["referralCode"],
        customer(&registered)["referralCode"]
    );
}

#[tokio::test]
async fn update_customer_refuses_an_email_taken_or_malformed_and_an_unknown_customer() {
    let app = TestApp::spawn().await;
    app.register_customer("c1", "one@example.com").await;
    app.register_customer("c2", "two@example.com").await;
    let token = app.service_token();
    let update = |id: &'static str, input: Value| {
        let token = token.clone();
        let app = &app;
        async move {
            app.graphql(
                Some(&token),
                UPDATE_CUSTOMER,
                json!({ "id": id, "input": input }),
            )
            .await
        }
    };
    assert_error(
        &update("c2", json!({ "email": "ONE@example.com" })).await,
        "CONFLICT",
    );
    let malformed = update("c2", json!({ "email": "nope" })).await;
    assert_error(&malformed, "BAD_USER_INPUT");
    assert_eq!(malformed["errors"][0]["extensions"]["field"], "email");
    assert_error(&update("ghost", json!({ "name": "x" })).await, "NOT_FOUND");

    let unchanged = app
        .graphql(
            Some(&token),
            "{ customer(externalId: \"c2\") { email } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&unchanged)["customer"]["email"], "two@example.com");
}

#[tokio::test]
async fn concurrent_registrations_of_one_external_id_produce_one_customer() {
    let app = TestApp::spawn().await;
    let responses =
        join_all((0..20).map(|_| app.register_customer("same", "same@example.com"))).await;
    let ids: HashSet<String> = responses
        .iter()
        .map(|r| customer(r)["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "every call answers with the one customer");
    let listed = app
        .graphql(
            Some(&app.admin_token()),
            "{ customers(first: 100) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&listed)["customers"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn concurrent_registrations_of_many_customers_get_distinct_codes() {
    let app = TestApp::spawn().await;
    let responses = join_all((0..100).map(|i| {
        let app = &app;
        async move {
            app.register_customer(&format!("c{i}"), &format!("c{i}@example.com"))
                .await
        }
    }))
    .await;
    let codes: HashSet<String> = responses
        .iter()
        .map(|r| customer(r)["referralCode"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 100);
    assert!(codes.iter().all(|c| is_crockford_code(c)));
}

#[tokio::test]
async fn a_referral_code_already_taken_is_drawn_again() {
    let app = TestApp::spawn().await;
    let taken = ReferralCode::parse("AAAA0000").unwrap();
    let fresh = ReferralCode::parse("BBBB1111").unwrap();
    let mut draws = vec![fresh.clone(), taken.clone(), taken.clone()];
    let new = |id: &str| NewCustomer {
        external_id: id.into(),
        email: EmailAddress::parse(&format!("{id}@example.com")).unwrap(),
        name: None,
        acquisition_channel: "organic".into(),
        marketing_consent: false,
        signup_referral_code: None,
        signup_ip_hash: None,
        device_id: None,
    };
    let mut next = move || Ok(draws.pop().expect("enough codes"));
    let reactions = app.state.reactions();
    let first = register_with_codes(&app.state.db, &app.clock, &reactions, new("c1"), &mut next)
        .await
        .unwrap();
    let second = register_with_codes(&app.state.db, &app.clock, &reactions, new("c2"), &mut next)
        .await
        .unwrap();
    assert_eq!(first.referral_code, taken.as_str());
    assert_eq!(second.referral_code, fresh.as_str());
}

#[tokio::test]
async fn an_answer_lists_the_fields_in_the_order_the_query_asked_alone_and_in_a_batch() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("ann", "ann@example.com").await);
    let query = "{ me { referralCode pointsBalance externalId email } }";
    let post = |body: String| {
        app.client
            .post(format!("{}/graphql", app.address))
            .bearer_auth(app.customer_token("ann"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let single = post(json!({ "query": query }).to_string())
        .await
        .expect("the server answers")
        .text()
        .await
        .unwrap();
    let batch =
        post(json!([{ "query": query }, { "query": "{ me { email externalId } }" }]).to_string())
            .await
            .expect("the server answers")
            .text()
            .await
            .unwrap();
    let at = |text: &str, key: &str| {
        text.find(&format!("\"{key}\""))
            .unwrap_or_else(|| panic!("{key} is missing from {text}"))
    };
    let asked = ["referralCode", "pointsBalance", "externalId", "email"];
    let positions: Vec<usize> = asked.iter().map(|key| at(&single, key)).collect();
    assert!(positions.is_sorted(), "{single}");
    let between = batch.find("},{\"data\"").expect("two answers");
    let (first, second) = batch.split_at(between + 2);
    let positions: Vec<usize> = asked.iter().map(|key| at(first, key)).collect();
    assert!(positions.is_sorted(), "{batch}");
    assert!(at(second, "email") < at(second, "externalId"), "{batch}");
    let parsed: Value = serde_json::from_str(&batch).unwrap();
    assert_eq!(parsed[1]["data"]["me"]["email"], "ann@example.com");
}
