//! The leaderboard's queue: orders, refunds and reversals queue their changes; readers and the
//! worker apply them. Whatever the interleaving, what the leaderboard holds once applied is what
//! the ledger and the referrals say.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::common::{TestApp, data};

/// The rows `sql` reads.
async fn rows(app: &TestApp, sql: &str) -> Vec<sea_orm::QueryResult> {
    let backend = app.state.db.get_database_backend();
    app.state
        .db
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .expect(sql)
}

/// Reads `sql` (two columns: a customer's id as text and a number) into a map, zeros left out.
async fn by_customer(app: &TestApp, sql: &str) -> BTreeMap<String, i64> {
    rows(app, sql)
        .await
        .iter()
        .map(|row| {
            let id: uuid::Uuid = row.try_get_by_index(0).expect("a customer id");
            let value: i64 = row.try_get_by_index(1).expect("a value");
            (id.to_string(), value)
        })
        .filter(|(_, value)| *value != 0)
        .collect()
}

/// A leaderboard row with a value: metric, customer, day (`None` for a total) and value.
type Cell = (String, String, Option<String>, i64);

/// Every leaderboard row with a value.
async fn cells(app: &TestApp) -> BTreeSet<Cell> {
    let sql = "SELECT metric, customer_id, day, value FROM leaderboard_days WHERE value <> 0 \
               UNION ALL SELECT metric, customer_id, NULL, value FROM leaderboard_totals \
               WHERE value <> 0";
    rows(app, sql)
        .await
        .iter()
        .map(|row| {
            let customer: uuid::Uuid = row.try_get_by_index(1).expect("a customer id");
            (
                row.try_get_by_index(0).expect("a metric"),
                customer.to_string(),
                row.try_get_by_index(2).expect("a day"),
                row.try_get_by_index(3).expect("a value"),
            )
        })
        .collect()
}

/// The leaderboard's rows, then the same after `tandem rebuild-rollups` recounted them.
async fn kept_and_rebuilt(app: &TestApp) -> (BTreeSet<Cell>, BTreeSet<Cell>) {
    // A ranking read applies what is queued.
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "{ leaderboard(metric: POINTS_EARNED) { value } }",
            json!({}),
        )
        .await,
    );
    let kept = cells(app).await;
    tandem::rollups::rebuild_beside_writes(&app.state.db, 2)
        .await
        .expect("a rebuild");
    (kept, cells(app).await)
}

/// A campaign paying the referrer 300 points and the friend a 5.00 coupon, from an order of
/// `min_order_amount`.
async fn points_for_friends(app: &TestApp, min_order_amount: i64) {
    data(
        &app.create_campaign(json!({
            "name": "Points for friends",
            "referrerReward": { "kind": "POINTS", "amount": 300 },
            "refereeReward": { "kind": "FIXED_COUPON", "amount": 500 },
            "minOrderAmount": min_order_amount,
        }))
        .await,
    );
}

#[tokio::test]
async fn the_leaderboard_applied_from_its_queue_equals_a_recount_of_the_ledger_and_the_referrals() {
    let app = TestApp::spawn().await;
    points_for_friends(&app, 2_000).await;
    let referrers = ["amy", "ben", "cal"];
    for referrer in referrers {
        data(
            &app.register_customer(referrer, &format!("{referrer}@example.com"))
                .await,
        );
        for k in 0..4 {
            data(
                &app.refer(referrer, &format!("{referrer}-friend-{k}"), json!({}))
                    .await,
            );
        }
    }
    let board = "{ leaderboard(metric: POINTS_EARNED, first: 100) { value } \
        successes: leaderboard(metric: SUCCESSFUL_REFERRALS, first: 100) { value } }";
    // Everyone at once: friends' first orders (which pay their referrer) and second orders, some
    // first orders refunded whole (the referral is reversed and the reward taken back), the
    // referrers' own orders and partial refunds, with readers and worker passes in between.
    let friends = referrers
        .iter()
        .flat_map(|referrer| (0..4).map(move |k| (format!("{referrer}-friend-{k}"), k)));
    let friend_work = friends.map(|(friend, k)| {
        let app = &app;
        async move {
            data(
                &app.record_order(&format!("{friend}-1"), &friend, 5_000)
                    .await,
            );
            data(
                &app.record_order(&format!("{friend}-2"), &friend, 3_000)
                    .await,
            );
            if k == 0 {
                data(&app.refund_order(&format!("{friend}-1"), 5_000).await);
            }
        }
    });
    let referrer_work = referrers.iter().map(|referrer| {
        let app = &app;
        async move {
            for n in 0..5 {
                let order = format!("{referrer}-own-{n}");
                data(&app.record_order(&order, referrer, 1_000 + 700 * n).await);
                if n % 2 == 1 {
                    data(&app.refund_order(&order, 400).await);
                }
            }
        }
    });
    let reading = async {
        for _ in 0..10 {
            data(
                &app.graphql(Some(&app.admin_token()), board, json!({}))
                    .await,
            );
            app.run_scheduler().await;
        }
    };
    tokio::join!(join_all(friend_work), join_all(referrer_work), reading);

    // A read applies what is still queued.
    let response = app
        .graphql(Some(&app.admin_token()), board, json!({}))
        .await;
    let points_board: i64 = data(&response)["leaderboard"]
        .as_array()
        .expect("a ranking")
        .iter()
        .map(|entry| entry["value"].as_i64().expect("a value"))
        .sum();
    let queued = by_customer(
        &app,
        "SELECT customer_id, CAST(COUNT(*) AS BIGINT) FROM leaderboard_queue GROUP BY customer_id",
    )
    .await;
    assert!(queued.is_empty(), "left in the queue: {queued:?}");

    let earned = by_customer(
        &app,
        "SELECT customer_id, CAST(SUM(delta) AS BIGINT) FROM points_ledger \
         WHERE reason NOT IN ('REDEMPTION', 'EXPIRY') GROUP BY customer_id",
    )
    .await;
    let totals = |metric: &str| {
        format!("SELECT customer_id, value FROM leaderboard_totals WHERE metric = '{metric}'")
    };
    let days = |metric: &str| {
        format!(
            "SELECT customer_id, CAST(SUM(value) AS BIGINT) FROM leaderboard_days \
             WHERE metric = '{metric}' GROUP BY customer_id"
        )
    };
    assert!(!earned.is_empty());
    assert_eq!(by_customer(&app, &totals("POINTS_EARNED")).await, earned);
    assert_eq!(by_customer(&app, &days("POINTS_EARNED")).await, earned);
    assert_eq!(points_board, earned.values().sum::<i64>());

    let successes = by_customer(
        &app,
        "SELECT referrer_id, CAST(COUNT(*) AS BIGINT) FROM referrals \
         WHERE status IN ('QUALIFIED', 'REWARDED') GROUP BY referrer_id",
    )
    .await;
    assert_eq!(
        successes.values().sum::<i64>(),
        9,
        "four friends each, one reversed"
    );
    assert_eq!(
        by_customer(&app, &totals("SUCCESSFUL_REFERRALS")).await,
        successes
    );
    assert_eq!(
        by_customer(&app, &days("SUCCESSFUL_REFERRALS")).await,
        successes
    );
    let board_successes: i64 = data(&response)["successes"]
        .as_array()
        .expect("a ranking")
        .iter()
        .map(|entry| entry["value"].as_i64().expect("a value"))
        .sum();
    assert_eq!(board_successes, 9);

    let (kept, rebuilt) = kept_and_rebuilt(&app).await;
    assert!(kept.len() > 20, "{kept:?}");
    assert_eq!(kept, rebuilt, "the queue's sums equal a recount");
}

#[tokio::test]
async fn a_flagged_referral_refused_at_review_leaves_the_successful_referrals() {
    let app = TestApp::spawn().await;
    points_for_friends(&app, 0).await;
    data(
        &app.register(
            json!({ "externalId": "ann", "email": "ann@example.com", "ip": "198.51.100.4" }),
        )
        .await,
    );
    let referred = app
        .refer("ann", "bob", json!({ "ip": "198.51.100.4" }))
        .await;
    let referral = &data(&referred)["registerCustomer"]["referral"];
    assert_eq!(referral["flagged"], true, "{referred}");
    let id = referral["id"].as_str().expect("an id").to_owned();
    data(&app.record_order("bob-1", "bob", 5_000).await);
    let successes = "{ leaderboard(metric: SUCCESSFUL_REFERRALS) { value } }";
    let before = app
        .graphql(Some(&app.admin_token()), successes, json!({}))
        .await;
    assert_eq!(
        data(&before)["leaderboard"],
        json!([{ "value": 1 }]),
        "a qualified referral waiting for review counts"
    );
    let refused = app
        .graphql(
            Some(&app.admin_token()),
            "mutation($id: ID!) { reviewReferral(id: $id, approve: false) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(&refused)["reviewReferral"]["status"], "REJECTED");
    let after = app
        .graphql(Some(&app.admin_token()), successes, json!({}))
        .await;
    assert_eq!(
        data(&after)["leaderboard"],
        json!([]),
        "a refused one does not"
    );
    let (kept, rebuilt) = kept_and_rebuilt(&app).await;
    assert_eq!(kept, rebuilt);
}
