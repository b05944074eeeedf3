use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::{TEST_SECRET, TestApp, assert_error, data, sign_hs256};

const CUSTOMERS: &str = "{ customers { edges { node { externalId } } } }";
const ME: &str = "{ me { externalId } }";

fn exp_in(duration: Duration) -> i64 {
    (Utc::now() + duration).timestamp()
}

async fn customers_with(app: &TestApp, token: &str) -> Value {
    app.graphql(Some(token), CUSTOMERS, json!({})).await
}

#[tokio::test]
async fn a_protected_field_without_a_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let response = app.graphql(None, CUSTOMERS, json!({})).await;
    assert_error(&response, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_malformed_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    for token in ["abc", "a.b.c", ""] {
        assert_error(&customers_with(&app, token).await, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn an_authorization_header_without_bearer_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("authorization", format!("Token {}", app.admin_token()))
        .json(&json!({ "query": CUSTOMERS }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_error(&response, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let token = sign_hs256(
        &json!({ "sub": "ops", "role": "admin", "exp": exp_in(Duration::hours(1)) }),
        "another-secret-that-is-at-least-32-characters",
    );
    let message = assert_error(&customers_with(&app, &token).await, "UNAUTHENTICATED");
    assert!(message.contains("signature"), "{message}");
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let token = sign_hs256(
        &json!({ "sub": "ops", "role": "admin", "exp": exp_in(-Duration::minutes(5)) }),
        TEST_SECRET,
    );
    let message = assert_error(&customers_with(&app, &token).await, "UNAUTHENTICATED");
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn a_token_expires_when_the_clock_moves_past_exp() {
    let app = TestApp::spawn().await;
    let token = app.admin_token();
    data(&customers_with(&app, &token).await);
    app.clock.advance(Duration::hours(2));
    assert_error(&customers_with(&app, &token).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_whose_nbf_is_in_the_future_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let token = sign_hs256(
        &json!({ "sub": "ops", "role": "admin", "exp": exp_in(Duration::hours(2)), "nbf": exp_in(Duration::hours(1)) }),
        TEST_SECRET,
    );
    assert_error(&customers_with(&app, &token).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_without_exp_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let token = sign_hs256(&json!({ "sub": "ops", "role": "admin" }), TEST_SECRET);
    assert_error(&customers_with(&app, &token).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_with_an_unknown_role_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let token = sign_hs256(
        &json!({ "sub": "ops", "role": "root", "exp": exp_in(Duration::hours(1)) }),
        TEST_SECRET,
    );
    assert_error(&customers_with(&app, &token).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_unauthenticated() {
    use base64::Engine;
    let encode =
        |value: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let app = TestApp::spawn().await;
    let claims = json!({ "sub": "ops", "role": "admin", "exp": exp_in(Duration::hours(1)) });
    for header in [
        json!({ "alg": "none", "typ": "JWT" }),
        json!({ "alg": "None" }),
    ] {
        let token = format!("{}.{}.", encode(header), encode(claims.clone()));
        assert_error(&customers_with(&app, &token).await, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_valid_token_with_the_wrong_role_is_forbidden() {
    let app = TestApp::spawn().await;
    let customer = app.customer_token("c1");
    assert_error(&customers_with(&app, &customer).await, "FORBIDDEN");
    let service = app.service_token();
    assert_error(
        &app.graphql(Some(&service), ME, json!({})).await,
        "FORBIDDEN",
    );
    let admin = app.admin_token();
    let response = app
        .graphql(
            Some(&admin),
            crate::common::REGISTER_CUSTOMER,
            json!({ "input": { "externalId": "x", "email": "x@example.com" } }),
        )
        .await;
    assert_error(&response, "FORBIDDEN");
}

#[tokio::test]
async fn a_customer_token_reaches_its_own_customer_only() {
    let app = TestApp::spawn().await;
    app.register_customer("alice", "alice@example.com").await;
    app.register_customer("bob", "bob@example.com").await;
    let alice = app.customer_token("alice");

    let me = app.graphql(Some(&alice), ME, json!({})).await;
    assert_eq!(data(&me)["me"]["externalId"], "alice");

    let other = app
        .graphql(
            Some(&alice),
            "{ customer(externalId: \"bob\") { email } }",
            json!({}),
        )
        .await;
    assert_error(&other, "FORBIDDEN");
}

#[tokio::test]
async fn me_for_a_customer_that_is_not_registered_is_not_found() {
    let app = TestApp::spawn().await;
    let token = app.customer_token("ghost");
    assert_error(&app.graphql(Some(&token), ME, json!({})).await, "NOT_FOUND");
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let app = TestApp::spawn_with(&[
        ("TANDEM_JWT_ISSUER", "https://id.shop.example"),
        ("TANDEM_JWT_AUDIENCE", "tandem"),
    ])
    .await;
    let claims = |iss: &str, aud: &str| json!({ "sub": "ops", "role": "admin", "exp": exp_in(Duration::hours(1)), "iss": iss, "aud": aud });
    let good = sign_hs256(&claims("https://id.shop.example", "tandem"), TEST_SECRET);
    data(&customers_with(&app, &good).await);
    // RFC 7519: `aud` may be an array; the configured audience must be one of its entries.
    let many = |aud: Value| json!({ "sub": "ops", "role": "admin", "exp": exp_in(Duration::hours(1)), "iss": "https://id.shop.example", "aud": aud });
    let listed = sign_hs256(&many(json!(["billing", "tandem"])), TEST_SECRET);
    data(&customers_with(&app, &listed).await);
    let unlisted = sign_hs256(&many(json!(["billing", "other"])), TEST_SECRET);
    assert_error(&customers_with(&app, &unlisted).await, "UNAUTHENTICATED");
    for bad in [
        claims("https://evil.example", "tandem"),
        claims("https://id.shop.example", "other"),
    ] {
        let token = sign_hs256(&bad, TEST_SECRET);
        assert_error(&customers_with(&app, &token).await, "UNAUTHENTICATED");
    }
    let without = sign_hs256(
        &json!({ "sub": "ops", "role": "admin", "exp": exp_in(Duration::hours(1)) }),
        TEST_SECRET,
    );
    assert_error(&customers_with(&app, &without).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn with_a_public_key_tokens_from_the_identity_provider_are_accepted_and_hs256_is_refused() {
    let public_key = include_str!("../fixtures/es256-public.pem");
    let private_key = include_str!("../fixtures/es256-private.pem");
    let app = TestApp::spawn_with(&[("TANDEM_JWT_PUBLIC_KEY", public_key)]).await;
    let claims = json!({ "sub": "ops", "role": "admin", "exp": exp_in(Duration::hours(1)) });

    let from_provider = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(private_key.as_bytes()).unwrap(),
    )
    .unwrap();
    data(&customers_with(&app, &from_provider).await);

    // Algorithm confusion: an HS256 token keyed with the public key itself.
    let confused = sign_hs256(&claims, public_key);
    assert_error(&customers_with(&app, &confused).await, "UNAUTHENTICATED");
    let with_secret = sign_hs256(&claims, TEST_SECRET);
    assert_error(&customers_with(&app, &with_secret).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn public_fields_work_with_a_refused_token() {
    let app = TestApp::spawn().await;
    let response = app
        .graphql(Some("garbage"), "{ __typename }", json!({}))
        .await;
    assert_eq!(data(&response)["__typename"], "Query");
}
