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
