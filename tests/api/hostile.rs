//! What an attacker with no token tried, each refused with a clear error, after which the server
//! still serves. Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

use std::time::{Duration, Instant};

use futures::StreamExt;

use serde_json::{Value, json};

use crate::common::{TestApp, assert_error, data, error_code, hold_customer, name_of};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A document where F0 spreads F1 twice, F1 spreads F2 twice, and so on `levels` deep: 2^levels
/// fields once expanded, in under a kilobyte.
fn fragment_fan_out(levels: usize) -> String {
    let mut query = String::from("query { activeCampaign { ...F0 } }\n");
    for level in 0..levels {
        let next = level + 1;
        query.push_str(&format!(
            "fragment F{level} on Campaign {{ ...F{next} ...F{next} }}\n"
        ));
    }
    query.push_str(&format!("fragment F{levels} on Campaign {{ id }}\n"));
    query
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("the body is JSON")
}

#[tokio::test]
async fn deeply_nested_lists_in_a_query_are_refused_without_a_crash() {
    let app = TestApp::spawn().await;
    let nested = format!("{}{}", "[".repeat(1_550), "]".repeat(1_550));
    let query = format!("{{ referralCode(code: {nested}) {{ code }} }}");
    assert!(query.len() < 3_300);
    let response = app.graphql(None, &query, json!({})).await;
    let message = assert_error(&response, "BAD_USER_INPUT");
    assert!(message.contains("64 levels"), "{message}");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn deeply_nested_variables_are_refused_with_400_without_a_crash() {
    let app = TestApp::spawn().await;
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let body = format!(
        "{{\"query\": \"query($v: String) {{ __typename }}\", \"variables\": {{\"v\": {nested}}}}}"
    );
    let response = app
        .post_graphql_raw(Some("application/json"), None, body)
        .await;
    assert_eq!(response.status(), 400);
    let body = json_of(response).await;
    let message = assert_error(&body, "BAD_USER_INPUT");
    assert!(message.contains("nests"), "{message}");

    let nested_object = format!("{}1{}", "{\"a\":".repeat(3_000), "}".repeat(3_000));
    let query = "query($v: String) { __typename }";
    let url = format!(
        "{}/graphql?query={}&variables={}",
        app.address,
        urlencode(query),
        urlencode(&format!("{{\"v\": {nested_object}}}"))
    );
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    app.assert_still_serves().await;
}

#[tokio::test]
async fn an_exponential_fan_out_of_fragments_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let query = fragment_fan_out(30);
    assert!(query.len() < 1_500);
    let started = Instant::now();
    let response = app.graphql(None, &query, json!({})).await;
    let elapsed = started.elapsed();
    let message = assert_error(&response, "BAD_USER_INPUT");
    assert!(message.contains("too large"), "{message}");
    // Generous: the refusal takes milliseconds; this only says "not minutes".
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn thousands_of_aliases_are_refused_and_run_nothing() {
    let app = TestApp::spawn().await;
    let code = app.referral_code_of("ann").await;
    let aliased = |count: usize| -> String {
        let fields: String = (0..count)
            .map(|i| format!("c{i}:trackReferralClick(code:$c){{recorded}} "))
            .collect();
        json!({ "query": format!("mutation($c: String!) {{ {fields} }}"), "variables": { "c": code } })
            .to_string()
    };
    // 2,400 of them do not fit in the body limit: refused before they are read.
    let response = app
        .post_graphql_raw(Some("application/json"), None, aliased(2_400))
        .await;
    assert_eq!(response.status(), 413);
    // 1,200 fit, and the alias limit refuses them before any runs.
    let response = app
        .post_graphql_raw(Some("application/json"), None, aliased(1_200))
        .await;
    assert_eq!(response.status(), 200);
    let message = assert_error(&json_of(response).await, "BAD_USER_INPUT");
    assert!(message.contains("aliases"), "{message}");
    assert_eq!(app.click_count().await, 0);

    let thirty_one: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
    let message = assert_error(
        &app.graphql(None, &format!("{{ {thirty_one} }}"), json!({}))
            .await,
        "BAD_USER_INPUT",
    );
    assert!(message.contains("TANDEM_MAX_ALIASES"), "{message}");

    let roots = "activeCampaign { id } ".repeat(21);
    let message = assert_error(
        &app.graphql(None, &format!("{{ {roots} }}"), json!({}))
            .await,
        "BAD_USER_INPUT",
    );
    assert!(message.contains("TANDEM_MAX_ROOT_FIELDS"), "{message}");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_query_deeper_than_the_limit_is_refused() {
    let app = TestApp::spawn().await;
    let inner = "referrals { referrer { referrals { referrer { referrals { referrer { referrals { referrer { referrals { referrer { referrals { id } } } } } } } } } } }";
    let response = app
        .graphql(
            Some(&app.customer_token("ann")),
            &format!("{{ me {{ {inner} }} }}"),
            json!({}),
        )
        .await;
    let message = assert_error(&response, "BAD_USER_INPUT");
    assert!(message.contains("TANDEM_MAX_DEPTH"), "{message}");
}

#[tokio::test]
async fn batches_are_capped_at_ten_operations() {
    let app = TestApp::spawn().await;
    let operation = json!({ "query": "{ activeCampaign { id } }" });
    let ten = Value::Array(vec![operation.clone(); 10]);
    let response = app
        .post_graphql_raw(Some("application/json"), None, ten.to_string())
        .await;
    assert_eq!(response.status(), 200);
    let answers = json_of(response).await;
    assert_eq!(answers.as_array().map(Vec::len), Some(10), "{answers}");

    let eleven = Value::Array(vec![operation; 11]);
    let response = app
        .post_graphql_raw(Some("application/json"), None, eleven.to_string())
        .await;
    assert_eq!(response.status(), 400);
    let message = assert_error(&json_of(response).await, "BAD_USER_INPUT");
    assert!(message.contains("TANDEM_MAX_BATCH"), "{message}");
}

#[tokio::test]
async fn batches_can_be_turned_off() {
    let app = TestApp::spawn_with(&[("TANDEM_MAX_BATCH", "0")]).await;
    let batch = json!([{ "query": "{ __typename }" }]);
    let response = app
        .post_graphql_raw(Some("application/json"), None, batch.to_string())
        .await;
    assert_eq!(response.status(), 400);
    let message = assert_error(&json_of(response).await, "BAD_USER_INPUT");
    assert!(message.contains("turned off"), "{message}");
}

#[tokio::test]
async fn a_body_over_64_kib_gets_413_before_it_is_read() {
    let app = TestApp::spawn().await;
    let padding = " ".repeat(2 * 1024 * 1024);
    let body = format!("{{\"query\": \"{{ __typename }}\"{padding}}}");
    let response = app
        .post_graphql_raw(Some("application/json"), None, body)
        .await;
    assert_eq!(response.status(), 413);
    let message = assert_error(&json_of(response).await, "BAD_USER_INPUT");
    assert!(message.contains("TANDEM_MAX_BODY_BYTES"), "{message}");

    // Without a declared length the body is cut off as soon as it passes the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let stream = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = app
        .post_graphql_raw(Some("application/json"), None, stream)
        .await;
    assert_eq!(response.status(), 413);
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_nul_byte_is_refused_alike_on_every_backend() {
    let app = TestApp::spawn().await;
    let response = app
        .register(json!({ "externalId": "a\u{0}b", "email": "nul@example.com" }))
        .await;
    let message = assert_error(&response, "BAD_USER_INPUT");
    assert!(message.contains("control characters"), "{message}");
    assert_eq!(response["errors"][0]["extensions"]["field"], "externalId");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_landing_url_with_a_line_break_is_refused_when_written() {
    let app = TestApp::spawn().await;
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "mutation($input: CampaignInput!) { createCampaign(input: $input) { id } }",
            json!({ "input": {
                "name": "Poison",
                "referrerReward": { "kind": "POINTS", "amount": 100 },
                "refereeReward": { "kind": "POINTS", "amount": 100 },
                "landingUrl": "https://shop.example/\r\nSet-Cookie: a=b",
            }}),
        )
        .await;
    assert_error(&response, "BAD_USER_INPUT");
    assert_eq!(response["errors"][0]["extensions"]["field"], "landingUrl");
    let code = app.referral_code_of("ann").await;
    let response = app.get(&format!("/r/{code}")).await;
    assert_eq!(response.status(), 302);
}

#[tokio::test]
async fn a_poisoned_landing_url_stored_before_the_checks_still_redirects() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

    let app = TestApp::spawn().await;
    let campaign = app
        .create_campaign(json!({
            "name": "Old",
            "referrerReward": { "kind": "POINTS", "amount": 100 },
            "refereeReward": { "kind": "POINTS", "amount": 100 },
        }))
        .await;
    let id: uuid::Uuid = campaign["id"].as_str().unwrap().parse().unwrap();
    let mut row: tandem::entities::campaign::ActiveModel =
        tandem::entities::campaign::Entity::find_by_id(id)
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
            .into();
    row.landing_url = Set(Some("https://shop.example/\r\nSet-Cookie: a=b".into()));
    row.update(&app.state.db).await.unwrap();
    let code = app.referral_code_of("ann").await;
    let response = app.get(&format!("/r/{code}")).await;
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        !location.contains('\n') && !location.contains('\r'),
        "{location}"
    );
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn the_ref_parameter_survives_a_fragment_in_the_landing_url() {
    let app = TestApp::spawn().await;
    app.create_campaign(json!({
        "name": "Spring",
        "referrerReward": { "kind": "POINTS", "amount": 100 },
        "refereeReward": { "kind": "POINTS", "amount": 100 },
        "landingUrl": "https://shop.example/join?utm=share#offer",
    }))
    .await;
    let code = app.referral_code_of("ann").await;
    let response = app.get(&format!("/r/{code}")).await;
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        format!("https://shop.example/join?utm=share&ref={code}#offer").as_str()
    );
}

#[tokio::test]
async fn a_javascript_url_never_reaches_a_cart() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let response = app
        .graphql(
            Some(&app.service_token()),
            "mutation($input: CartInput!) { upsertCart(input: $input) { id } }",
            json!({ "input": {
                "externalId": "cart-1",
                "customerExternalId": "ann",
                "items": [{ "productId": "p1", "unitPrice": 100, "quantity": 1, "url": "javascript:alert(document.cookie)" }],
            }}),
        )
        .await;
    assert_error(&response, "BAD_USER_INPUT");
    assert_eq!(response["errors"][0]["extensions"]["field"], "items.url");
}

#[tokio::test]
async fn ints_beyond_32_bits_and_outside_their_range_are_refused() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    for (amount, quantity) in [
        (2_147_483_648_i64, 1_i64),
        (1_000, 9_223_372_036_854_775_807),
    ] {
        let response = app
            .record_order_with(json!({
                "externalId": "o-1", "customerExternalId": "ann", "amount": amount, "currency": "USD",
                "items": [{ "productId": "p1", "unitPrice": 100, "quantity": quantity }],
            }))
            .await;
        assert_error(&response, "BAD_USER_INPUT");
    }
    let response = app
        .record_order_with(json!({
            "externalId": "o-1", "customerExternalId": "ann", "amount": 1000, "currency": "USD",
            "items": [{ "productId": "p1", "unitPrice": 100, "quantity": 10_001 }],
        }))
        .await;
    let message = assert_error(&response, "BAD_USER_INPUT");
    assert!(message.contains("from 1 to 10000"), "{message}");
    assert_eq!(
        response["errors"][0]["extensions"]["field"],
        "items.quantity"
    );
}

#[tokio::test]
async fn points_past_32_bits_are_read_as_a_plain_json_number() {
    let app = TestApp::spawn().await;
    app.create_campaign(json!({
        "name": "Big",
        "referrerReward": { "kind": "POINTS", "amount": 1_000_000_000 },
        "refereeReward": { "kind": "POINTS", "amount": 1 },
    }))
    .await;
    for friend in ["bea", "cal", "dan"] {
        app.refer("ann", friend, json!({})).await;
        data(
            &app.record_order(&format!("o-{friend}"), friend, 5_000)
                .await,
        );
    }
    let me = app.me("ann").await;
    assert_eq!(me["pointsBalance"], json!(3_000_000_000_i64), "{me}");
}

#[tokio::test]
async fn queries_can_be_sent_with_get_and_mutations_cannot() {
    let app = TestApp::spawn().await;
    let url = format!(
        "{}/graphql?query={}",
        app.address,
        urlencode("{ activeCampaign { id } }")
    );
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(json_of(response).await.get("errors").is_none());

    let url = format!(
        "{}/graphql?query={}",
        app.address,
        urlencode("mutation { trackReferralClick(code: \"ABCD1234\") { recorded } }")
    );
    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert_error(&json_of(response).await, "BAD_USER_INPUT");
    assert_eq!(app.click_count().await, 0);

    let response = app.get("/graphql").await;
    assert_eq!(response.status(), 400, "GraphiQL only for text/html");
}

#[tokio::test]
async fn graphql_response_json_gets_400_for_a_request_that_cannot_run() {
    let app = TestApp::spawn().await;
    for query in ["{", "{ noSuchField }", "query($id: ID!) { __typename }"] {
        let body = json!({ "query": query, "variables": { "id": null } });
        let response = app
            .post_graphql_raw(
                Some("application/json"),
                Some(GRAPHQL_RESPONSE),
                body.to_string(),
            )
            .await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(GRAPHQL_RESPONSE)
        );
        let body = json_of(response).await;
        assert!(body.get("data").is_none(), "{body}");
        assert_error(&body, "BAD_USER_INPUT");

        // application/json keeps answering 200 with the errors.
        let response = app
            .post_graphql_raw(
                Some("application/json"),
                Some("application/json"),
                json!({ "query": query, "variables": { "id": null } }).to_string(),
            )
            .await;
        assert_eq!(response.status(), 200, "{query}");
    }
}

#[tokio::test]
async fn a_wrong_shape_body_gets_400_with_a_graphql_error() {
    let app = TestApp::spawn().await;
    for body in [
        "{\"qeury\": \"{ __typename }\"}",
        "{\"query\": 1}",
        "{\"query\": \"{ __typename }\", \"variables\": \"x\"}",
        "{\"query\": \"{ __typename }\", \"operationName\": {}}",
        "[1, 2]",
        "\"just a string\"",
        "{ \"not json",
        "",
    ] {
        let response = app
            .post_graphql_raw(Some("application/json"), None, body)
            .await;
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("BatchRequest"), "{text}");
        let json: Value = serde_json::from_str(&text).expect("the refusal is JSON");
        assert_error(&json, "BAD_USER_INPUT");
    }
    let response = app
        .post_graphql_raw(None, None, "{\"query\": \"{ __typename }\"}")
        .await;
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn head_on_a_share_link_answers_like_get_without_recording_a_click() {
    let app = TestApp::spawn().await;
    let code = app.referral_code_of("ann").await;
    let response = app
        .client
        .head(format!("{}/r/{code}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        format!("https://shop.example/?ref={code}").as_str()
    );
    assert_eq!(app.click_count().await, 0);
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_stopped_and_leaves_nothing_behind() {
    let app = TestApp::spawn_with(&[("TANDEM_REQUEST_TIMEOUT", "1s")]).await;
    app.register_customer("ann", "ann@example.com").await;
    let blocker = hold_customer(&app, "ann").await;
    let started = Instant::now();
    let response = app
        .graphql(
            Some(&app.service_token()),
            "mutation { updateCustomer(externalId: \"ann\", input: { name: \"Changed\" }) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&response), Some("TIMEOUT"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(10));
    blocker.rollback().await.unwrap();
    assert_ne!(name_of(&app, "ann").await, "Changed");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_body_that_never_finishes_arriving_gets_408() {
    let app = TestApp::spawn_with(&[("TANDEM_REQUEST_TIMEOUT", "1s")]).await;
    let first: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(b"{\"query\": ".to_vec())];
    let stream = futures::stream::iter(first).chain(futures::stream::pending());
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        app.post_graphql_raw(
            Some("application/json"),
            None,
            reqwest::Body::wrap_stream(stream),
        ),
    )
    .await
    .expect("the server gives up on the body");
    assert_eq!(response.status(), 408);
    assert_error(&json_of(response).await, "TIMEOUT");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_has_its_request_cancelled() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let blocker = hold_customer(&app, "ann").await;
    // The client gives up while the update waits for the lock.
    let gave_up = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.service_token())
        .timeout(Duration::from_millis(500))
        .json(&json!({ "query": "mutation { updateCustomer(externalId: \"ann\", input: { name: \"Changed\" }) { name } }" }))
        .send()
        .await;
    assert!(gave_up.is_err(), "the request was still waiting");
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocker.rollback().await.unwrap();
    // Had the server gone on with it, the update would now go through.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_ne!(name_of(&app, "ann").await, "Changed");
    app.assert_still_serves().await;
}

#[tokio::test]
async fn health_answers_while_the_largest_allowed_queries_run() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.register_customer(&format!("c{i}"), &format!("c{i}@example.com"))
            .await;
    }
    // Near the limits: 20 root fields, 12 deep, complexity under 1,000.
    let fields: String = (0..20)
        .map(|i| {
            format!("r{i}: customers(first: 5) {{ edges {{ node {{ externalId email }} }} }} ")
        })
        .collect();
    let query = format!("{{ {fields} }}");
    let token = app.admin_token();
    let heavy: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, query, token) = (
                app.client.clone(),
                format!("{}/graphql", app.address),
                query.clone(),
                token.clone(),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "query": query }))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for path in ["/health", "/ready", "/health", "/ready", "/health"] {
        let answer = tokio::time::timeout(Duration::from_secs(5), app.get(path))
            .await
            .expect("health checks answer while heavy queries run");
        assert_eq!(answer.status(), 200, "{path}");
    }
    for task in heavy {
        let response = task.await.unwrap();
        assert!(response.get("errors").is_none(), "{response}");
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn order_ids_of_four_byte_characters_cannot_lock_a_friend_out_of_ordering() {
    let app = TestApp::spawn().await;
    data(
        &app.create_campaign(json!({
            "name": "Minimum",
            "referrerReward": { "kind": "POINTS", "amount": 500 },
            "refereeReward": { "kind": "POINTS", "amount": 100 },
            "minOrderAmount": 5_000,
        }))
        .await,
    );
    data(&app.refer("emoji-amy", "emoji-ben", json!({})).await);
    // Each sub-minimum order adds a decision naming its id; 22 of them once broke the
    // referral's live event past PostgreSQL's 8,000-byte NOTIFY limit.
    for n in 0..22 {
        let id: String = std::iter::repeat_n('😀', 127)
            .chain(char::from_u32(0x1F600 + n))
            .collect();
        data(&app.record_order(&id, "emoji-ben", 100).await);
    }
    let qualifying = app
        .record_order("emoji-qualifying", "emoji-ben", 6_000)
        .await;
    data(&qualifying);
    data(&app.record_order("emoji-later", "emoji-ben", 6_000).await);
    let referrals = app
        .graphql(
            Some(&app.service_token()),
            "{ customer(externalId: \"emoji-amy\") { referrals { status } } }",
            json!({}),
        )
        .await;
    assert!(
        referrals.to_string().contains("REWARDED") || referrals.to_string().contains("QUALIFIED"),
        "{referrals}"
    );
}
