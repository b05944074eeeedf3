//! The cart-abandonment sequence: each stage once, stopped by a purchase, an empty cart or an
//! unsubscribe, only with consent, at most one sequence per cooldown; time moves with the clock.

use chrono::Duration;
use serde_json::{Value, json};

use crate::common::smtp::{Received, SmtpServer};
use crate::common::{TestApp, assert_error, data};

const UPSERT: &str =
    "mutation($input: CartInput!) { upsertCart(input: $input) { id status stage nextStageAt } }";

async fn shop(consent: bool) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(&[("TANDEM_SMTP_URL", url.as_str())]).await;
    data(
        &app.register(json!({
            "externalId": "ann",
            "email": "ann@example.com",
            "name": "Ann Lee",
            "marketingConsent": consent,
        }))
        .await,
    );
    (app, smtp)
}

fn item(product: &str, price: i64) -> Value {
    json!({
        "productId": product,
        "name": format!("Product {product}"),
        "unitPrice": price,
        "quantity": 2,
        "imageUrl": format!("https://cdn.shop.example/{product}.jpg"),
        "url": format!("https://shop.example/p/{product}"),
    })
}

async fn upsert(app: &TestApp, cart: &str, items: Vec<Value>) -> Value {
    let response = app
        .graphql(
            Some(&app.service_token()),
            UPSERT,
            json!({ "input": { "externalId": cart, "customerExternalId": "ann", "items": items, "checkoutUrl": format!("https://shop.example/checkout/{cart}") } }),
        )
        .await;
    data(&response)["upsertCart"].clone()
}

/// Moves the clock, runs the scheduler and the delivery worker, and returns what arrived.
async fn after(app: &TestApp, smtp: &SmtpServer, by: Duration) -> Vec<Received> {
    let before = smtp.received().len();
    app.clock.advance(by);
    app.run_scheduler().await;
    app.deliver_emails().await;
    smtp.received()[before..].to_vec()
}

fn subjects(received: &[Received]) -> Vec<String> {
    received.iter().map(Received::subject).collect()
}

#[tokio::test]
async fn an_abandoned_cart_gets_reminder_discount_and_last_call_once_each() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;

    assert!(after(&app, &smtp, Duration::minutes(59)).await.is_empty());
    let reminder = after(&app, &smtp, Duration::minutes(2)).await;
    assert_eq!(subjects(&reminder), ["You left something in your cart"]);
    let email = &reminder[0];
    for part in [email.text(), email.html()] {
        assert!(part.contains("Product mug"), "{part}");
        assert!(part.contains("12.50 USD"));
        assert!(part.contains("https://shop.example/checkout/cart-1"));
        assert!(part.contains("0 points"));
        assert!(part.contains("https://shop.example/r/"));
    }
    assert!(email.html().contains("https://cdn.shop.example/mug.jpg"));
    assert!(email.header("List-Unsubscribe").is_some());
    assert!(
        after(&app, &smtp, Duration::hours(1)).await.is_empty(),
        "the reminder goes once"
    );

    let discount = after(&app, &smtp, Duration::hours(22)).await;
    assert_eq!(subjects(&discount), ["10% off what is in your cart"]);
    let coupon = discount[0]
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("Your code (one use): ").map(str::to_owned))
        .expect("a coupon code");
    let redeemed = app.redeem(&coupon).await;
    assert_eq!(data(&redeemed)["redeemCoupon"]["status"], "REDEEMED");
    assert_error(&app.redeem(&coupon).await, "CONFLICT");

    let last_call = after(&app, &smtp, Duration::hours(48)).await;
    assert_eq!(
        subjects(&last_call),
        ["Last call: your cart is about to expire"]
    );
    assert!(
        after(&app, &smtp, Duration::days(30)).await.is_empty(),
        "three stages at most"
    );
}

#[tokio::test]
async fn a_purchase_stops_the_sequence() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    assert_eq!(after(&app, &smtp, Duration::minutes(61)).await.len(), 1);
    data(&app.record_order("o-1", "ann", 2500).await);
    assert!(after(&app, &smtp, Duration::days(5)).await.is_empty());
}

#[tokio::test]
async fn an_order_naming_the_cart_converts_it() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    app.clock.advance(Duration::minutes(10));
    data(
        &app.record_order_with(json!({
            "externalId": "o-1", "customerExternalId": "ann", "amount": 2500, "currency": "USD",
            "cartExternalId": "cart-1",
            "placedAt": (app.clock_now() - Duration::minutes(20)).to_rfc3339(),
        }))
        .await,
    );
    assert!(after(&app, &smtp, Duration::days(5)).await.is_empty());
}

#[tokio::test]
async fn an_order_between_the_scan_and_the_send_cancels_the_email() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    app.clock.advance(Duration::minutes(61));
    assert_eq!(app.run_scheduler().await.cart_emails, 1);
    data(&app.record_order("o-1", "ann", 2500).await);
    let report = app.deliver_emails().await;
    assert_eq!(report.sent, 0);
    assert!(smtp.received().is_empty());
    let cancelled = app.email_deliveries().await;
    assert_eq!(cancelled[0]["status"], "CANCELLED");
    assert!(
        cancelled[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("bought")
    );
}

#[tokio::test]
async fn customers_without_consent_get_no_cart_email() {
    let (app, smtp) = shop(false).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    assert!(after(&app, &smtp, Duration::days(5)).await.is_empty());
    assert!(app.email_deliveries().await.is_empty());
}

#[tokio::test]
async fn unsubscribing_stops_the_sequence() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    let reminder = after(&app, &smtp, Duration::minutes(61)).await;
    let link = reminder[0].header("List-Unsubscribe").unwrap();
    let token = link
        .trim_end_matches('>')
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let response = app
        .client
        .post(format!("{}/unsubscribe?token={token}", app.address))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(after(&app, &smtp, Duration::days(5)).await.is_empty());
}

#[tokio::test]
async fn an_update_restarts_the_clock_but_never_resends_a_stage() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    assert_eq!(after(&app, &smtp, Duration::minutes(61)).await.len(), 1);
    upsert(&app, "cart-1", vec![item("mug", 1250), item("tea", 800)]).await;
    assert!(
        after(&app, &smtp, Duration::hours(2)).await.is_empty(),
        "no second reminder"
    );
    assert!(
        after(&app, &smtp, Duration::hours(21)).await.is_empty(),
        "the discount waits 24h from the change"
    );
    let discount = after(&app, &smtp, Duration::hours(2)).await;
    assert_eq!(subjects(&discount), ["10% off what is in your cart"]);
    assert!(discount[0].text().contains("Product tea"));
}

#[tokio::test]
async fn an_emptied_cart_stops_the_sequence() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    let emptied = upsert(&app, "cart-1", vec![]).await;
    assert_eq!(emptied["status"], "EMPTIED");
    assert!(after(&app, &smtp, Duration::days(5)).await.is_empty());
}

#[tokio::test]
async fn a_customer_gets_one_sequence_per_cooldown() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    assert_eq!(after(&app, &smtp, Duration::minutes(61)).await.len(), 1);
    upsert(&app, "cart-2", vec![item("tea", 800)]).await;
    let second = after(&app, &smtp, Duration::minutes(61)).await;
    assert!(second.is_empty(), "{:?}", subjects(&second));

    upsert(&app, "cart-1", vec![]).await;
    app.clock.advance(Duration::days(8));
    upsert(&app, "cart-3", vec![item("pot", 3000)]).await;
    let third = after(&app, &smtp, Duration::minutes(61)).await;
    assert_eq!(
        subjects(&third),
        ["You left something in your cart"],
        "after the cooldown"
    );
    assert!(third[0].text().contains("checkout/cart-3"));
}

#[tokio::test]
async fn recommendations_come_from_views_then_co_purchases_then_best_sellers_never_from_the_cart() {
    let (app, smtp) = shop(true).await;
    app.register(json!({ "externalId": "zoe", "email": "zoe@example.com" }))
        .await;
    // Other shoppers: tea is bought with mugs; spoons sell best.
    let line = |product: &str, quantity: i64| json!({ "productId": product, "name": format!("Product {product}"), "unitPrice": 500, "quantity": quantity });
    for (i, items) in [
        vec![line("mug", 1), line("tea", 1)],
        vec![line("mug", 1), line("tea", 1)],
        vec![line("spoon", 9)],
        vec![line("spoon", 9), line("bowl", 1)],
    ]
    .into_iter()
    .enumerate()
    {
        data(&app.record_order_with(json!({ "externalId": format!("z-{i}"), "customerExternalId": "zoe", "amount": 1000, "currency": "USD", "items": items })).await);
    }
    let view = "mutation($input: ProductViewInput!) { trackProductView(input: $input) }";
    for product in ["kettle", "mug"] {
        let response = app
            .graphql(
                Some(&app.service_token()),
                view,
                json!({ "input": { "customerExternalId": "ann", "productId": product, "name": format!("Product {product}"), "unitPrice": 4200, "url": format!("https://shop.example/p/{product}") } }),
            )
            .await;
        assert_eq!(data(&response)["trackProductView"], true);
    }
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    let reminder = after(&app, &smtp, Duration::minutes(61)).await;
    let text = reminder[0].text();
    let suggested: Vec<&str> = text
        .split("You might also like:")
        .nth(1)
        .expect("recommendations")
        .lines()
        .filter_map(|l| l.strip_prefix("- Product "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(suggested, ["kettle", "tea", "spoon"], "{text}");
}

#[tokio::test]
async fn a_cart_for_an_unknown_customer_or_with_bad_items_is_refused() {
    let (app, _smtp) = shop(true).await;
    let response = app
        .graphql(
            Some(&app.service_token()),
            UPSERT,
            json!({ "input": { "externalId": "c", "customerExternalId": "nobody", "items": [item("mug", 100)] } }),
        )
        .await;
    assert_error(&response, "NOT_FOUND");
    let mut bad = item("mug", 100);
    bad["quantity"] = json!(0);
    let response = app
        .graphql(
            Some(&app.service_token()),
            UPSERT,
            json!({ "input": { "externalId": "c", "customerExternalId": "ann", "items": [bad] } }),
        )
        .await;
    assert_error(&response, "BAD_USER_INPUT");
}

async fn order_naming(app: &TestApp, order: &str, cart: &str) -> Value {
    let response = app
        .record_order_with(json!({
            "externalId": order,
            "customerExternalId": "ann",
            "amount": 2500,
            "currency": "USD",
            "cartExternalId": cart,
        }))
        .await;
    data(&response)["recordOrder"].clone()
}

#[tokio::test]
async fn a_cart_that_arrives_after_the_order_naming_it_is_stored_converted_and_gets_no_email() {
    let (app, smtp) = shop(true).await;
    order_naming(&app, "o-1", "cart-1").await;
    app.clock.advance(Duration::seconds(30));
    let cart = upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    assert_eq!(cart["status"], "CONVERTED");
    assert_eq!(cart["nextStageAt"], Value::Null);
    assert!(after(&app, &smtp, Duration::days(5)).await.is_empty());
}

#[tokio::test]
async fn a_late_retry_of_a_converted_cart_answers_it_unchanged() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    order_naming(&app, "o-1", "cart-1").await;
    app.clock.advance(Duration::minutes(5));
    let retried = upsert(&app, "cart-1", vec![item("mug", 1250), item("tea", 800)]).await;
    assert_eq!(retried["status"], "CONVERTED");
    let totals = app
        .graphql(
            Some(&app.service_token()),
            "mutation($input: CartInput!) { upsertCart(input: $input) { total items { productId } } }",
            json!({ "input": { "externalId": "cart-1", "customerExternalId": "ann", "items": [item("tea", 800)] } }),
        )
        .await;
    assert_eq!(
        data(&totals)["upsertCart"],
        json!({ "total": 2500, "items": [{ "productId": "mug" }] }),
        "the bought items stay"
    );
    assert!(after(&app, &smtp, Duration::days(5)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cart_writes_racing_their_orders_leave_every_cart_converted() {
    let (app, smtp) = shop(true).await;
    let carts: Vec<String> = (0..12).map(|i| format!("cart-{i}")).collect();
    futures::future::join_all(carts.iter().enumerate().flat_map(|(i, cart)| {
        let app = &app;
        let write: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
            Box::pin(async move {
                upsert(app, cart, vec![item("mug", 1250)]).await;
            });
        let order: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
            Box::pin(async move {
                order_naming(app, &format!("o-{i}"), cart).await;
            });
        [write, order]
    }))
    .await;
    for cart in &carts {
        let again = upsert(&app, cart, vec![item("mug", 1250)]).await;
        assert_eq!(again["status"], "CONVERTED", "{cart}");
    }
    assert!(after(&app, &smtp, Duration::days(5)).await.is_empty());
}

/// Records an order for ann stamped `minutes` before Tandem's clock, as a shop whose clock lags.
async fn order_placed_minutes_ago(app: &TestApp, minutes: i64) {
    let placed_at = (app.clock_now() - Duration::minutes(minutes)).to_rfc3339();
    data(
        &app.record_order_with(json!({
            "externalId": "o-1",
            "customerExternalId": "ann",
            "amount": 2500,
            "currency": "USD",
            "placedAt": placed_at,
        }))
        .await,
    );
}

#[tokio::test]
async fn an_order_stamped_within_the_clock_skew_before_the_carts_last_change_stops_it() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    order_placed_minutes_ago(&app, 3).await;
    assert!(
        after(&app, &smtp, Duration::days(5)).await.is_empty(),
        "3 minutes behind is within the default 10-minute skew"
    );
}

#[tokio::test]
async fn an_order_stamped_well_before_the_carts_last_change_does_not_stop_it() {
    let (app, smtp) = shop(true).await;
    upsert(&app, "cart-1", vec![item("mug", 1250)]).await;
    order_placed_minutes_ago(&app, 30).await;
    assert_eq!(after(&app, &smtp, Duration::minutes(61)).await.len(), 1);
}

#[tokio::test]
async fn poisoned_orders_and_carts_do_not_stop_a_healthy_carts_email() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
    use tandem::entities::{cart, order_line};
    let (app, smtp) = shop(true).await;
    // Quantities near 2^63, stored before inputs were bounded: their sum overflows on SQLite.
    for order in ["o-1", "o-2"] {
        data(
            &app.record_order_with(json!({
                "externalId": order,
                "customerExternalId": "ann",
                "amount": 2500,
                "currency": "USD",
                "items": [{ "productId": "big", "unitPrice": 1, "quantity": 1 }],
            }))
            .await,
        );
    }
    app.clock.advance(Duration::minutes(20));
    for line in order_line::Entity::find().all(&app.state.db).await.unwrap() {
        let mut line = line.into_active_model();
        line.quantity = Set(i64::MAX / 2 + 1);
        line.update(&app.state.db).await.unwrap();
    }
    // A cart whose stale next_stage_at points past the last stage.
    let stale = upsert(&app, "stale", vec![item("tea", 800)]).await;
    let stale_id: uuid::Uuid = stale["id"].as_str().unwrap().parse().unwrap();
    let mut row = cart::Entity::find_by_id(stale_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    row.stage = Set(3);
    row.update(&app.state.db).await.unwrap();

    let healthy = data(
        &app.register(json!({
            "externalId": "bea",
            "email": "bea@example.com",
            "name": "Bea",
            "marketingConsent": true,
        }))
        .await,
    )
    .clone();
    assert!(healthy["registerCustomer"]["customer"]["id"].is_string());
    let response = app
        .graphql(
            Some(&app.service_token()),
            UPSERT,
            json!({ "input": { "externalId": "healthy", "customerExternalId": "bea", "items": [item("mug", 1250)] } }),
        )
        .await;
    data(&response);

    let arrived = after(&app, &smtp, Duration::minutes(61)).await;
    let to: Vec<String> = arrived.iter().map(|r| r.to.join(",")).collect();
    assert!(to.iter().any(|t| t.contains("bea@example.com")), "{to:?}");
    app.assert_still_serves().await;
    let report = app.run_scheduler().await;
    assert_eq!(report.cart_emails, 0, "the scheduler keeps running");
}
