//! `tandem seed-demo` writes through the rules, so its data keeps them; the same seed writes the
//! same story; a database with customers is refused.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use serde_json::json;
use tandem::entities::enums::RewardSide;
use tandem::entities::{cart, email_outbox, marketing_spend, order, referral, reward};
use tandem::jobs::demo::{DemoSize, seed};
use tandem::loyalty::audit::Account;

use crate::common::{TestApp, data};

const SIZE: DemoSize = DemoSize {
    customers: 60,
    orders: 150,
    seed: 7,
};

#[tokio::test]
async fn the_demo_covers_the_program_and_keeps_its_rules() {
    let app = TestApp::spawn().await;
    let report = seed(&app.state, &app.clock, SIZE).await.unwrap();
    let db = &app.state.db;
    assert_eq!(report.customers, 60);
    assert!(report.referred > 0 && report.orders > 0 && report.refunds > 0);
    assert!(report.carts > report.orders, "some carts are abandoned");
    let count_status = |status: &'static str| async move {
        referral::Entity::find()
            .filter(referral::Column::Status.eq(status))
            .count(db)
            .await
            .unwrap()
    };
    assert!(count_status("REWARDED").await > 0);
    assert!(
        count_status("REJECTED").await > 0,
        "some referrals are refused"
    );
    let flagged = referral::Entity::find()
        .filter(referral::Column::Flagged.eq(true))
        .count(db)
        .await
        .unwrap();
    assert!(flagged > 0);
    assert!(marketing_spend::Entity::find().count(db).await.unwrap() > 0);
    assert!(
        email_outbox::Entity::find()
            .filter(email_outbox::Column::Template.eq("cart_reminder"))
            .count(db)
            .await
            .unwrap()
            > 0
    );
    assert!(cart::Entity::find().count(db).await.unwrap() as usize == report.carts);

    // Every rewarded referral paid each side once; every customer's balance is what their ledger
    // holds, as the API reports it.
    for referral in referral::Entity::find()
        .filter(referral::Column::Status.eq("REWARDED"))
        .all(db)
        .await
        .unwrap()
    {
        let rewards = reward::Entity::find()
            .filter(reward::Column::ReferralId.eq(referral.id))
            .all(db)
            .await
            .unwrap();
        for side in [RewardSide::Referrer, RewardSide::Referee] {
            assert!(rewards.iter().filter(|r| r.side == side).count() <= 1);
        }
        assert!(rewards.iter().any(|r| r.side == RewardSide::Referee));
    }
    let response = app
        .graphql(
            Some(&app.admin_token()),
            "{ customers(first: 100) { edges { node { id externalId pointsBalance tier { name } } } } }",
            json!({}),
        )
        .await;
    let customers = data(&response)["customers"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(customers.len(), 60);
    let mut with_tier = 0;
    for edge in customers {
        let node = &edge["node"];
        let id: uuid::Uuid = node["id"].as_str().unwrap().parse().unwrap();
        let account = Account::load(db, id).await.unwrap();
        assert_eq!(node["pointsBalance"], account.balance(app.clock_now()));
        with_tier += usize::from(!node["tier"].is_null());
    }
    assert!(with_tier > 0, "someone reached a tier");
    let badges = app
        .graphql(
            Some(&app.customer_token("demo-00001")),
            "{ me { badges { badge { key } } } }",
            json!({}),
        )
        .await;
    assert!(data(&badges)["me"]["badges"].is_array());

    assert!(
        seed(&app.state, &app.clock, SIZE).await.is_err(),
        "a database with customers is refused"
    );

    // Writes the demo does not make: an order placed before the customer's others, its refund,
    // and a flagged referral refused by an admin.
    let backdated = app
        .record_order_with(json!({
            "externalId": "backdated-1", "customerExternalId": "demo-00001", "amount": 4_200,
            "currency": "USD",
            "placedAt": (app.clock_now() - chrono::Duration::days(390)).to_rfc3339(),
        }))
        .await;
    data(&backdated);
    data(&app.refund_order("backdated-1", 1_000).await);
    // An order wholly refunded, alone in its month: it leaves the kept orders and the months.
    data(
        &app.record_order_with(json!({
            "externalId": "backdated-2", "customerExternalId": "demo-00001", "amount": 900,
            "currency": "USD",
            "placedAt": (app.clock_now() - chrono::Duration::days(700)).to_rfc3339(),
        }))
        .await,
    );
    data(&app.refund_order("backdated-2", 900).await);
    if let Some(waiting) = referral::Entity::find()
        .filter(referral::Column::Flagged.eq(true))
        .filter(referral::Column::ReviewedAt.is_null())
        .filter(referral::Column::Status.is_in(["PENDING", "QUALIFIED"]))
        .one(db)
        .await
        .unwrap()
    {
        let refused = app
            .graphql(
                Some(&app.admin_token()),
                "mutation($id: ID!) { reviewReferral(id: $id, approve: false) { status } }",
                json!({ "id": waiting.id.to_string() }),
            )
            .await;
        assert_eq!(data(&refused)["reviewReferral"]["status"], "REJECTED");
    }
    let kept = rollups(db).await;
    let txn = tandem::db::begin_write(db).await.unwrap();
    tandem::rollups::rebuild(&txn).await.unwrap();
    txn.commit().await.unwrap();
    let rebuilt = rollups(db).await;
    assert_eq!(kept.0.len(), 60, "one rollup per customer");
    assert_eq!(
        kept.0, rebuilt.0,
        "customer rollups kept by the writes equal a rebuild"
    );
    assert_eq!(
        kept.1, rebuilt.1,
        "each order's previous order, kept and rebuilt"
    );
}

type CustomerRollup = (
    uuid::Uuid,
    String,
    i32,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    i64,
);
type PreviousOrder = (uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>);

async fn rollups(db: &DatabaseConnection) -> (Vec<CustomerRollup>, Vec<PreviousOrder>) {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(tandem::db::statement(
            backend,
            "SELECT customer_id, channel, CASE WHEN referred THEN 1 ELSE 0 END, orders, gross, \
               net, active_months, points_balance, kept_orders, order_months, points_owed \
             FROM customer_rollups ORDER BY customer_id",
            Vec::new(),
        ))
        .await
        .unwrap();
    let customers = rows
        .iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
                row.try_get_by_index(2).unwrap(),
                row.try_get_by_index(3).unwrap(),
                row.try_get_by_index(4).unwrap(),
                row.try_get_by_index(5).unwrap(),
                row.try_get_by_index(6).unwrap(),
                row.try_get_by_index(7).unwrap(),
                row.try_get_by_index(8).unwrap(),
                row.try_get_by_index(9).unwrap(),
                row.try_get_by_index(10).unwrap(),
            )
        })
        .collect();
    let orders = order::Entity::find()
        .order_by_asc(order::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|order| (order.id, order.previous_placed_at))
        .collect();
    (customers, orders)
}

#[tokio::test]
async fn the_same_seed_writes_the_same_story() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn().await;
    let small = DemoSize {
        customers: 20,
        orders: 40,
        seed: 3,
    };
    let a = seed(&first.state, &first.clock, small).await.unwrap();
    let b = seed(&second.state, &second.clock, small).await.unwrap();
    assert_eq!(a, b);
}

#[tokio::test]
async fn metrics_over_generated_data_keep_their_properties() {
    let app = TestApp::spawn().await;
    let end = app.clock_now();
    seed(&app.state, &app.clock, SIZE).await.unwrap();
    let from = (end - chrono::Duration::days(400)).to_rfc3339();
    let to = (end + chrono::Duration::days(1)).to_rfc3339();
    let counts = "newCustomers referredCustomers clicks referredSignups qualifiedReferrals rewardCost unpricedRewards";
    let rates = "referralRate clickToSignupRate signupToQualifiedRate participationRate";
    let response = app
        .graphql(
            Some(&app.admin_token()),
            &format!(
                "query($from: DateTime!, $to: DateTime!) {{
                    referralMetrics(from: $from, to: $to) {{ {counts} {rates}
                        series(interval: WEEK) {{ {counts} {rates} }} }}
                    customerLifetimeValue(from: $from, to: $to) {{
                        referred {{ customers }} nonReferred {{ customers }} }}
                    acquisitionCost(from: $from, to: $to) {{ newCustomers }}
                    retention(from: $from, to: $to) {{ customers months twelveMonthRetention }} }}"
            ),
            json!({ "from": from, "to": to }),
        )
        .await;
    let answer = data(&response);
    let metrics = &answer["referralMetrics"];
    let new_customers = metrics["newCustomers"].as_i64().unwrap();
    assert_eq!(new_customers, 60);
    let value = &answer["customerLifetimeValue"];
    assert_eq!(
        value["referred"]["customers"].as_i64().unwrap()
            + value["nonReferred"]["customers"].as_i64().unwrap(),
        new_customers,
        "referred + non-referred = new customers"
    );
    let by_channel: i64 = answer["acquisitionCost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["newCustomers"].as_i64().unwrap())
        .sum();
    assert_eq!(by_channel, new_customers);
    let cohorts: i64 = answer["retention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customers"].as_i64().unwrap())
        .sum();
    assert_eq!(cohorts, new_customers);
    let series = metrics["series"].as_array().unwrap();
    for count in counts.split(' ') {
        let sum: i64 = series.iter().map(|p| p[count].as_i64().unwrap()).sum();
        assert_eq!(json!(sum), metrics[count], "{count}");
    }
    let shares = answer["retention"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            let mut all: Vec<f64> = c["months"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_f64().unwrap())
                .collect();
            all.push(c["twelveMonthRetention"].as_f64().unwrap());
            all
        })
        .collect::<Vec<_>>();
    for point in series.iter().chain(std::iter::once(metrics)) {
        for rate in rates.split(' ') {
            let value = point[rate].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&value), "{rate} {value}");
        }
    }
    assert!(shares.iter().all(|s| (0.0..=1.0).contains(s)));
    assert!(metrics["referredCustomers"].as_i64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_beside_live_orders_and_adjustments_loses_none_of_them() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    for n in 0..30 {
        data(
            &app.register_customer(&format!("live-{n}"), &format!("live-{n}@example.com"))
                .await,
        );
    }
    let admin = app.admin_token();
    let writes = futures::future::join_all((0..30).map(|n| {
        let (app, admin) = (&app, &admin);
        async move {
            let customer = format!("live-{n}");
            for k in 0..4 {
                data(
                    &app.record_order(&format!("live-{n}-{k}"), &customer, 1_000 + k)
                        .await,
                );
                data(
                    &app.graphql(
                        Some(admin),
                        "mutation($who: String!) { adjustPoints(customerExternalId: $who, delta: 3, reason: \"goodwill\") { delta } }",
                        json!({ "who": customer }),
                    )
                    .await,
                );
            }
        }
    }));
    let rebuilds = async {
        let mut rebuilt = 0;
        for _ in 0..6 {
            rebuilt += tandem::rollups::rebuild_beside_writes(db, 4).await.unwrap();
        }
        rebuilt
    };
    let (_, rebuilt) = futures::future::join(writes, rebuilds).await;
    assert_eq!(rebuilt, 6 * 30, "every pass rebuilt every customer");
    let kept = rollups(db).await;
    let txn = tandem::db::begin_write(db).await.unwrap();
    tandem::rollups::rebuild(&txn).await.unwrap();
    txn.commit().await.unwrap();
    let from_scratch = rollups(db).await;
    assert_eq!(kept.0.len(), 30);
    assert_eq!(
        kept.0, from_scratch.0,
        "no write was lost to a rebuild running beside it"
    );
    assert_eq!(kept.1, from_scratch.1);
}
