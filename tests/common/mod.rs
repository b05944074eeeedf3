//! The test harness: each test starts the real application on port 0 with a database of its own
//! (a temporary SQLite file, or with `TEST_DATABASE_URL` a fresh PostgreSQL database created for
//! the test and dropped after) and talks to it over HTTP.

#![allow(dead_code)]

pub mod database;
pub mod smtp;
pub mod ws;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tandem::clock::ManualClock;
use tandem::config::Settings;
use tandem::server::Application;
use tandem::state::AppState;

pub use database::TestDatabase;

/// The HS256 secret every test app is configured with.
pub const TEST_SECRET: &str = "test-secret-that-is-at-least-32-characters";

pub struct TestApp {
    pub address: String,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub state: AppState,
    /// Dropped with the last instance: removes the test's database.
    _database: Arc<TestDatabase>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts an app with extra settings, as environment variable name and value.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        let database = TestDatabase::create().await;
        let mut env: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), database.url().to_owned()),
            ("TANDEM_BIND".into(), "127.0.0.1:0".into()),
            ("TANDEM_JWT_SECRET".into(), TEST_SECRET.into()),
            ("TANDEM_PUBLIC_URL".into(), "https://shop.example".into()),
            (
                "TANDEM_MAIL_FROM".into(),
                "Shop <hello@shop.example>".into(),
            ),
            (
                "TANDEM_MAIL_DIR".into(),
                std::env::temp_dir()
                    .join(format!("tandem-mail-{}", uuid::Uuid::new_v4().simple()))
                    .display()
                    .to_string(),
            ),
        ]);
        for (name, value) in extra {
            env.insert((*name).into(), (*value).into());
        }
        let settings = Settings::from_sources(&env, None).expect("test settings are valid");
        let clock = ManualClock::new(Utc::now());
        let state = AppState::init(settings, Arc::new(clock.clone()))
            .await
            .expect("the app starts");
        let app = Application::build(state.clone()).expect("the app binds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            clock,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            state,
            _database: Arc::new(database),
        }
    }

    /// A second server on the same database with its own process-local state (its own copy of
    /// the program's configuration), as another instance behind a load balancer would be.
    pub async fn second_instance(&self) -> TestApp {
        let state = AppState {
            program: Arc::default(),
            ..self.state.clone()
        };
        let app = Application::build(state.clone()).expect("the app binds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            clock: self.clock.clone(),
            client: self.client.clone(),
            state,
            _database: self._database.clone(),
        }
    }

    /// What the app's clock says now.
    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use tandem::clock::Clock;
        self.clock.now()
    }

    /// A token signed with the test secret.
    pub fn token(&self, role: &str, sub: &str) -> String {
        sign_hs256(
            &json!({ "sub": sub, "role": role, "exp": (self.clock_now() + Duration::hours(1)).timestamp() }),
            TEST_SECRET,
        )
    }

    pub fn admin_token(&self) -> String {
        self.token("admin", "ops")
    }

    pub fn service_token(&self) -> String {
        self.token("service", "shop-backend")
    }

    pub fn customer_token(&self, external_id: &str) -> String {
        self.token("customer", external_id)
    }

    /// POSTs a GraphQL request and returns the JSON body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        assert_eq!(response.status(), 200, "GraphQL requests answer 200");
        response.json().await.expect("the body is JSON")
    }

    pub async fn register_customer(&self, external_id: &str, email: &str) -> Value {
        self.register(json!({ "externalId": external_id, "email": email }))
            .await
    }

    /// Runs `registerCustomer` with `input` as a service and returns the whole response.
    pub async fn register(&self, input: Value) -> Value {
        self.graphql(
            Some(&self.service_token()),
            REGISTER_CUSTOMER,
            json!({ "input": input }),
        )
        .await
    }

    /// Creates a campaign as an admin and returns it (id and every rule).
    pub async fn create_campaign(&self, input: Value) -> Value {
        let response = self
            .graphql(
                Some(&self.admin_token()),
                "mutation($input: CampaignInput!) { createCampaign(input: $input) { id name holdDays minOrderAmount } }",
                json!({ "input": input }),
            )
            .await;
        data(&response)["createCampaign"].clone()
    }

    /// Registers a referrer, then a friend with the referrer's code; returns the friend's
    /// registration response.
    pub async fn refer(&self, referrer: &str, friend: &str, extra: Value) -> Value {
        let code = self.referral_code_of(referrer).await;
        let mut input = json!({
            "externalId": friend,
            "email": format!("{friend}@example.com"),
            "name": format!("{} Friend", capitalize(friend)),
            "referralCode": code,
        });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                input.insert(key.clone(), value.clone());
            }
        }
        self.graphql(
            Some(&self.service_token()),
            REGISTER_WITH_REFERRAL,
            json!({ "input": input }),
        )
        .await
    }

    /// The referral code of a customer, registering them first when needed.
    pub async fn referral_code_of(&self, external_id: &str) -> String {
        let response = self
            .register(json!({
                "externalId": external_id,
                "email": format!("{external_id}@example.com"),
                "name": format!("{} Referrer", capitalize(external_id)),
            }))
            .await;
        data(&response)["registerCustomer"]["customer"]["referralCode"]
            .as_str()
            .expect("a referral code")
            .to_owned()
    }

    /// Records an order as the shop's backend; returns the whole response.
    pub async fn record_order(&self, external_id: &str, customer: &str, amount: i64) -> Value {
        self.record_order_with(json!({
            "externalId": external_id,
            "customerExternalId": customer,
            "amount": amount,
            "currency": "USD",
        }))
        .await
    }

    pub async fn record_order_with(&self, input: Value) -> Value {
        self.graphql(
            Some(&self.service_token()),
            "mutation($input: OrderInput!) { recordOrder(input: $input) { id externalId amount refundedAmount currency placedAt customerExternalId } }",
            json!({ "input": input }),
        )
        .await
    }

    pub async fn refund_order(&self, external_id: &str, amount: i64) -> Value {
        self.graphql(
            Some(&self.service_token()),
            "mutation($id: String!, $amount: Int!) { refundOrder(externalId: $id, amount: $amount) { externalId amount refundedAmount } }",
            json!({ "id": external_id, "amount": amount }),
        )
        .await
    }

    /// Redeems a coupon as the shop would at checkout.
    pub async fn redeem(&self, code: &str) -> Value {
        self.graphql(
            Some(&self.service_token()),
            "mutation($code: String!) { redeemCoupon(code: $code) { status redeemedAt } }",
            json!({ "code": code }),
        )
        .await
    }

    /// How many share-link clicks are stored.
    pub async fn click_count(&self) -> u64 {
        use sea_orm::{EntityTrait, PaginatorTrait};
        tandem::entities::referral_click::Entity::find()
            .count(&self.state.db)
            .await
            .expect("counting clicks")
    }

    /// One pass of the scheduler, as `tandem serve` runs every interval.
    pub async fn run_scheduler(&self) -> tandem::jobs::scheduler::PassReport {
        tandem::jobs::scheduler::run_once(&self.state).await
    }

    /// One pass of the delivery worker.
    pub async fn deliver_emails(&self) -> tandem::delivery::DeliveryReport {
        tandem::delivery::deliver_due(&self.state.deliverer())
            .await
            .expect("a delivery pass")
    }

    /// The outbox as an admin sees it.
    pub async fn email_deliveries(&self) -> Vec<Value> {
        let response = self
            .graphql(
                Some(&self.admin_token()),
                "{ emailDeliveries(first: 80) { edges { node { id recipient template dedupeKey status attempts lastError messageId sentAt } } } }",
                json!({}),
            )
            .await;
        data(&response)["emailDeliveries"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .collect()
    }

    /// A referral with its decisions and rewards, as an admin sees it.
    pub async fn referral(&self, id: &str) -> Value {
        let response = self
            .graphql(
                Some(&self.admin_token()),
                "query($id: ID!) { referral(id: $id) { id status rejectionReason flagged flagReason
                   decisions { rule outcome detail }
                   rewards { side kind amount status couponCode } } }",
                json!({ "id": id }),
            )
            .await;
        data(&response)["referral"].clone()
    }

    /// What a customer sees of themself.
    pub async fn me(&self, external_id: &str) -> Value {
        let response = self
            .graphql(
                Some(&self.customer_token(external_id)),
                "{ me { externalId pointsBalance
                    referredBy { firstName }
                    referrals { status friendFirstName rewards { side kind amount status } }
                    rewards { id side kind amount status couponCode releaseAt } } }",
                json!({}),
            )
            .await;
        data(&response)["me"].clone()
    }

    /// POSTs `body` to `/graphql` as it is, with the given content type and `Accept`.
    pub async fn post_graphql_raw(
        &self,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send().await.expect("the server answers")
    }

    /// Asserts the server is up and answers a normal query and its health checks.
    pub async fn assert_still_serves(&self) {
        assert_eq!(self.get("/health").await.status(), 200);
        assert_eq!(self.get("/ready").await.status(), 200);
        let response = self
            .graphql(None, "{ activeCampaign { id } }", json!({}))
            .await;
        assert!(response.get("errors").is_none(), "{response}");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("the server answers")
    }
}

pub const REGISTER_WITH_REFERRAL: &str = "mutation($input: RegisterCustomerInput!) {
  registerCustomer(input: $input) {
    customer { id externalId }
    referral { id status rejectionReason flagged referrerFirstName friendFirstName }
  }
}";

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub const CUSTOMER_FIELDS: &str = "id externalId email name referralCode referralLink acquisitionChannel marketingConsent createdAt";

pub const REGISTER_CUSTOMER: &str = "mutation($input: RegisterCustomerInput!) {
  registerCustomer(input: $input) {
    customer { id externalId email name referralCode referralLink acquisitionChannel marketingConsent createdAt }
  }
}";

/// Signs `claims` with HS256 and `secret`.
pub fn sign_hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signing works")
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

/// Asserts the response failed with `code`, and returns the first error's message.
pub fn assert_error(response: &Value, code: &str) -> String {
    assert_eq!(error_code(response), Some(code), "response: {response}");
    response["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Asserts the response has no errors and returns its data.
pub fn data(response: &Value) -> &Value {
    assert!(
        response.get("errors").is_none(),
        "unexpected errors: {response}"
    );
    &response["data"]
}

/// Holds a customer's row (PostgreSQL) and the write lock (SQLite) until the transaction ends,
/// so a request that changes the customer must wait.
pub async fn hold_customer(app: &TestApp, external_id: &str) -> sea_orm::DatabaseTransaction {
    use sea_orm::ConnectionTrait;

    let blocker = tandem::db::begin_write(&app.state.db).await.unwrap();
    blocker
        .execute_unprepared(&format!(
            "UPDATE customers SET name = name WHERE external_id = '{external_id}'"
        ))
        .await
        .unwrap();
    blocker
}

/// A customer's name, as a service token reads it.
pub async fn name_of(app: &TestApp, external_id: &str) -> Value {
    let response = app
        .graphql(
            Some(&app.service_token()),
            "query($id: String!) { customer(externalId: $id) { name } }",
            json!({ "id": external_id }),
        )
        .await;
    data(&response)["customer"]["name"].clone()
}
