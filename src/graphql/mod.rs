//! The GraphQL schema: one builder, used by the server and by `tandem schema`.

pub mod context;
pub mod loaders;
pub mod pagination;

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

use crate::campaigns::graphql::{CampaignMutation, CampaignQuery};
use crate::carts::graphql::CartMutation;
use crate::customers::graphql::{CustomerMutation, CustomerQuery};
use crate::email::graphql::{EmailMutation, EmailQuery};
use crate::orders::graphql::OrderMutation;
use crate::referrals::graphql::{ReferralMutation, ReferralQuery};
use crate::rewards::graphql::RewardMutation;

/// Deepest query accepted; deeper ones are refused before they run.
pub const MAX_DEPTH: usize = 16;
/// Most expensive query accepted (one point a field, lists multiplied by their page size).
pub const MAX_COMPLEXITY: usize = 5_000;

/// Everything a caller can read.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(CustomerQuery, CampaignQuery, ReferralQuery, EmailQuery);

/// Everything a caller can change.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    CustomerMutation,
    CampaignMutation,
    ReferralMutation,
    OrderMutation,
    RewardMutation,
    CartMutation,
    EmailMutation,
);

pub type TandemSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// The schema with its limits and no data attached; the server adds the application state.
pub fn schema_builder() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
