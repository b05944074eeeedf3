//! The GraphQL schema: one builder, used by the server and by `tandem schema`.

pub mod campaigns;
pub mod carts;
pub mod context;
pub mod customers;
pub mod documents;
pub mod email;
pub mod limits;
pub mod loaders;
pub mod loyalty;
pub mod metrics;
pub mod orders;
pub mod pagination;
pub mod referrals;
pub mod rewards;
pub mod scalars;
pub mod socket_slots;
pub mod subscriptions;
pub mod transport;
pub mod websocket;

use async_graphql::{MergedObject, Schema, SchemaBuilder};

use crate::graphql::campaigns::{CampaignMutation, CampaignQuery};
use crate::graphql::carts::CartMutation;
use crate::graphql::customers::{CustomerMutation, CustomerQuery};
use crate::graphql::email::{EmailMutation, EmailQuery};
use crate::graphql::loyalty::{LoyaltyMutation, LoyaltyQuery};
use crate::graphql::metrics::{MetricsMutation, MetricsQuery};
use crate::graphql::orders::OrderMutation;
use crate::graphql::referrals::{ReferralMutation, ReferralQuery};
use crate::graphql::rewards::RewardMutation;
use crate::graphql::subscriptions::SubscriptionRoot;

/// Everything a caller can read.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    CustomerQuery,
    CampaignQuery,
    ReferralQuery,
    EmailQuery,
    LoyaltyQuery,
    MetricsQuery,
);

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
    LoyaltyMutation,
    MetricsMutation,
);

pub type TandemSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema with no data and no limits attached; the server adds the application state and
/// the limits from the settings.
pub fn schema_builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
}

/// The schema the server runs: depth, aliases and root fields are checked by
/// [`limits::check_document`] before async-graphql sees a query; async-graphql then computes
/// the complexity (paged lists multiply by their `first`) on a query already known to be small.
pub fn serving_schema(state: crate::state::AppState) -> TandemSchema {
    let limits = state.settings.http.query;
    let mut builder = schema_builder()
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(limits::MAX_NESTING);
    if !state.settings.introspection {
        // Suggestions ("did you mean …") would tell what introspection no longer does.
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.data(state).finish()
}

/// The SDL that `schema.graphql` holds.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
