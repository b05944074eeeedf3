//! A friend's pending referral as an order's rules read it: the referral, its campaign, an email
//! the friend and the referrer have both used ([`SHARED_EMAIL_COLUMN`]) and the decisions taken
//! on it so far. Read on its own ([`read`]), or joined to the rows of the order's snapshot
//! ([`snapshot_join`], parsed by [`from_rows`]) so that it costs no statement of its own.

use sea_orm::{ConnectionTrait, FromQueryResult, IdenStatic, Iterable, QueryResult, Value};
use uuid::Uuid;

use crate::db::statement;
use crate::entities::{campaign, referral, referral_decision as decision};
use crate::error::{AppError, DbContext};
use crate::referrals::attribution::SHARED_EMAIL_COLUMN;

/// A friend's pending referral and what its rules read with it.
#[derive(Debug)]
pub struct Pending {
    pub referral: referral::Model,
    pub campaign: Option<campaign::Model>,
    pub shared_email: Option<String>,
    /// Oldest first.
    pub decisions: Vec<decision::Model>,
}

/// The friend's pending referral with its campaign and the shared email, one row at most (so
/// the email's subquery runs once), columns prefixed as `FromQueryResult` reads them; one `?`
/// for the friend's id.
fn one_row() -> String {
    let prefixed = |table: &str, prefix: &str, names: Vec<&'static str>| {
        names
            .into_iter()
            .map(|name| format!("{table}.{name} AS \"{prefix}{name}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let referral_columns = prefixed(
        "referrals",
        "A_",
        referral::Column::iter().map(|c| c.as_str()).collect(),
    );
    let campaign_columns = prefixed(
        "campaigns",
        "B_",
        campaign::Column::iter().map(|c| c.as_str()).collect(),
    );
    format!(
        "SELECT {referral_columns}, {campaign_columns}, {SHARED_EMAIL_COLUMN} AS shared_email \
         FROM referrals LEFT JOIN campaigns ON campaigns.id = referrals.campaign_id \
         WHERE referrals.referee_id = ? AND referrals.status = 'PENDING' LIMIT 1"
    )
}

/// The columns [`from_rows`] reads: the referral's row and one decision a row.
pub const COLUMNS: &str = "p.*, d.id AS \"C_id\", d.referral_id AS \"C_referral_id\", \
     d.rule AS \"C_rule\", d.outcome AS \"C_outcome\", d.detail AS \"C_detail\", \
     d.decided_at AS \"C_decided_at\"";

/// Joins, to rows that name a customer as `on` (such as `r.customer_id`), `referee_id`'s
/// pending referral and its decisions, one row each: add [`COLUMNS`] to the select and read
/// the customer's rows with [`from_rows`]. Returns the join and the values of its `?`.
pub fn join(on: &str, referee_id: Uuid) -> (String, Vec<Value>) {
    let sql = format!(
        "LEFT JOIN ({}) p ON p.\"A_referee_id\" = {on} {DECISIONS}",
        one_row()
    );
    (sql, vec![referee_id.into()])
}

const DECISIONS: &str = "LEFT JOIN referral_decisions d ON d.referral_id = p.\"A_id\"";

/// The friend's pending referral, in one statement.
pub async fn read(
    txn: &impl ConnectionTrait,
    referee_id: Uuid,
) -> Result<Option<Pending>, AppError> {
    let sql = format!("SELECT {COLUMNS} FROM ({}) p {DECISIONS}", one_row());
    let rows = txn
        .query_all_raw(statement(
            txn.get_database_backend(),
            &sql,
            vec![referee_id.into()],
        ))
        .await
        .context(WHAT)?;
    from_rows(&rows)
}

const WHAT: &str = "loading a friend's pending referral";

/// The pending referral in rows that carry [`COLUMNS`] (one per decision), `None` when the
/// join found none.
pub fn from_rows(rows: &[QueryResult]) -> Result<Option<Pending>, AppError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let Some(referral) = referral::Model::from_query_result_optional(first, "A_").context(WHAT)?
    else {
        return Ok(None);
    };
    let mut decisions = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(decision) =
            decision::Model::from_query_result_optional(row, "C_").context(WHAT)?
        {
            decisions.push(decision);
        }
    }
    decisions.sort_by_key(|d| d.id);
    Ok(Some(Pending {
        referral,
        campaign: campaign::Model::from_query_result_optional(first, "B_").context(WHAT)?,
        shared_email: first.try_get("", "shared_email").context(WHAT)?,
        decisions,
    }))
}
