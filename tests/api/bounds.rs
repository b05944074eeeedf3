//! The same hostile strings through every argument of every operation: each is refused with
//! BAD_USER_INPUT naming the field, and nothing is written. The suite runs on SQLite and on
//! PostgreSQL, so both backends are held to the same outcome.

use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::common::TestApp;

/// What kind of value a field holds, and so which hostile values must be refused.
#[derive(Clone, Copy)]
enum Kind {
    Id,
    Name,
    Email,
    Message,
    Url,
    Token,
}

impl Kind {
    fn limit(self) -> usize {
        match self {
            Self::Id => 128,
            Self::Name => 200,
            Self::Email => 254,
            Self::Message => 2_000,
            Self::Url => 2_048,
            Self::Token => 512,
        }
    }

    /// Values this kind of field must refuse.
    fn hostile(self) -> Vec<String> {
        let over = self.limit() + 1;
        let mut values = vec![
            "a\u{0}b".to_owned(),
            "bell\u{7}".to_owned(),
            "esc\u{1b}[31m".to_owned(),
            "c1\u{85}".to_owned(),
        ];
        match self {
            Self::Url => {
                values.push(format!("https://shop.example/{}", "a".repeat(over)));
                values.push("https://shop.example/\r\nSet-Cookie: a=b".to_owned());
                values.push("javascript:alert(1)".to_owned());
                values.push("data:text/html,<script>alert(1)</script>".to_owned());
                values.push("//shop.example/no-scheme".to_owned());
            }
            Self::Message => values.push("x".repeat(over)),
            Self::Email => values.push(format!("{}@example.com", "a".repeat(over))),
            _ => {
                values.push("a\r\nb".to_owned());
                values.push("x".repeat(over));
            }
        }
        values
    }
}

/// One argument of one operation: the document, the role that may call it, a valid set of
/// variables, where in them the hostile value goes, and the field the error must name.
struct Case {
    query: &'static str,
    role: Option<&'static str>,
    variables: Value,
    pointer: &'static str,
    field: &'static str,
    kind: Kind,
}

fn cases() -> Vec<Case> {
    let register = "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { customer { id } } }";
    let register_input =
        || json!({ "input": { "externalId": "new-1", "email": "new-1@example.com" } });
    let update = "mutation($id: String!, $input: UpdateCustomerInput!) { updateCustomer(externalId: $id, input: $input) { id } }";
    let campaign = "mutation($input: CampaignInput!) { createCampaign(input: $input) { id } }";
    let campaign_input = || {
        json!({ "input": {
            "name": "Spring",
            "referrerReward": { "kind": "POINTS", "amount": 100 },
            "refereeReward": { "kind": "POINTS", "amount": 100 },
            "landingUrl": "https://shop.example/join",
        }})
    };
    let order = "mutation($input: OrderInput!) { recordOrder(input: $input) { id } }";
    let order_input = || {
        json!({ "input": {
            "externalId": "o-1", "customerExternalId": "ann", "amount": 1000, "currency": "USD",
            "items": [{ "productId": "p1", "name": "Mug", "unitPrice": 1000, "quantity": 1 }],
            "cartExternalId": "cart-1",
        }})
    };
    let cart = "mutation($input: CartInput!) { upsertCart(input: $input) { id } }";
    let cart_input = || {
        json!({ "input": {
            "externalId": "cart-1", "customerExternalId": "ann",
            "items": [{ "productId": "p1", "name": "Mug", "unitPrice": 1000, "quantity": 1,
                        "imageUrl": "https://shop.example/mug.png", "url": "https://shop.example/mug" }],
            "checkoutUrl": "https://shop.example/checkout",
        }})
    };
    let view = "mutation($input: ProductViewInput!) { trackProductView(input: $input) }";
    let view_input = || {
        json!({ "input": {
            "customerExternalId": "ann", "productId": "p1", "name": "Mug", "unitPrice": 100,
            "url": "https://shop.example/mug", "imageUrl": "https://shop.example/mug.png",
        }})
    };
    let refund = "mutation($id: String!, $refundId: String) { refundOrder(externalId: $id, amount: 100, refundId: $refundId) { id } }";
    let case = |query, role, variables: Value, pointer, field, kind| Case {
        query,
        role,
        variables,
        pointer,
        field,
        kind,
    };
    let service = Some("service");
    let admin = Some("admin");
    vec![
        case(
            register,
            service,
            register_input(),
            "/input/externalId",
            "externalId",
            Kind::Id,
        ),
        case(
            register,
            service,
            register_input(),
            "/input/email",
            "email",
            Kind::Email,
        ),
        case(
            register,
            service,
            register_input(),
            "/input/name",
            "name",
            Kind::Name,
        ),
        case(
            register,
            service,
            register_input(),
            "/input/acquisitionChannel",
            "acquisitionChannel",
            Kind::Name,
        ),
        case(
            register,
            service,
            register_input(),
            "/input/ip",
            "ip",
            Kind::Id,
        ),
        case(
            register,
            service,
            register_input(),
            "/input/deviceId",
            "deviceId",
            Kind::Id,
        ),
        case(
            register,
            service,
            register_input(),
            "/input/referralCode",
            "referralCode",
            Kind::Id,
        ),
        case(
            update,
            service,
            json!({ "id": "ann", "input": {} }),
            "/id",
            "externalId",
            Kind::Id,
        ),
        case(
            update,
            service,
            json!({ "id": "ann", "input": { "name": "Ann" } }),
            "/input/name",
            "name",
            Kind::Name,
        ),
        case(
            update,
            service,
            json!({ "id": "ann", "input": { "email": "ann2@example.com" } }),
            "/input/email",
            "email",
            Kind::Email,
        ),
        case(
            campaign,
            admin,
            campaign_input(),
            "/input/name",
            "name",
            Kind::Name,
        ),
        case(
            campaign,
            admin,
            campaign_input(),
            "/input/landingUrl",
            "landingUrl",
            Kind::Url,
        ),
        case(
            "mutation($code: String!) { trackReferralClick(code: $code) { recorded } }",
            None,
            json!({ "code": "ABCD1234" }),
            "/code",
            "code",
            Kind::Id,
        ),
        case(
            "mutation($note: String) { reviewReferral(id: \"0190e0a0-0000-7000-8000-000000000000\", approve: true, note: $note) { id } }",
            admin,
            json!({ "note": "ok" }),
            "/note",
            "note",
            Kind::Message,
        ),
        case(
            order,
            service,
            order_input(),
            "/input/externalId",
            "externalId",
            Kind::Id,
        ),
        case(
            order,
            service,
            order_input(),
            "/input/customerExternalId",
            "customerExternalId",
            Kind::Id,
        ),
        case(
            order,
            service,
            order_input(),
            "/input/currency",
            "currency",
            Kind::Id,
        ),
        case(
            order,
            service,
            order_input(),
            "/input/items/0/productId",
            "items.productId",
            Kind::Id,
        ),
        case(
            order,
            service,
            order_input(),
            "/input/items/0/name",
            "items.name",
            Kind::Name,
        ),
        case(
            order,
            service,
            order_input(),
            "/input/cartExternalId",
            "cartExternalId",
            Kind::Id,
        ),
        case(
            refund,
            service,
            json!({ "id": "o-1", "refundId": "r-1" }),
            "/id",
            "externalId",
            Kind::Id,
        ),
        case(
            refund,
            service,
            json!({ "id": "o-1", "refundId": "r-1" }),
            "/refundId",
            "refundId",
            Kind::Id,
        ),
        case(
            "mutation($code: String!) { redeemCoupon(code: $code) { id } }",
            service,
            json!({ "code": "ABCD-EFGH" }),
            "/code",
            "code",
            Kind::Id,
        ),
        case(
            cart,
            service,
            cart_input(),
            "/input/externalId",
            "externalId",
            Kind::Id,
        ),
        case(
            cart,
            service,
            cart_input(),
            "/input/customerExternalId",
            "customerExternalId",
            Kind::Id,
        ),
        case(
            cart,
            service,
            cart_input(),
            "/input/items/0/productId",
            "items.productId",
            Kind::Id,
        ),
        case(
            cart,
            service,
            cart_input(),
            "/input/items/0/name",
            "items.name",
            Kind::Name,
        ),
        case(
            cart,
            service,
            cart_input(),
            "/input/items/0/imageUrl",
            "items.imageUrl",
            Kind::Url,
        ),
        case(
            cart,
            service,
            cart_input(),
            "/input/items/0/url",
            "items.url",
            Kind::Url,
        ),
        case(
            cart,
            service,
            cart_input(),
            "/input/checkoutUrl",
            "checkoutUrl",
            Kind::Url,
        ),
        case(
            view,
            service,
            view_input(),
            "/input/customerExternalId",
            "customerExternalId",
            Kind::Id,
        ),
        case(
            view,
            service,
            view_input(),
            "/input/productId",
            "productId",
            Kind::Id,
        ),
        case(
            view,
            service,
            view_input(),
            "/input/name",
            "name",
            Kind::Name,
        ),
        case(view, service, view_input(), "/input/url", "url", Kind::Url),
        case(
            view,
            service,
            view_input(),
            "/input/imageUrl",
            "imageUrl",
            Kind::Url,
        ),
        case(
            "mutation($message: String) { inviteFriends(emails: [\"bea@example.com\"], message: $message) { sent } }",
            Some("customer"),
            json!({ "message": "Hi" }),
            "/message",
            "message",
            Kind::Message,
        ),
        case(
            "mutation($token: String!) { unsubscribe(token: $token) { email } }",
            None,
            json!({ "token": "abc.def" }),
            "/token",
            "token",
            Kind::Token,
        ),
        case(
            "query($id: String!) { customer(externalId: $id) { id } }",
            service,
            json!({ "id": "ann" }),
            "/id",
            "externalId",
            Kind::Id,
        ),
        case(
            "query($code: String!) { referralCode(code: $code) { code } }",
            None,
            json!({ "code": "ABCD1234" }),
            "/code",
            "code",
            Kind::Id,
        ),
        case(
            "query($after: String) { customers(after: $after) { edges { cursor } } }",
            service,
            json!({ "after": "x" }),
            "/after",
            "after",
            Kind::Id,
        ),
        case(
            "query($after: String) { referrals(after: $after) { edges { cursor } } }",
            admin,
            json!({ "after": "x" }),
            "/after",
            "after",
            Kind::Id,
        ),
        case(
            "query($after: String) { emailDeliveries(after: $after) { edges { cursor } } }",
            admin,
            json!({ "after": "x" }),
            "/after",
            "after",
            Kind::Id,
        ),
    ]
}

/// Sets the value at a JSON pointer, adding the last key when the object lacks it.
fn set_at(variables: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    match variables.pointer_mut(parent) {
        Some(Value::Object(object)) => {
            object.insert(key.to_owned(), value);
        }
        Some(Value::Array(array)) => array[key.parse::<usize>().expect("an index")] = value,
        _ => panic!("{parent} is not in the variables"),
    }
}

/// Rows of every table a refused request could have written to.
async fn row_counts(app: &TestApp) -> Vec<u64> {
    use tandem::entities::*;
    let db = &app.state.db;
    vec![
        customer::Entity::find().count(db).await.unwrap(),
        campaign::Entity::find().count(db).await.unwrap(),
        order::Entity::find().count(db).await.unwrap(),
        refund::Entity::find().count(db).await.unwrap(),
        cart::Entity::find().count(db).await.unwrap(),
        product_view::Entity::find().count(db).await.unwrap(),
        referral_click::Entity::find().count(db).await.unwrap(),
        email_outbox::Entity::find().count(db).await.unwrap(),
        suppression::Entity::find().count(db).await.unwrap(),
    ]
}

#[tokio::test]
async fn every_argument_refuses_hostile_strings_alike_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let before = row_counts(&app).await;
    let mut checked = 0;
    for case in cases() {
        let token = case.role.map(|role| match role {
            "customer" => app.customer_token("ann"),
            role => app.token(role, "ops"),
        });
        for value in case.kind.hostile() {
            let mut variables = case.variables.clone();
            set_at(&mut variables, case.pointer, Value::String(value.clone()));
            let response = app.graphql(token.as_deref(), case.query, variables).await;
            let shown: String = value.chars().take(40).collect();
            let error = &response["errors"][0];
            assert_eq!(
                error["extensions"]["code"], "BAD_USER_INPUT",
                "{} with {shown:?}: {response}",
                case.query
            );
            assert_eq!(
                error["extensions"]["field"], case.field,
                "{} with {shown:?}: {response}",
                case.query
            );
            let message = error["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(case.field.rsplit('.').next().unwrap_or(case.field)),
                "the message names the field: {message}"
            );
            checked += 1;
        }
    }
    assert!(checked > 250, "{checked} cases");
    assert_eq!(
        row_counts(&app).await,
        before,
        "a refused request wrote something"
    );
    app.assert_still_serves().await;
}

#[tokio::test]
async fn invitations_to_hostile_addresses_are_skipped_not_failed() {
    let app = TestApp::spawn().await;
    app.register_customer("ann", "ann@example.com").await;
    let emails: Vec<String> = Kind::Email.hostile();
    let response = app
        .graphql(
            Some(&app.customer_token("ann")),
            "mutation($emails: [String!]!) { inviteFriends(emails: $emails) { sent skipped { reason } } }",
            json!({ "emails": emails }),
        )
        .await;
    assert!(response.get("errors").is_none(), "{response}");
    let result = &response["data"]["inviteFriends"];
    assert_eq!(result["sent"], json!([]));
    assert_eq!(
        result["skipped"].as_array().map(Vec::len),
        Some(emails.len())
    );
}
