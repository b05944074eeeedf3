//! Email through a real SMTP server on a random port: what arrives, when it is retried, and what
//! never goes out.

use chrono::Duration;
use serde_json::{Value, json};

use crate::campaigns::points_campaign;
use crate::common::smtp::SmtpServer;
use crate::common::{TestApp, assert_error, data};

async fn app_with_smtp(smtp: &SmtpServer, extra: &[(&str, &str)]) -> TestApp {
    let url = smtp.url();
    let mut settings = vec![("TANDEM_SMTP_URL", url.as_str())];
    settings.extend_from_slice(extra);
    TestApp::spawn_with(&settings).await
}

async fn register_consenting(app: &TestApp, external_id: &str, name: &str) {
    data(
        &app.register(json!({
            "externalId": external_id,
            "email": format!("{external_id}@example.com"),
            "name": name,
            "marketingConsent": true,
        }))
        .await,
    );
}

fn to(
    received: &[crate::common::smtp::Received],
    address: &str,
) -> Vec<crate::common::smtp::Received> {
    received
        .iter()
        .filter(|m| m.to.iter().any(|t| t == address))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_rewarded_referral_emails_both_sides_with_both_parts() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    register_consenting(&app, "ann", "Ann Lee").await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    let report = app.deliver_emails().await;
    assert_eq!(
        report.sent, 3,
        "friend_joined and two reward emails: {report:?}"
    );

    let received = smtp.received();
    let ann = to(&received, "ann@example.com");
    let subjects: Vec<String> = ann.iter().map(|m| m.subject()).collect();
    assert!(
        subjects.contains(&"Your friend Bob joined with your link".to_owned()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"You earned 500 points".to_owned()),
        "{subjects:?}"
    );

    let bob = to(&received, "bob@example.com");
    assert_eq!(bob.len(), 1);
    let reward = &bob[0];
    assert_eq!(reward.subject(), "You earned 10.00 USD off");
    assert_eq!(reward.from, "hello@shop.example");
    let coupon = app.me("bob").await["rewards"][0]["couponCode"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reward.text().contains(&coupon), "{}", reward.text());
    assert!(reward.html().contains(&coupon));
    assert!(reward.html().contains("https://shop.example/r/"));
    assert!(reward.header("Message-ID").is_some());
    assert_eq!(
        reward.header("List-Unsubscribe"),
        None,
        "reward emails are transactional"
    );

    let joined = ann.iter().find(|m| m.subject().contains("joined")).unwrap();
    let unsubscribe = joined
        .header("List-Unsubscribe")
        .expect("marketing email has the header");
    assert!(
        unsubscribe.starts_with("<https://shop.example/unsubscribe?token="),
        "{unsubscribe}"
    );
    assert_eq!(
        joined.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(joined.text().contains("/unsubscribe?token="));

    assert_eq!(
        app.deliver_emails().await.sent,
        0,
        "each email goes out once"
    );
    assert_eq!(smtp.received().len(), 3);
}

#[tokio::test]
async fn a_referrer_without_consent_gets_no_friend_joined_email() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    app.deliver_emails().await;
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn invite_friends_sends_invitations_and_explains_what_it_skipped() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    register_consenting(&app, "ann", "Ann Lee").await;
    app.referral_code_of("carl").await;
    let invite = "mutation($emails: [String!]!) { inviteFriends(emails: $emails, message: \"You'll love it\") { sent skipped { email reason } } }";
    let response = app
        .graphql(
            Some(&app.customer_token("ann")),
            invite,
            json!({ "emails": ["dora@example.com", "not-an-email", "carl@example.com", "ann@example.com", "DORA@example.com"] }),
        )
        .await;
    let result = &data(&response)["inviteFriends"];
    assert_eq!(result["sent"], json!(["dora@example.com"]));
    let reasons: Vec<(String, String)> = result["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["email"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("not-an-email".into(), "MALFORMED".into()),
            ("carl@example.com".into(), "NOT_INVITABLE".into()),
            ("ann@example.com".into(), "OWN_ADDRESS".into()),
            ("DORA@example.com".into(), "ALREADY_INVITED".into()),
        ]
    );
    // The shop's backend, inviting for ann, is told why.
    let as_service = app
        .graphql(
            Some(&app.service_token()),
            "mutation { inviteFriends(customerExternalId: \"ann\", emails: [\"carl@example.com\"]) { skipped { reason } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&as_service)["inviteFriends"]["skipped"],
        json!([{ "reason": "ALREADY_CUSTOMER" }])
    );
    app.deliver_emails().await;
    let received = to(&smtp.received(), "dora@example.com");
    assert_eq!(received.len(), 1);
    let invitation = &received[0];
    assert_eq!(
        invitation.subject(),
        "An invitation from Ann: 10.00 USD off"
    );
    assert!(invitation.text().contains("You'll love it"));
    let code = app.referral_code_of("ann").await;
    assert!(
        invitation
            .html()
            .contains(&format!("https://shop.example/r/{code}"))
    );
}

#[tokio::test]
async fn invitations_are_limited_per_call_and_per_day() {
    let app = TestApp::spawn().await;
    app.referral_code_of("ann").await;
    let invite = "mutation($emails: [String!]!) { inviteFriends(emails: $emails) { sent } }";
    let token = app.customer_token("ann");
    let batch = |start: usize, count: usize| -> Vec<String> {
        (start..start + count)
            .map(|i| format!("friend{i}@example.com"))
            .collect()
    };
    let too_many = app
        .graphql(Some(&token), invite, json!({ "emails": batch(0, 21) }))
        .await;
    assert_error(&too_many, "BAD_USER_INPUT");
    for start in [0, 20] {
        let ok = app
            .graphql(Some(&token), invite, json!({ "emails": batch(start, 20) }))
            .await;
        assert_eq!(
            data(&ok)["inviteFriends"]["sent"].as_array().unwrap().len(),
            20
        );
    }
    let over = app
        .graphql(Some(&token), invite, json!({ "emails": batch(40, 11) }))
        .await;
    let message = assert_error(&over, "BAD_USER_INPUT");
    assert!(message.contains("10 left today"), "{message}");
    app.clock.advance(Duration::hours(25));
    let token = app.customer_token("ann");
    let next_day = app
        .graphql(Some(&token), invite, json!({ "emails": batch(40, 11) }))
        .await;
    assert_eq!(
        data(&next_day)["inviteFriends"]["sent"]
            .as_array()
            .unwrap()
            .len(),
        11
    );
}

async fn unsubscribe_url_for(app: &TestApp, smtp: &SmtpServer) -> String {
    register_consenting(app, "ann", "Ann Lee").await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    app.deliver_emails().await;
    let joined = to(&smtp.received(), "ann@example.com")
        .pop()
        .expect("friend_joined");
    let header = joined.header("List-Unsubscribe").unwrap();
    header.trim_matches(|c| c == '<' || c == '>').to_owned()
}

async fn marketing_after_unsubscribing(app: &TestApp, smtp: &SmtpServer) -> usize {
    let before = smtp.received().len();
    app.refer("ann", "cat", json!({})).await;
    app.deliver_emails().await;
    smtp.received().len() - before
}

#[tokio::test]
async fn the_unsubscribe_link_shows_a_page_whose_button_unsubscribes() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    let url = unsubscribe_url_for(&app, &smtp).await;
    let path = url.strip_prefix("https://shop.example").unwrap();

    let page = app.get(path).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("ann@example.com") && html.contains("method=\"post\""),
        "{html}"
    );
    assert_eq!(
        marketing_after_unsubscribing(&app, &smtp).await,
        1,
        "a GET alone changes nothing"
    );

    let posted = app
        .client
        .post(format!("{}{path}", app.address))
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(marketing_after_unsubscribing(&app, &smtp).await, 0);
    let consent = app
        .graphql(
            Some(&app.admin_token()),
            "{ customer(externalId: \"ann\") { marketingConsent } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&consent)["customer"]["marketingConsent"], false);
}

#[tokio::test]
async fn one_click_post_and_the_mutation_unsubscribe_and_a_tampered_token_changes_nothing() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    let url = unsubscribe_url_for(&app, &smtp).await;
    let path = url.strip_prefix("https://shop.example").unwrap();
    let token = path.split("token=").nth(1).unwrap().to_owned();

    let tampered = format!("{}x", token);
    let bad_page = app
        .client
        .post(format!("{}/unsubscribe?token={tampered}", app.address))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_page.status(), 400);
    let bad = app
        .graphql(
            None,
            "mutation($t: String!) { unsubscribe(token: $t) { email } }",
            json!({ "t": tampered }),
        )
        .await;
    assert_error(&bad, "BAD_USER_INPUT");
    assert_eq!(
        marketing_after_unsubscribing(&app, &smtp).await,
        1,
        "nothing changed"
    );

    let done = app
        .graphql(
            None,
            "mutation($t: String!) { unsubscribe(token: $t) { email } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(data(&done)["unsubscribe"]["email"], "ann@example.com");
    assert_eq!(marketing_after_unsubscribing(&app, &smtp).await, 0);
}

#[tokio::test]
async fn a_temporary_failure_is_retried_with_backoff_until_the_server_recovers() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    smtp.fail_temporarily(100);

    assert_eq!(app.deliver_emails().await.retried, 2);
    let pending = app.email_deliveries().await;
    assert!(
        pending
            .iter()
            .all(|d| d["status"] == "PENDING" && d["attempts"] == 1)
    );
    assert!(pending[0]["lastError"].as_str().unwrap().contains("451"));
    let message_ids: Vec<Value> = pending.iter().map(|d| d["messageId"].clone()).collect();
    assert_eq!(
        app.deliver_emails().await,
        Default::default(),
        "not due before the backoff"
    );

    app.clock.advance(Duration::minutes(2));
    assert_eq!(app.deliver_emails().await.retried, 2);
    smtp.fail_temporarily(0);
    app.clock.advance(Duration::minutes(5));
    assert_eq!(app.deliver_emails().await.sent, 2);
    let sent = app.email_deliveries().await;
    assert!(
        sent.iter()
            .all(|d| d["status"] == "SENT" && d["attempts"] == 3 && !d["sentAt"].is_null())
    );
    assert_eq!(
        sent.iter()
            .map(|d| d["messageId"].clone())
            .collect::<Vec<_>>(),
        message_ids,
        "the same Message-ID on every try"
    );
    let arrived: Vec<String> = smtp
        .received()
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    for id in &message_ids {
        assert!(
            arrived.contains(&id.as_str().unwrap().to_owned()),
            "{id} in {arrived:?}"
        );
    }
}

#[tokio::test]
async fn after_the_last_try_an_email_is_dead_and_retry_email_queues_it_again() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[("TANDEM_MAIL_MAX_ATTEMPTS", "2")]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    smtp.fail_temporarily(100);
    app.deliver_emails().await;
    app.clock.advance(Duration::hours(1));
    assert_eq!(app.deliver_emails().await.dead, 2);
    let dead = app.email_deliveries().await;
    assert!(dead.iter().all(|d| d["status"] == "DEAD"));

    smtp.fail_temporarily(0);
    let retry = "mutation($id: ID!) { retryEmail(id: $id) { status attempts } }";
    for delivery in &dead {
        let response = app
            .graphql(
                Some(&app.admin_token()),
                retry,
                json!({ "id": delivery["id"] }),
            )
            .await;
        assert_eq!(
            data(&response)["retryEmail"],
            json!({ "status": "PENDING", "attempts": 0 })
        );
    }
    assert_eq!(app.deliver_emails().await.sent, 2);
    let again = app
        .graphql(
            Some(&app.admin_token()),
            retry,
            json!({ "id": dead[0]["id"] }),
        )
        .await;
    assert_error(&again, "CONFLICT");
}

#[tokio::test]
async fn a_refused_recipient_is_dead_at_once_and_suppressed() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    smtp.refuse_recipient("bob@example.com");
    data(&app.record_order("o-1", "bob", 5000).await);
    let report = app.deliver_emails().await;
    assert_eq!((report.sent, report.dead), (1, 1), "{report:?}");
    let bob: Vec<Value> = app
        .email_deliveries()
        .await
        .into_iter()
        .filter(|d| d["recipient"] == "bob@example.com")
        .collect();
    assert_eq!(bob[0]["status"], "DEAD");
    assert_eq!(bob[0]["attempts"], 1);
    assert!(bob[0]["lastError"].as_str().unwrap().contains("550"));

    // A bounced address gets nothing more, not even transactional email.
    data(&app.refund_order("o-1", 5000).await);
    app.deliver_emails().await;
    assert!(to(&smtp.received(), "bob@example.com").is_empty());
    let to_bob = app
        .email_deliveries()
        .await
        .into_iter()
        .filter(|d| d["recipient"] == "bob@example.com")
        .count();
    assert_eq!(to_bob, 1, "no new email was queued for the bounced address");
}

#[tokio::test]
async fn an_order_queues_no_email_to_a_referrer_whose_address_bounced() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    smtp.refuse_recipient("ann@example.com");
    data(&app.record_order("o-1", "bob", 5000).await);
    let report = app.deliver_emails().await;
    assert_eq!((report.sent, report.dead), (1, 1), "{report:?}");

    // Another friend's order pays ann again: her reward is written, her email is not.
    app.refer("ann", "cy", json!({})).await;
    data(&app.record_order("o-2", "cy", 5000).await);
    let deliveries = app.email_deliveries().await;
    let count_to = |address: &str| {
        deliveries
            .iter()
            .filter(|d| d["recipient"] == address)
            .count()
    };
    assert_eq!(count_to("ann@example.com"), 1, "{deliveries:?}");
    assert_eq!(count_to("cy@example.com"), 1, "{deliveries:?}");
    app.deliver_emails().await;
    assert_eq!(to(&smtp.received(), "ann@example.com").len(), 0);
}

#[tokio::test]
async fn nothing_is_lost_while_the_smtp_server_is_down() {
    let mut smtp = SmtpServer::reserved().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    let report = app.deliver_emails().await;
    assert_eq!(
        report.deferred, 2,
        "a refused connection pauses delivery: {report:?}"
    );
    let queued = app.email_deliveries().await;
    assert!(
        queued
            .iter()
            .all(|d| d["status"] == "PENDING" && d["attempts"] == 0),
        "an outage uses up no tries: {queued:?}"
    );
    assert!(app.deliver_emails().await.paused, "the breaker is open");
    // Hours of outage: the breaker pauses at most 10 minutes at a time, and no try is spent.
    for _ in 0..12 {
        app.clock.advance(Duration::minutes(15));
        assert_eq!(app.deliver_emails().await.deferred, 2);
    }
    assert!(
        app.email_deliveries()
            .await
            .iter()
            .all(|d| d["attempts"] == 0)
    );

    smtp.listen().await;
    app.clock.advance(Duration::minutes(15));
    assert_eq!(app.deliver_emails().await.sent, 2);
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test]
async fn a_silent_smtp_server_is_given_up_on_within_the_timeout_and_the_email_arrives_later() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[("TANDEM_SMTP_TIMEOUT", "1s")]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    smtp.go_silent(true);
    let started = std::time::Instant::now();
    let report = app.deliver_emails().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.deferred, 2, "{report:?}");
    let queued = app.email_deliveries().await;
    assert!(
        queued[0]["lastError"]
            .as_str()
            .unwrap()
            .contains("did not finish the conversation"),
        "{queued:?}"
    );

    smtp.go_silent(false);
    app.clock.advance(Duration::minutes(1));
    assert_eq!(app.deliver_emails().await.sent, 2);
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test]
async fn a_content_rejection_kills_the_message_but_leaves_the_address_usable() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    register_consenting(&app, "ann", "Ann Lee").await;
    let invite = "mutation { inviteFriends(emails: [\"dora@example.com\"]) { sent } }";
    data(
        &app.graphql(Some(&app.customer_token("ann")), invite, json!({}))
            .await,
    );
    smtp.reject_content(1);
    assert_eq!(app.deliver_emails().await.dead, 1);
    let dead = app.email_deliveries().await;
    assert!(dead[0]["lastError"].as_str().unwrap().contains("5.7.1"));
    let list = "{ suppressions { edges { node { email } } } }";
    let suppressions = app.graphql(Some(&app.admin_token()), list, json!({})).await;
    assert_eq!(data(&suppressions)["suppressions"]["edges"], json!([]));

    let retry = "mutation($id: ID!) { retryEmail(id: $id) { status } }";
    data(
        &app.graphql(
            Some(&app.admin_token()),
            retry,
            json!({ "id": dead[0]["id"] }),
        )
        .await,
    );
    assert_eq!(app.deliver_emails().await.sent, 1);
    assert_eq!(to(&smtp.received(), "dora@example.com").len(), 1);
}

#[tokio::test]
async fn an_admin_lists_and_lifts_suppressions() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    smtp.refuse_recipient("bob@example.com");
    data(&app.record_order("o-1", "bob", 5000).await);
    app.deliver_emails().await;

    let list = "query($after: String) { suppressions(first: 1, after: $after) { edges { node { email reason detail } } pageInfo { hasNextPage endCursor } } }";
    let page = app.graphql(Some(&app.admin_token()), list, json!({})).await;
    let page = &data(&page)["suppressions"];
    assert_eq!(page["edges"][0]["node"]["email"], "bob@example.com");
    assert_eq!(page["edges"][0]["node"]["reason"], "BOUNCED");
    assert!(
        page["edges"][0]["node"]["detail"]
            .as_str()
            .unwrap()
            .contains("5.1.1")
    );
    assert_eq!(page["pageInfo"]["hasNextPage"], false);
    assert_error(
        &app.graphql(Some(&app.customer_token("bob")), list, json!({}))
            .await,
        "FORBIDDEN",
    );

    let lift = "mutation($email: String!) { removeSuppression(email: $email) { email } }";
    let lifted = app
        .graphql(
            Some(&app.admin_token()),
            lift,
            json!({ "email": "Bob@Example.com" }),
        )
        .await;
    assert_eq!(
        data(&lifted)["removeSuppression"]["email"],
        "bob@example.com"
    );
    assert_error(
        &app.graphql(
            Some(&app.admin_token()),
            lift,
            json!({ "email": "bob@example.com" }),
        )
        .await,
        "NOT_FOUND",
    );
    let empty = app.graphql(Some(&app.admin_token()), list, json!({})).await;
    assert_eq!(data(&empty)["suppressions"]["edges"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_on_one_database_send_each_email_once() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.referral_code_of("ann").await;
    let invite = "mutation($emails: [String!]!) { inviteFriends(emails: $emails) { sent } }";
    let emails: Vec<String> = (0..20).map(|i| format!("friend{i}@example.com")).collect();
    data(
        &app.graphql(
            Some(&app.customer_token("ann")),
            invite,
            json!({ "emails": emails }),
        )
        .await,
    );

    let second = tandem::state::AppState::init(
        (*app.state.settings).clone(),
        std::sync::Arc::new(app.clock.clone()),
    )
    .await
    .unwrap();
    let (first_worker, second_worker) = (app.state.deliverer(), second.deliverer());
    let (a, b) = tokio::join!(
        tandem::delivery::deliver_due(&first_worker),
        tandem::delivery::deliver_due(&second_worker)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 20, "{a:?} {b:?}");
    let mut recipients: Vec<String> = smtp.received().iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 20);
    assert_eq!(smtp.received().len(), 20, "no email twice");
}

#[tokio::test]
async fn without_smtp_emails_are_written_as_eml_files() {
    let app = TestApp::spawn().await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    assert_eq!(app.deliver_emails().await.sent, 2);
    let dir = &app.state.settings.mail.dir;
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 2);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(text.contains("Subject: You earned"), "{text}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_template_folder_restyles_emails_without_a_rebuild() {
    let dir = std::env::temp_dir().join(format!("tandem-brand-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("reward_earned")).unwrap();
    std::fs::write(
        dir.join("reward_earned/subject.txt"),
        "Brand: {{ reward }} for {{ name }}",
    )
    .unwrap();
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[("TANDEM_TEMPLATE_DIR", dir.to_str().unwrap())]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    app.deliver_emails().await;
    let subjects: Vec<String> = smtp.received().iter().map(|m| m.subject()).collect();
    assert!(
        subjects.contains(&"Brand: 500 points for Ann".to_owned()),
        "{subjects:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_refund_that_reverses_rewards_tells_each_side_once() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    register_consenting(&app, "ann", "Ann Lee").await;
    data(&app.refer("ann", "bob", json!({})).await);
    data(&app.record_order("o-1", "bob", 5000).await);
    app.deliver_emails().await;
    let before = smtp.received().len();
    data(&app.refund_order("o-1", 3000).await);
    data(&app.refund_order("o-1", 2000).await);
    app.deliver_emails().await;
    let notices: Vec<_> = smtp.received()[before..]
        .iter()
        .filter(|r| r.subject().contains("was cancelled"))
        .map(|r| r.to.join(","))
        .collect();
    let mut notices = notices;
    notices.sort();
    assert_eq!(notices, ["ann@example.com", "bob@example.com"]);
}

#[tokio::test]
async fn sent_emails_are_pruned_after_the_retention_period() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[("TANDEM_OUTBOX_RETENTION_DAYS", "30")]).await;
    app.create_campaign(points_campaign("Test")).await;
    app.refer("ann", "bob", json!({})).await;
    data(&app.record_order("o-1", "bob", 5000).await);
    assert_eq!(app.deliver_emails().await.sent, 2);
    app.clock.advance(Duration::days(29));
    assert_eq!(app.run_scheduler().await.emails_pruned, 0);
    assert_eq!(app.email_deliveries().await.len(), 2);
    app.clock.advance(Duration::days(2));
    assert_eq!(app.run_scheduler().await.emails_pruned, 2);
    assert!(app.email_deliveries().await.is_empty());
}

#[tokio::test]
async fn names_that_would_spoof_a_subject_reach_it_only_as_a_clean_first_name() {
    let smtp = SmtpServer::start().await;
    let app = app_with_smtp(&smtp, &[]).await;
    app.create_campaign(points_campaign("Test")).await;
    register_consenting(&app, "ann", "\u{202E}gnp.exe\u{200B} Lee").await;
    data(
        &app.refer("ann", "bob", json!({ "name": "Your account is suspended" }))
            .await,
    );
    data(
        &app.graphql(
            Some(&app.customer_token("ann")),
            "mutation { inviteFriends(emails: [\"dora@example.com\"]) { sent } }",
            json!({}),
        )
        .await,
    );
    app.deliver_emails().await;
    let subjects: Vec<String> = smtp.received().iter().map(|m| m.subject()).collect();
    assert!(
        subjects.contains(&"An invitation from gnp.exe: 10.00 USD off".to_owned()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"Your friend Your joined with your link".to_owned()),
        "{subjects:?}"
    );
    for subject in &subjects {
        assert!(
            !subject
                .chars()
                .any(|c| matches!(c, '\u{200B}'..='\u{202E}')),
            "{subject:?}"
        );
        assert!(!subject.contains("account is suspended"), "{subject}");
    }
}
