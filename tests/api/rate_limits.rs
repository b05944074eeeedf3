//! Rate limits: per client IP on the public surface (429 with Retry-After outside GraphQL,
//! RATE_LIMITED with retryAfter inside it), per token on invitations and redemptions. Time moves
//! with the app's clock.

use chrono::Duration;
use serde_json::{Value, json};

use crate::common::{TestApp, data, error_code};

async fn public_app(extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![("TANDEM_RATE_LIMIT_PUBLIC", "3/1m")];
    settings.extend_from_slice(extra);
    TestApp::spawn_with(&settings).await
}

async fn click(app: &TestApp, forwarded_for: Option<&str>) -> Value {
    let mut request = app.client.post(format!("{}/graphql", app.address)).json(
        &json!({ "query": "mutation { trackReferralClick(code: \"NOSUCHCODE\") { recorded } }" }),
    );
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_share_link_answers_429_with_retry_after_once_the_address_spent_its_allowance() {
    let app = public_app(&[]).await;
    assert_eq!(app.get("/r/NOSUCHCODE").await.status(), 302);
    let head = app
        .client
        .head(format!("{}/r/NOSUCHCODE", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 302, "HEAD counts too");
    assert_eq!(app.get("/unsubscribe?token=x").await.status(), 400);
    let limited = app.get("/r/NOSUCHCODE").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(
        limited.headers()["retry-after"],
        "20",
        "3 a minute: one every 20 s"
    );
    assert!(limited.text().await.unwrap().contains("try again in 20 s"));
    let post = app
        .client
        .post(format!("{}/unsubscribe?token=x", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 429);

    app.clock.advance(Duration::seconds(19));
    assert_eq!(app.get("/r/NOSUCHCODE").await.status(), 429);
    app.clock.advance(Duration::seconds(1));
    assert_eq!(app.get("/r/NOSUCHCODE").await.status(), 302);
    app.assert_still_serves().await;
}

#[tokio::test]
async fn public_graphql_fields_answer_rate_limited_with_retry_after() {
    let app = public_app(&[]).await;
    for _ in 0..2 {
        data(&click(&app, None).await);
    }
    let lookup = app
        .graphql(
            None,
            "{ referralCode(code: \"NOSUCHCODE\") { code } }",
            json!({}),
        )
        .await;
    assert!(
        data(&lookup)["referralCode"].is_null(),
        "the lookup shares the address's allowance"
    );
    let limited = click(&app, None).await;
    assert_eq!(error_code(&limited), Some("RATE_LIMITED"));
    assert_eq!(limited["errors"][0]["extensions"]["retryAfter"], 20);
    let unsubscribe = app
        .graphql(
            None,
            "mutation { unsubscribe(token: \"x\") { email } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&unsubscribe), Some("RATE_LIMITED"));
    // Other fields are not limited.
    let other = app.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(data(&other)["__typename"], "Query");
    // A merchant backend calling for its visitors is not one visitor.
    for _ in 0..5 {
        let backend = app
            .graphql(
                Some(&app.service_token()),
                "mutation { trackReferralClick(code: \"NOSUCHCODE\") { recorded } }",
                json!({}),
            )
            .await;
        data(&backend);
    }
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_limited_apart_and_a_forged_header_is_ignored() {
    let direct = public_app(&[]).await;
    for n in 0..3 {
        data(&click(&direct, Some(&format!("203.0.113.{n}"))).await);
    }
    let forged = click(&direct, Some("203.0.113.99")).await;
    assert_eq!(
        error_code(&forged),
        Some("RATE_LIMITED"),
        "without trusted proxies X-Forwarded-For names nobody"
    );

    let proxied = public_app(&[("TANDEM_TRUSTED_PROXIES", "127.0.0.1")]).await;
    for _ in 0..3 {
        data(&click(&proxied, Some("203.0.113.7")).await);
    }
    assert_eq!(
        error_code(&click(&proxied, Some("203.0.113.7")).await),
        Some("RATE_LIMITED")
    );
    data(&click(&proxied, Some("203.0.113.8")).await);
}

#[tokio::test]
async fn invitations_and_redemptions_are_limited_per_token_and_per_customer_acted_for() {
    let app = TestApp::spawn_with(&[("TANDEM_RATE_LIMIT_ACCOUNT", "2/1m")]).await;
    let redeem = "mutation { redeemPoints(optionId: \"nope\") { id } }";
    let ann = app.customer_token("rl-ann");
    for _ in 0..2 {
        let answer = app.graphql(Some(&ann), redeem, json!({})).await;
        assert_eq!(error_code(&answer), Some("BAD_USER_INPUT"));
    }
    let limited = app.graphql(Some(&ann), redeem, json!({})).await;
    assert_eq!(error_code(&limited), Some("RATE_LIMITED"));
    assert_eq!(limited["errors"][0]["extensions"]["retryAfter"], 30);
    let bea = app.customer_token("rl-bea");
    assert_eq!(
        error_code(&app.graphql(Some(&bea), redeem, json!({})).await),
        Some("BAD_USER_INPUT"),
        "another token has its own allowance"
    );

    let invite = "mutation($who: String) { inviteFriends(customerExternalId: $who, emails: [\"x@example.com\"]) { sent } }";
    let service = app.service_token();
    for _ in 0..2 {
        let answer = app
            .graphql(Some(&service), invite, json!({ "who": "rl-cat" }))
            .await;
        assert_ne!(error_code(&answer), Some("RATE_LIMITED"));
    }
    let limited = app
        .graphql(Some(&service), invite, json!({ "who": "rl-cat" }))
        .await;
    assert_eq!(error_code(&limited), Some("RATE_LIMITED"));
    let other = app
        .graphql(Some(&service), invite, json!({ "who": "rl-dan" }))
        .await;
    assert_ne!(
        error_code(&other),
        Some("RATE_LIMITED"),
        "a backend acting for another customer is another bucket"
    );
    app.clock.advance(Duration::seconds(30));
    let again = app.graphql(Some(&ann), redeem, json!({})).await;
    assert_eq!(error_code(&again), Some("BAD_USER_INPUT"));
}
