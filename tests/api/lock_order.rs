//! One lock order, tested. Orders, refunds, hold releases, reviews, redemptions and
//! adjustments for the same two customers (a referrer and the friend she referred, each also
//! referring friends of their own), and rebuilds of the rollups beside them, run in parallel for
//! at least ten seconds and until they have done enough work. None may deadlock (PostgreSQL's
//! own count of deadlocks in the database stays where it was) and none may answer
//! `UNAVAILABLE` or `INTERNAL`: each either succeeds or refuses for a reason of the program.
//! And each path that writes for both sides, while it waits for the referrer (the older, lower
//! id), holds nothing of the friend: the one lock order of `customers::locks`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::{Value, json};

use crate::common::{TestApp, data, error_code};

const RUN_FOR: Duration = Duration::from_secs(10);
/// The work the writers must have done before they stop: on a loaded CI machine ten seconds
/// may not be enough for it, so they go on until it is done, up to `GIVE_UP_AFTER`.
const ENOUGH_ORDERS: usize = 21;
const ENOUGH_FRIENDS: usize = 11;
const GIVE_UP_AFTER: Duration = Duration::from_secs(90);

/// Refusals the program gives for reasons of its own rules; any other error fails the test.
const EXPECTED_REFUSALS: [&str; 3] = ["INSUFFICIENT_POINTS", "CONFLICT", "BAD_USER_INPUT"];

fn check(what: &str, response: &Value) {
    if let Some(code) = error_code(response) {
        assert!(
            EXPECTED_REFUSALS.contains(&code),
            "{what} answered {code}: {response}"
        );
    }
}

async fn deadlocks(app: &TestApp) -> i64 {
    let db = &app.state.db;
    if db.get_database_backend() != DbBackend::Postgres {
        return 0;
    }
    // Other backends report their counts when they go idle; give them the time to.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    db.execute_unprepared("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_of_the_same_two_customers_in_parallel_never_deadlock() {
    // The limits that protect the program from one caller are not what this test is about:
    // redemptions as fast as the locks allow pass 30 a minute (TANDEM_RATE_LIMIT_ACCOUNT).
    let app = TestApp::spawn_with(&[
        ("TANDEM_SIGNUP_IP_HOURLY_LIMIT", "100000"),
        ("TANDEM_RATE_LIMIT_ACCOUNT", "off"),
    ])
    .await;
    let mut campaign = crate::campaigns::points_campaign("Both sides");
    campaign["holdDays"] = json!(1);
    data(&app.create_campaign(campaign).await);
    let option = data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation { createRewardOption(input: { name: \"Treat\", pointsCost: 10, kind: FIXED_COUPON, amount: 100 }) { id } }",
            json!({}),
        )
        .await,
    )["createRewardOption"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Amy's friends share her address, so their referrals wait for a review.
    data(
        &app.register(
            json!({ "externalId": "amy", "email": "amy@example.com", "ip": "198.51.100.7" }),
        )
        .await,
    );
    data(&app.refer("amy", "ben", json!({})).await);
    let before = deadlocks(&app).await;
    let started = Instant::now();
    // Counted once written, so a refund names only orders that exist.
    let orders = AtomicUsize::new(0);
    let friends = AtomicUsize::new(0);
    let running = || {
        let elapsed = started.elapsed();
        let enough = orders.load(Ordering::SeqCst) >= ENOUGH_ORDERS
            && friends.load(Ordering::SeqCst) >= ENOUGH_FRIENDS;
        elapsed < GIVE_UP_AFTER && (elapsed < RUN_FOR || !enough)
    };

    let ordering = async {
        while running() {
            let n = orders.load(Ordering::SeqCst);
            let buyer = if n.is_multiple_of(2) { "ben" } else { "amy" };
            check(
                "an order",
                &app.record_order(&format!("o-{n}"), buyer, 5_000).await,
            );
            orders.store(n + 1, Ordering::SeqCst);
        }
    };
    let referring = async {
        while running() {
            let n = friends.load(Ordering::SeqCst);
            let (referrer, extra) = if n.is_multiple_of(2) {
                ("amy", json!({ "ip": "198.51.100.7" }))
            } else {
                ("ben", json!({}))
            };
            let friend = format!("friend-{n}");
            check("a signup", &app.refer(referrer, &friend, extra).await);
            check(
                "a friend's first order",
                &app.record_order(&format!("first-{n}"), &friend, 5_000)
                    .await,
            );
            friends.store(n + 1, Ordering::SeqCst);
        }
    };
    let refunding = async {
        let mut n: usize = 0;
        while running() {
            n += 1;
            let done = orders.load(Ordering::SeqCst);
            let made = friends.load(Ordering::SeqCst);
            if done > 1 {
                check(
                    "a refund",
                    &app.refund_order(&format!("o-{}", n % done), 700).await,
                );
            }
            if made > 1 {
                // Whole: the referral is reversed, which takes back the referrer's reward.
                check(
                    "a friend's refund",
                    &app.refund_order(&format!("first-{}", n % made), 5_000)
                        .await,
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let releasing = async {
        while running() {
            app.clock.advance(chrono::Duration::hours(1));
            app.run_scheduler().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let reviewing = async {
        let mut approve = true;
        while running() {
            let waiting = app
                .graphql(
                    Some(&app.admin_token()),
                    "{ referrals(flagged: true, first: 20) { edges { node { id status } } } }",
                    json!({}),
                )
                .await;
            let ids: Vec<String> = data(&waiting)["referrals"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|edge| {
                    matches!(
                        edge["node"]["status"].as_str(),
                        Some("PENDING" | "QUALIFIED")
                    )
                })
                .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned())
                .collect();
            for id in ids {
                approve = !approve;
                check(
                    "a review",
                    &app.graphql(
                        Some(&app.admin_token()),
                        "mutation($id: ID!, $approve: Boolean!) { reviewReferral(id: $id, approve: $approve) { status } }",
                        json!({ "id": id, "approve": approve }),
                    )
                    .await,
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let redeeming = async {
        let mut n: usize = 0;
        while running() {
            n += 1;
            let who = if n.is_multiple_of(2) { "amy" } else { "ben" };
            check(
                "a redemption",
                &app.graphql(
                    Some(&app.customer_token(who)),
                    "mutation($id: ID!) { redeemPoints(optionId: $id) { id } }",
                    json!({ "id": option }),
                )
                .await,
            );
            check(
                "an adjustment",
                &app.graphql(
                    Some(&app.admin_token()),
                    "mutation($c: String!, $d: Int!) { adjustPoints(customerExternalId: $c, delta: $d, reason: \"goodwill\") { delta } }",
                    json!({ "c": who, "d": if n.is_multiple_of(3) { -15 } else { 25 } }),
                )
                .await,
            );
        }
    };
    tokio::join!(
        ordering, referring, refunding, releasing, reviewing, redeeming
    );
    let orders = orders.load(Ordering::SeqCst);
    let friends = friends.load(Ordering::SeqCst);
    eprintln!(
        "lock order: {orders} orders, {friends} friends in {:?}",
        started.elapsed()
    );
    assert!(
        orders >= ENOUGH_ORDERS && friends >= ENOUGH_FRIENDS,
        "the writers ran ({orders} orders, {friends} friends)"
    );
    assert_eq!(
        deadlocks(&app).await,
        before,
        "deadlocks PostgreSQL detected"
    );
}

/// Whether another transaction can lock this customer's row at once (PostgreSQL).
async fn lockable_now(app: &TestApp, external_id: &str) -> bool {
    let txn = tandem::db::begin_write(&app.state.db).await.unwrap();
    txn.execute_unprepared("SET LOCAL lock_timeout = '200ms'")
        .await
        .unwrap();
    let locked = txn
        .execute_unprepared(&format!(
            "SELECT id FROM customers WHERE external_id = '{external_id}' FOR NO KEY UPDATE"
        ))
        .await
        .is_ok();
    txn.rollback().await.unwrap();
    locked
}

/// Runs `operation` while Amy's row is held, and tells whether Ben's row could be locked while
/// the operation waited.
async fn friend_free_while_waiting_for_amy(
    app: &TestApp,
    operation: impl std::future::Future<Output = Value>,
) -> bool {
    let amy = crate::common::hold_customer(app, "amy").await;
    let probe = async {
        // Long enough for the operation to reach its first lock and wait there.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let free = lockable_now(app, "ben").await;
        amy.commit().await.unwrap();
        free
    };
    let (response, ben_was_free) = tokio::join!(operation, probe);
    data(&response);
    ben_was_free
}

const WAITED_HOLDING_THE_FRIEND: &str = "waiting for the referrer's lock, it held the friend's: \
    a transaction locking the two the other way round would deadlock with it";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_friends_order_refund_and_review_lock_the_referrer_first() {
    let app = TestApp::spawn().await;
    if app.state.db.get_database_backend() != DbBackend::Postgres {
        // SQLite has one write lock for the whole database: there is no order to get wrong.
        return;
    }
    data(
        &app.create_campaign(crate::campaigns::points_campaign("Both sides"))
            .await,
    );
    // Amy registers first, so her id is the lower: every path must lock her before Ben. They
    // share an address, so the referral waits for a review.
    data(
        &app.register(
            json!({ "externalId": "amy", "email": "amy@example.com", "ip": "198.51.100.7" }),
        )
        .await,
    );
    let referral = data(
        &app.refer("amy", "ben", json!({ "ip": "198.51.100.7" }))
            .await,
    )["registerCustomer"]["referral"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = app.record_order("ben-1", "ben", 5_000);
    assert!(
        friend_free_while_waiting_for_amy(&app, order).await,
        "an order {WAITED_HOLDING_THE_FRIEND}"
    );
    let admin = app.admin_token();
    let review = app.graphql(
        Some(&admin),
        "mutation($id: ID!) { reviewReferral(id: $id, approve: true) { status } }",
        json!({ "id": referral }),
    );
    assert!(
        friend_free_while_waiting_for_amy(&app, review).await,
        "a review {WAITED_HOLDING_THE_FRIEND}"
    );
    let refund = app.refund_order("ben-1", 5_000);
    assert!(
        friend_free_while_waiting_for_amy(&app, refund).await,
        "a refund {WAITED_HOLDING_THE_FRIEND}"
    );
}
