//! The ledger-equals-balance property: random sequences of orders, refunds, redemptions,
//! adjustments, clock moves and expiry passes, run through the API and through a small model of
//! the policy written here from the rules in docs/loyalty.md. After every step the balance and the
//! pending points the API reports equal the model's, the ledger's sum equals the lots'
//! remainders less the debt, and every kept value (each entry's `remaining`, the rollup's points
//! held, lifetime points and what debits owe) equals its recomputation from the whole ledger.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use tandem::entities::points_ledger_entry;
use tandem::loyalty::audit::Account;
use tandem::loyalty::balance;

use crate::common::{TestApp, data};

/// A small deterministic generator, so a failing sequence can be replayed from its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Lot {
    order: Option<usize>,
    available: DateTime<Utc>,
    expires: DateTime<Utc>,
    remaining: i64,
}

struct Order {
    amount: i64,
    refunded: i64,
    points: i64,
    taken: i64,
}

#[derive(Default)]
struct Model {
    lots: Vec<Lot>,
    orders: Vec<Order>,
    debt: i64,
}

const PENDING_DAYS: i64 = 5;
const EXPIRE_DAYS: i64 = 30;

impl Model {
    fn spendable(lot: &Lot, now: DateTime<Utc>) -> bool {
        lot.available <= now && lot.expires > now
    }

    fn balance(&self, now: DateTime<Utc>) -> i64 {
        let lots: i64 = self
            .lots
            .iter()
            .filter(|l| Self::spendable(l, now))
            .map(|l| l.remaining)
            .sum();
        lots - self.debt
    }

    fn pending(&self, now: DateTime<Utc>) -> i64 {
        self.lots
            .iter()
            .filter(|l| l.available > now && l.expires > now)
            .map(|l| l.remaining)
            .sum()
    }

    fn credit(&mut self, now: DateTime<Utc>, points: i64, pending: bool, order: Option<usize>) {
        let paid = self.debt.min(points);
        self.debt -= paid;
        let available = if pending {
            now + Duration::days(PENDING_DAYS)
        } else {
            now
        };
        self.lots.push(Lot {
            order,
            available,
            expires: now + Duration::days(EXPIRE_DAYS),
            remaining: points - paid,
        });
    }

    /// Takes `amount` from `first` (any state), then spendable lots oldest first, then debt.
    fn take(&mut self, now: DateTime<Utc>, mut amount: i64, first: Option<usize>) {
        if let Some(i) = first {
            let taken = self.lots[i].remaining.min(amount);
            self.lots[i].remaining -= taken;
            amount -= taken;
        }
        for lot in self.lots.iter_mut().filter(|l| Self::spendable(l, now)) {
            let taken = lot.remaining.min(amount);
            lot.remaining -= taken;
            amount -= taken;
        }
        self.debt += amount;
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        for lot in self.lots.iter_mut().filter(|l| l.expires <= now) {
            lot.remaining = 0;
        }
    }
}

#[tokio::test]
async fn the_balance_always_equals_what_the_ledger_and_the_policy_say() {
    let app = TestApp::spawn().await;
    data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation { updateProgramSettings(input: { pointsExpireAfterDays: 30, pointsPendingDays: 5 }) { pointsPerUnit } }",
            json!({}),
        )
        .await,
    );
    let option = data(
        &app.graphql(
            Some(&app.admin_token()),
            "mutation { createRewardOption(input: { name: \"Coupon\", pointsCost: 40, kind: FIXED_COUPON, amount: 500 }) { id } }",
            json!({}),
        )
        .await,
    )["createRewardOption"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let adjust = "mutation($c: String!, $d: Int!) { adjustPoints(customerExternalId: $c, delta: $d, reason: \"test\") { delta } }";
    for seed in 1..=8u64 {
        let customer = format!("c{seed}");
        app.register_customer(&customer, &format!("{customer}@example.com"))
            .await;
        let mut random = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut model = Model::default();
        for step in 0..25 {
            let now = app.clock_now();
            let what = random.below(7);
            match what {
                0 | 1 => {
                    let amount = 100 + random.below(20_000) as i64;
                    let id = format!("{customer}-o{}", model.orders.len());
                    data(&app.record_order(&id, &customer, amount).await);
                    let points = amount / 100;
                    model.orders.push(Order {
                        amount,
                        refunded: 0,
                        points,
                        taken: 0,
                    });
                    model.credit(now, points, true, Some(model.orders.len() - 1));
                }
                2 if !model.orders.is_empty() => {
                    let index = random.below(model.orders.len() as u64) as usize;
                    let order = &model.orders[index];
                    let left = order.amount - order.refunded;
                    if left > 0 {
                        let amount = 1 + random.below(left as u64) as i64;
                        data(
                            &app.refund_order(&format!("{customer}-o{index}"), amount)
                                .await,
                        );
                        let order = &mut model.orders[index];
                        order.refunded += amount;
                        let due = order.points * order.refunded / order.amount;
                        let take = due - order.taken;
                        order.taken = due;
                        if take > 0 {
                            let lot = model.lots.iter().position(|l| l.order == Some(index));
                            model.take(now, take, lot);
                        }
                    }
                }
                3 => {
                    let response = app
                        .graphql(
                            Some(&app.customer_token(&customer)),
                            "mutation($id: ID!) { redeemPoints(optionId: $id) { id } }",
                            json!({ "id": option }),
                        )
                        .await;
                    if model.balance(now) >= 40 {
                        data(&response);
                        model.take(now, 40, None);
                    } else {
                        crate::common::assert_error(&response, "INSUFFICIENT_POINTS");
                    }
                }
                4 => {
                    let delta = random.below(120) as i64 - 60;
                    if delta != 0 {
                        data(
                            &app.graphql(
                                Some(&app.admin_token()),
                                adjust,
                                json!({ "c": customer, "d": delta }),
                            )
                            .await,
                        );
                        if delta > 0 {
                            model.credit(now, delta, false, None);
                        } else {
                            model.take(now, -delta, None);
                        }
                    }
                }
                5 => app
                    .clock
                    .advance(Duration::days(random.below(20) as i64 + 1)),
                _ => {
                    app.run_scheduler().await;
                    model.expire(now);
                }
            }
            let now = app.clock_now();
            let me = data(
                &app.graphql(
                    Some(&app.customer_token(&customer)),
                    "{ me { id pointsBalance pendingPoints } }",
                    json!({}),
                )
                .await,
            )["me"]
                .clone();
            let context = format!("seed {seed}, step {step}, action {what}");
            assert_eq!(me["pointsBalance"], model.balance(now), "{context}");
            assert_eq!(me["pendingPoints"], model.pending(now), "{context}");
            let customer_id: uuid::Uuid = me["id"].as_str().unwrap().parse().unwrap();
            let ledger: i64 = points_ledger_entry::Entity::find()
                .filter(points_ledger_entry::Column::CustomerId.eq(customer_id))
                .all(&app.state.db)
                .await
                .unwrap()
                .iter()
                .map(|e| e.delta)
                .sum();
            let remainders: i64 = model.lots.iter().map(|l| l.remaining).sum();
            assert_eq!(ledger, remainders - model.debt, "{context}");
            assert_kept_values_equal_the_history(&app, customer_id, &context).await;
        }
    }
}

/// Each entry's `remaining` and the customer's kept points equal what the whole ledger and its
/// consumptions say.
async fn assert_kept_values_equal_the_history(
    app: &TestApp,
    customer_id: uuid::Uuid,
    context: &str,
) {
    let db = &app.state.db;
    let now = app.clock_now();
    let account = Account::load(db, customer_id).await.unwrap();
    let lots: std::collections::HashMap<uuid::Uuid, i64> = account
        .open_lots()
        .into_iter()
        .map(|lot| (lot.entry.id, lot.remaining))
        .collect();
    let debts: std::collections::HashMap<uuid::Uuid, i64> = account.debts().into_iter().collect();
    for entry in &account.entries {
        let recomputed = if entry.delta > 0 {
            lots.get(&entry.id).copied().unwrap_or(0)
        } else {
            debts.get(&entry.id).copied().unwrap_or(0)
        };
        assert_eq!(
            entry.remaining, recomputed,
            "{context}: what is open of entry {} ({:?} {})",
            entry.id, entry.reason, entry.delta
        );
    }
    let kept = balance::of_customer(db, customer_id, now).await.unwrap();
    assert_eq!(
        kept,
        balance::recomputed(&account, now),
        "{context}: kept points"
    );
    let rollup = tandem::rollups::kept(db, customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rollup.points_lifetime, rollup.points_owed),
        (account.lifetime(None), debts.values().sum::<i64>()),
        "{context}: kept lifetime points and what debits owe"
    );
}
