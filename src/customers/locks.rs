//! The one lock order between customers.
//!
//! Every writer of a customer's points, rollup, tier or badges holds that customer's row lock
//! (`service::lock`). A transaction that may write for more than one customer takes all of
//! their locks first, in one statement, in ascending id: a friend's order or refund (which may
//! pay or take back their referrer's reward), a review and a hold release (both sides of a
//! referral), a tier's removal (its members), and `tandem rebuild-rollups` (a batch of
//! customers). Any later lock of one of them in the same transaction finds it held. After the
//! customers come a referral's rewards, then the referral itself.
//!
//! Two transactions that lock sets of customers this way cannot wait for each other in a
//! cycle: each waits only for a row with a higher id than every row it holds.

use sea_orm::sea_query::{LockType, Query, SimpleExpr, UnionType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashMap;

use uuid::Uuid;

use crate::customers::service::not_found;
use crate::entities::enums::ReferralStatus;
use crate::entities::{customer, points_ledger_entry, referral};
use crate::error::{AppError, DbContext};
use crate::rollups::{self, Change, Kept, Rollup};

/// The customers whose row locks a transaction holds, as their rows read when locked: what the
/// functions here return, and what every writer of a customer's points, tier or badges asks
/// for instead of locking again. Only this module makes one.
#[derive(Debug)]
pub struct Held {
    rows: Vec<customer::Model>,
    /// Whether the lock took the referrers of the customers it names too.
    with_referrers: bool,
    /// The held customers' rollups as this transaction changes them: read with the first change
    /// or question (while the locks are held nobody else writes them).
    rollups: tokio::sync::Mutex<HeldRollups>,
}

#[derive(Debug, Default)]
struct HeldRollups {
    /// `None` until read; a customer without a rollup row is missing.
    rows: Option<HashMap<Uuid, Rollup>>,
    /// Whether changes wait for [`Held::write_rollups`] instead of being written at once.
    deferred: bool,
    /// Whether new ledger credits wait too (`loyalty::ledger::write_deferred`).
    credits_deferred: bool,
    /// The credits waiting, in the order they were made.
    credits: Vec<points_ledger_entry::Model>,
}

impl Held {
    /// The held row of customer `id`; an internal error when this transaction does not hold it
    /// (a writer reached without taking the lock first is a bug, not a race to lose).
    pub fn customer(&self, id: Uuid) -> Result<&customer::Model, AppError> {
        self.rows.iter().find(|c| c.id == id).ok_or_else(|| {
            AppError::internal(
                "writing for a customer",
                format!("customer {id} is not locked by this transaction"),
            )
        })
    }

    /// Whether the lock took a customer who referred customer `id`, when it took referrers too
    /// (`None` when it did not; an order's lock takes only the referrer of a PENDING referral). A referral that can still qualify or be reversed always has
    /// another customer as its referrer (a self-referral is rejected when it is made), and that
    /// customer's row is locked with the friend's.
    pub fn has_referrer(&self, id: Uuid) -> Option<bool> {
        self.with_referrers
            .then(|| self.rows.iter().any(|c| c.id != id))
    }

    /// Every held row, ascending by id.
    pub fn rows(&self) -> &[customer::Model] {
        &self.rows
    }

    /// Applies `change` to customer `id`'s rollup and returns the kept measures it leaves
    /// (`None` without a rollup row, which is then left alone). The change is written at once,
    /// unless this transaction deferred its rollup writes.
    pub async fn change_rollup(
        &self,
        txn: &impl ConnectionTrait,
        id: Uuid,
        change: Change,
    ) -> Result<Option<Kept>, AppError> {
        self.customer(id)?;
        let mut state = self.rollups.lock().await;
        let rows = self.read_rollups(txn, &mut state).await?;
        let Some(rollup) = rows.get_mut(&id) else {
            rollups::missing_row("changing a customer's rollup");
            return Ok(None);
        };
        let kept = rollup.apply(change);
        if !state.deferred {
            self.write(txn, &mut state).await?;
        }
        Ok(Some(kept))
    }

    /// The kept measures of customer `id` as this transaction leaves them so far; `None`
    /// without a rollup row.
    pub async fn kept(
        &self,
        txn: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Option<Kept>, AppError> {
        self.customer(id)?;
        let mut state = self.rollups.lock().await;
        let rows = self.read_rollups(txn, &mut state).await?;
        Ok(rows.get(&id).map(Rollup::kept))
    }

    /// The keys of the badges customer `id` holds, as read with the rollups and as this
    /// transaction awards more ([`Held::badge_awarded`]); `None` without a rollup row.
    pub async fn badges(
        &self,
        txn: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Option<Vec<String>>, AppError> {
        self.customer(id)?;
        let mut state = self.rollups.lock().await;
        let rows = self.read_rollups(txn, &mut state).await?;
        Ok(rows.get(&id).map(|rollup| rollup.badges().to_vec()))
    }

    /// Notes that this transaction awarded customer `id` the badge `key`.
    pub async fn badge_awarded(&self, id: Uuid, key: &str) {
        if let Some(rollup) = self
            .rollups
            .lock()
            .await
            .rows
            .as_mut()
            .and_then(|rows| rows.get_mut(&id))
        {
            rollup.badge_awarded(key);
        }
    }

    /// From now on rollup changes wait for [`Held::write_rollups`], which the workflow calls
    /// once before it commits: one statement for every change of every held customer.
    pub async fn defer_rollup_writes(&self) {
        self.rollups.lock().await.deferred = true;
    }

    /// From now on new ledger credits wait for `loyalty::ledger::write_deferred`, which the
    /// workflow calls once before it commits. Only a workflow whose event is new by a unique key
    /// of its own (an order, by its externalId) may: a waiting credit cannot tell a replay.
    pub async fn defer_credits(&self) {
        self.rollups.lock().await.credits_deferred = true;
    }

    /// Keeps `entry` for `loyalty::ledger::write_deferred` when this transaction defers credits
    /// and it is one; returns whether it was kept.
    pub async fn defer_credit(&self, entry: &points_ledger_entry::Model) -> bool {
        let mut state = self.rollups.lock().await;
        let kept = state.credits_deferred && entry.delta > 0;
        if kept {
            state.credits.push(entry.clone());
        }
        kept
    }

    /// The credits waiting, which the caller writes now.
    pub async fn take_deferred_credits(&self) -> Vec<points_ledger_entry::Model> {
        std::mem::take(&mut self.rollups.lock().await.credits)
    }

    /// Writes the rollup changes not yet written, in one statement.
    pub async fn write_rollups(&self, txn: &impl ConnectionTrait) -> Result<(), AppError> {
        let mut state = self.rollups.lock().await;
        self.write(txn, &mut state).await
    }

    async fn write(
        &self,
        txn: &impl ConnectionTrait,
        state: &mut HeldRollups,
    ) -> Result<(), AppError> {
        match state.rows.as_mut() {
            Some(rows) => rollups::changes::write(txn, rows).await,
            None => Ok(()),
        }
    }

    /// Reads the held customers' rollups now, with `extra` columns of the caller's on each
    /// customer's row and a `join` ([`rollups::changes::load_with`]), and returns those rows;
    /// before any other change or question about the rollups (an internal error after one).
    pub async fn read_rollups_with(
        &self,
        txn: &impl ConnectionTrait,
        extra: &[&str],
        join: Option<rollups::changes::Join>,
    ) -> Result<HashMap<Uuid, Vec<sea_orm::QueryResult>>, AppError> {
        let mut state = self.rollups.lock().await;
        if state.rows.is_some() {
            return Err(AppError::internal(
                "reading customers' rollups",
                "the rollups were read already",
            ));
        }
        let ids: Vec<Uuid> = self.rows.iter().map(|c| c.id).collect();
        let (rollups, rows) = rollups::changes::load_with(txn, &ids, extra, join).await?;
        state.rows = Some(rollups);
        Ok(rows)
    }

    async fn read_rollups<'s>(
        &self,
        txn: &impl ConnectionTrait,
        state: &'s mut HeldRollups,
    ) -> Result<&'s mut HashMap<Uuid, Rollup>, AppError> {
        if state.rows.is_none() {
            let ids: Vec<Uuid> = self.rows.iter().map(|c| c.id).collect();
            state.rows = Some(rollups::changes::load(txn, &ids).await?);
        }
        Ok(state.rows.get_or_insert_default())
    }

    fn new(rows: Vec<customer::Model>, with_referrers: bool) -> Self {
        Self {
            rows,
            with_referrers,
            rollups: tokio::sync::Mutex::new(HeldRollups::default()),
        }
    }
}

/// Locks these customers, ascending by id, in one statement.
pub async fn all_of(txn: &impl ConnectionTrait, ids: &[Uuid]) -> Result<Held, AppError> {
    if ids.is_empty() {
        return Ok(Held::new(Vec::new(), false));
    }
    let rows = customer::Entity::find()
        .filter(customer::Column::Id.is_in(ids.iter().copied()))
        .order_by_asc(customer::Column::Id)
        .lock(LockType::NoKeyUpdate)
        .all(txn)
        .await
        .context("locking customers")?;
    for id in ids {
        if !rows.iter().any(|c| c.id == *id) {
            return Err(AppError::internal(
                "locking a customer",
                format!("customer {id} is missing"),
            ));
        }
    }
    Ok(Held::new(rows, false))
}

/// Locks one customer.
pub async fn one(txn: &impl ConnectionTrait, id: Uuid) -> Result<Held, AppError> {
    all_of(txn, &[id]).await
}

/// Locks the customer with this external id, in one statement; NOT_FOUND when there is none.
pub async fn one_by_external_id(
    txn: &impl ConnectionTrait,
    external_id: &str,
) -> Result<(Held, Uuid), AppError> {
    let rows = customer::Entity::find()
        .filter(customer::Column::ExternalId.eq(external_id))
        .lock(LockType::NoKeyUpdate)
        .all(txn)
        .await
        .context("locking a customer")?;
    let id = rows
        .first()
        .map(|c| c.id)
        .ok_or_else(|| not_found(external_id))?;
    Ok((Held::new(rows, false), id))
}

/// Locks both sides of a referral.
pub async fn both_sides(
    txn: &impl ConnectionTrait,
    referee_id: Uuid,
    referrer_id: Uuid,
) -> Result<Held, AppError> {
    all_of(txn, &[referee_id, referrer_id]).await
}

/// Locks the customer with this external id and, while their referral is still PENDING (what an
/// order can qualify), the friend who referred them, in one statement; NOT_FOUND when there is
/// no such customer. Returns the locks and the customer. A buyer whose referral was decided
/// holds no referrer, so their orders read no referral.
pub async fn customer_and_pending_referrer_by_external_id(
    txn: &impl ConnectionTrait,
    external_id: &str,
) -> Result<(Held, Uuid), AppError> {
    let customer = Query::select()
        .column(customer::Column::Id)
        .from(customer::Entity)
        .and_where(customer::Column::ExternalId.eq(external_id))
        .to_owned();
    let held = with_referrer(
        txn,
        customer::Column::ExternalId.eq(external_id),
        Condition::all()
            .add(referral::Column::RefereeId.in_subquery(customer))
            .add(referral::Column::Status.eq(ReferralStatus::Pending))
            .into(),
    )
    .await?;
    let id = held
        .rows
        .iter()
        .find(|c| c.external_id == external_id)
        .map(|c| c.id)
        .ok_or_else(|| not_found(external_id))?;
    Ok((held, id))
}

/// Locks a customer and, when they came through a referral, the friend who referred them (whom
/// their order or refund may pay or take back from), in one statement.
pub async fn customer_and_referrer(
    txn: &impl ConnectionTrait,
    customer_id: Uuid,
) -> Result<Held, AppError> {
    let held = with_referrer(
        txn,
        customer::Column::Id.eq(customer_id),
        referral::Column::RefereeId.eq(customer_id),
    )
    .await?;
    held.customer(customer_id).map_err(|_| {
        AppError::internal(
            "locking a customer",
            format!("customer {customer_id} is missing"),
        )
    })?;
    Ok(held)
}

/// Locks the customers `customer` selects and whoever referred them (the referrals `referee`
/// selects), ascending by id, in one statement. The ids come from a `UNION ALL` of two indexed
/// look-ups: written as `customer OR id IN (referrers)`, PostgreSQL scanned every customer (9.6
/// ms an order with 35,000 customers, the limit of `recordOrder` under load).
async fn with_referrer(
    txn: &impl ConnectionTrait,
    customer: SimpleExpr,
    referee: SimpleExpr,
) -> Result<Held, AppError> {
    let referrer = Query::select()
        .column(referral::Column::ReferrerId)
        .from(referral::Entity)
        .and_where(referee)
        .to_owned();
    let ids = Query::select()
        .column(customer::Column::Id)
        .from(customer::Entity)
        .and_where(customer)
        .union(UnionType::All, referrer)
        .to_owned();
    let rows = customer::Entity::find()
        .filter(customer::Column::Id.in_subquery(ids))
        .order_by_asc(customer::Column::Id)
        .lock(LockType::NoKeyUpdate)
        .all(txn)
        .await
        .context("locking a customer and their referrer")?;
    Ok(Held::new(rows, true))
}
