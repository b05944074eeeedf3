//! Reading the application state and the caller out of a resolver's context.

use async_graphql::Context;

use crate::auth::{Principal, Role, Viewer};
use crate::error::AppError;
use crate::state::AppState;

pub fn state<'a>(ctx: &Context<'a>) -> Result<&'a AppState, AppError> {
    ctx.data::<AppState>()
        .map_err(|e| AppError::internal("reading the application state", e.message))
}

pub fn viewer<'a>(ctx: &Context<'a>) -> &'a Viewer {
    ctx.data_opt::<Viewer>().unwrap_or(&Viewer::Anonymous)
}

/// The state and the caller, when the caller has one of `roles`.
pub fn require<'a>(
    ctx: &Context<'a>,
    roles: &[Role],
) -> Result<(&'a AppState, &'a Principal), AppError> {
    let principal = viewer(ctx).require(roles)?;
    Ok((state(ctx)?, principal))
}

/// A Tandem id from a GraphQL `ID` argument.
pub fn parse_id(field: &str, id: &async_graphql::ID) -> Result<uuid::Uuid, AppError> {
    id.parse().map_err(|_| {
        // Echo short values only: the client sent it, and a long one helps nobody.
        let shown: String = id.0.chars().take(40).collect();
        AppError::bad_input(field, format!("{field} '{shown}' is not a Tandem id"))
    })
}

/// Takes one request from the calling client IP's public allowance (`RATE_LIMITED` when spent).
/// Service and admin tokens are exempt: a merchant's backend calls these fields for its
/// visitors from one address.
pub fn limit_public(ctx: &Context<'_>) -> Result<(), AppError> {
    if let Viewer::Authenticated(principal) = viewer(ctx)
        && matches!(principal.role, Role::Service | Role::Admin)
    {
        return Ok(());
    }
    let state = state(ctx)?;
    let ip = ctx
        .data_opt::<crate::referrals::links::Visitor>()
        .and_then(|visitor| visitor.ip.as_deref());
    let key = state.rate_limits.client_key(ip);
    state
        .rate_limits
        .public
        .check(&key, state.clock.now())
        .map_err(AppError::rate_limited)
}

/// Takes one request from the token's allowance: the token's role and subject, and for service
/// and admin tokens the customer acted for, so one backend serving many shoppers is not one
/// bucket.
pub fn limit_account(
    state: &AppState,
    principal: &Principal,
    acting_for: Option<&str>,
) -> Result<(), AppError> {
    let key = format!(
        "{}:{}:{}",
        principal.role.as_str(),
        principal.subject,
        acting_for.unwrap_or_default()
    );
    state
        .rate_limits
        .account
        .check(&key, state.clock.now())
        .map_err(AppError::rate_limited)
}
