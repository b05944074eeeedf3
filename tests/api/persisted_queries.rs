//! Apollo's automatic persisted queries and the store of parsed documents behind them.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{TestApp, data, error_code};

const QUERY: &str = "query Who { me { externalId } }";

fn hash_of(query: &str) -> String {
    Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn post(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    response.json().await.expect("the body is JSON")
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

#[tokio::test]
async fn a_query_sent_by_its_hash_runs_once_its_text_was_sent_with_the_hash() {
    let app = TestApp::spawn().await;
    data(&app.register_customer("ann", "ann@example.com").await);
    let token = app.customer_token("ann");
    let hash = hash_of(QUERY);
    let unknown = post(&app, &token, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(error_code(&unknown), Some("PERSISTED_QUERY_NOT_FOUND"));
    let registered = post(
        &app,
        &token,
        json!({ "query": QUERY, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(data(&registered)["me"]["externalId"], "ann");
    let by_hash = post(&app, &token, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(data(&by_hash)["me"]["externalId"], "ann");
    // Over GET too, as a CDN-friendly client sends it.
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("extensions", persisted(&hash).to_string())])
        .bearer_auth(&token)
        .send()
        .await
        .expect("the server answers");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(data(&body)["me"]["externalId"], "ann");
}

#[tokio::test]
async fn a_hash_that_is_not_the_querys_own_is_refused_and_not_kept() {
    let app = TestApp::spawn().await;
    let token = app.service_token();
    let wrong = hash_of("{ somethingElse }");
    let refused = post(
        &app,
        &token,
        json!({ "query": "{ activeCampaign { id } }", "extensions": persisted(&wrong) }),
    )
    .await;
    assert_eq!(error_code(&refused), Some("PERSISTED_QUERY_HASH_MISMATCH"));
    assert!(refused.get("data").is_none_or(Value::is_null), "{refused}");
    let unknown = post(&app, &token, json!({ "extensions": persisted(&wrong) })).await;
    assert_eq!(error_code(&unknown), Some("PERSISTED_QUERY_NOT_FOUND"));
}

#[tokio::test]
async fn a_malformed_persisted_query_extension_gets_a_clear_refusal() {
    let app = TestApp::spawn().await;
    for (extensions, expected) in [
        (
            json!({ "persistedQuery": { "version": 2, "sha256Hash": hash_of(QUERY) } }),
            "version must be 1",
        ),
        (
            json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
            "64 hex digits",
        ),
        (
            json!({ "persistedQuery": { "version": 1 } }),
            "64 hex digits",
        ),
    ] {
        let response = app
            .post_graphql_raw(
                Some("application/json"),
                None,
                json!({ "extensions": extensions }).to_string(),
            )
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.expect("JSON");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{message}");
    }
}

#[tokio::test]
async fn the_same_document_is_kept_once_and_one_over_the_limits_is_not_kept() {
    let app = TestApp::spawn().await;
    let token = app.service_token();
    let before = app.state.documents.size().0;
    for _ in 0..3 {
        let response = post(
            &app,
            &token,
            json!({ "query": "{ activeCampaign { id } }" }),
        )
        .await;
        data(&response);
    }
    assert_eq!(app.state.documents.size().0, before + 1);
    // Nested past the limit: refused before parsing, and its hash stays unknown.
    let deep = format!("{{ {}x{} }}", "a { ".repeat(60), " }".repeat(60));
    let hash = hash_of(&deep);
    let refused = post(
        &app,
        &token,
        json!({ "query": deep, "extensions": persisted(&hash) }),
    )
    .await;
    assert!(refused["errors"].is_array(), "{refused}");
    assert_eq!(app.state.documents.size().0, before + 1);
    let unknown = post(&app, &token, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(error_code(&unknown), Some("PERSISTED_QUERY_NOT_FOUND"));
}
