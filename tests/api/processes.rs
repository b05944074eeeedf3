//! Many processes on one database, as a scaled-out deployment runs: two `tandem worker` and two
//! `tandem serve --no-workers`. Every held reward and every email is completed exactly once.

use std::process::Stdio;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, Database, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tandem::entities::{email_outbox, points_ledger_entry, referral, reward};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::cli::{listening_url, tandem, work_dir};
use crate::common::smtp::SmtpServer;
use crate::common::{REGISTER_WITH_REFERRAL, TestDatabase, ws};

const FRIENDS: usize = 10;

/// Starts `tandem serve --no-workers` (on a migrated database) and returns it with its base URL.
async fn api(database: &TestDatabase, dir: &std::path::Path) -> (Child, String) {
    api_with(database, dir, &["--no-migrate"]).await
}

async fn api_with(
    database: &TestDatabase,
    dir: &std::path::Path,
    flags: &[&str],
) -> (Child, String) {
    let mut child = tandem(database, dir)
        .args(["serve", "--no-workers"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tandem serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the banner is printed")
        .unwrap()
        .unwrap_or_default();
    let Some(url) = first.strip_prefix("Tandem is listening on ") else {
        let mut stderr = String::new();
        let _ =
            tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr)
                .await;
        panic!("no banner ({first:?}); stderr: {stderr}");
    };
    let url = url.to_owned();
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move { while let Ok(Some(_)) = errors.next_line().await {} });
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

async fn mint(database: &TestDatabase, dir: &std::path::Path, role: &str) -> String {
    let output = tandem(database, dir)
        .args(["token", "--role", role, "--sub", "ops", "--ttl", "1h"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn call(url: &str, token: &str, query: &str, variables: Value) -> Value {
    let response: Value = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(response.get("errors").is_none(), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_and_two_api_servers_complete_every_hold_and_email_once() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let migrated = tandem(&database, &dir)
        .arg("migrate")
        .output()
        .await
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();

    let (_a, url_a) = api(&database, &dir).await;
    let (_b, url_b) = api(&database, &dir).await;
    let workers: Vec<Child> = (0..2)
        .map(|_| {
            tandem(&database, &dir)
                .args(["worker", "--no-migrate"])
                .env("TANDEM_SMTP_URL", &smtp_url)
                .env("TANDEM_SCHEDULER_INTERVAL", "200ms")
                .env("TANDEM_MAIL_POLL_INTERVAL", "200ms")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tandem worker starts")
        })
        .collect();

    let admin = mint(&database, &dir, "admin").await;
    let service = mint(&database, &dir, "service").await;
    call(
        &url_a,
        &admin,
        "mutation($input: CampaignInput!) { createCampaign(input: $input) { id } }",
        json!({ "input": {
            "name": "Held",
            "holdDays": 7,
            "referrerReward": { "kind": "POINTS", "amount": 500 },
            "refereeReward": { "kind": "FIXED_COUPON", "amount": 1000 },
        } }),
    )
    .await;
    let ann = call(
        &url_a,
        &service,
        "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { customer { referralCode } } }",
        json!({ "input": { "externalId": "ann", "email": "ann@example.com", "name": "Ann", "marketingConsent": true } }),
    )
    .await;
    let code = ann["data"]["registerCustomer"]["customer"]["referralCode"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..FRIENDS {
        let url = if i % 2 == 0 { &url_a } else { &url_b };
        call(
            url,
            &service,
            REGISTER_WITH_REFERRAL,
            json!({ "input": { "externalId": format!("friend{i}"), "email": format!("friend{i}@example.com"), "referralCode": code } }),
        )
        .await;
        call(
            url,
            &service,
            "mutation($input: OrderInput!) { recordOrder(input: $input) { id } }",
            json!({ "input": { "externalId": format!("o-{i}"), "customerExternalId": format!("friend{i}"), "amount": 5000, "currency": "USD" } }),
        )
        .await;
    }

    // The holds end now: the workers' clocks are real, so the test moves the release dates.
    let db = Database::connect(database.url()).await.unwrap();
    reward::Entity::update_many()
        .col_expr(
            reward::Column::ReleaseAt,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .filter(reward::Column::Status.eq("PENDING"))
        .exec(&db)
        .await
        .unwrap();

    // 10 friend_joined, then 20 reward_earned once the holds are released.
    let expected_emails = (FRIENDS * 3) as u64;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rewarded = referral::Entity::find()
            .filter(referral::Column::Status.eq("REWARDED"))
            .count(&db)
            .await
            .unwrap();
        let sent = email_outbox::Entity::find()
            .filter(email_outbox::Column::Status.eq("SENT"))
            .count(&db)
            .await
            .unwrap();
        if rewarded == FRIENDS as u64 && sent == expected_emails {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 90 s: {rewarded} referrals rewarded, {sent} emails sent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A moment more, so a double send would have arrived.
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(workers);

    let issued = reward::Entity::find()
        .filter(reward::Column::Status.eq("ISSUED"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(issued, (FRIENDS * 2) as u64);
    let credits = points_ledger_entry::Entity::find()
        .filter(points_ledger_entry::Column::SourceKind.eq("reward"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(credits, FRIENDS as u64, "one credit per referrer reward");
    let outbox = email_outbox::Entity::find().count(&db).await.unwrap();
    assert_eq!(outbox, expected_emails);
    assert_each_arrived_once(&smtp, expected_emails);
}

/// `expected` emails reached the SMTP server, each once (by Message-ID).
fn assert_each_arrived_once(smtp: &SmtpServer, expected: u64) {
    let received = smtp.received();
    let mut ids: Vec<String> = received
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(received.len() as u64, expected, "each email arrived once");
    assert_eq!(ids.len() as u64, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_started_at_once_on_a_fresh_database_all_migrate_it_and_serve() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let servers = futures::future::join_all((0..3).map(|_| api_with(&database, &dir, &[]))).await;
    for (_, url) in &servers {
        let ready = reqwest::get(format!("{url}/ready")).await.unwrap();
        assert_eq!(ready.status(), 200, "{url}");
    }
}

const REFERRERS: usize = 50;
const FRIENDS_EACH: usize = 10;
const CARTS: usize = 200;

/// Runs `calls` requests, `parallel` at a time.
async fn in_parallel<F, Fut>(calls: usize, parallel: usize, call: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::StreamExt;
    futures::stream::iter((0..calls).map(call))
        .buffer_unordered(parallel)
        .collect::<Vec<()>>()
        .await;
}

/// The deployment docs/scaling.md describes, at a size where races show: 500 first orders that
/// qualify referrals and 200 carts left behind, sent through two API servers at once, with two
/// workers paying and mailing. Every reward, ledger entry and email exists exactly once, and a
/// subscription on one server hears what was done through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_orders_and_two_hundred_carts_across_two_servers_and_two_workers_happen_once()
{
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let migrated = tandem(&database, &dir)
        .arg("migrate")
        .output()
        .await
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();
    let limits = [
        ("TANDEM_SIGNUP_IP_HOURLY_LIMIT", "100000"),
        ("TANDEM_REFERRAL_DAILY_LIMIT", "1000"),
        ("TANDEM_CART_REMINDER_AFTER", "1s"),
        ("TANDEM_CART_DISCOUNT_AFTER", "1h"),
        ("TANDEM_CART_LAST_CALL_AFTER", "2h"),
    ];
    let server = |_: usize| {
        let mut command = tandem(&database, &dir);
        command
            .args(["serve", "--no-workers", "--no-migrate"])
            .envs(limits)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    };
    let mut urls = Vec::new();
    let mut servers = Vec::new();
    for n in 0..2 {
        let mut child = server(n).spawn().expect("tandem serve starts");
        urls.push(listening_url(&mut child).await);
        servers.push(child);
    }
    let workers: Vec<Child> = (0..2)
        .map(|_| {
            tandem(&database, &dir)
                .args(["worker", "--no-migrate"])
                .envs(limits)
                .env("TANDEM_SMTP_URL", &smtp_url)
                .env("TANDEM_SCHEDULER_INTERVAL", "300ms")
                .env("TANDEM_MAIL_POLL_INTERVAL", "200ms")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tandem worker starts")
        })
        .collect();
    let admin = mint(&database, &dir, "admin").await;
    let service = mint(&database, &dir, "service").await;
    let url = |n: usize| urls[n % 2].as_str();
    call(
        url(0),
        &admin,
        "mutation($input: CampaignInput!) { createCampaign(input: $input) { id } }",
        json!({ "input": {
            "name": "Both sides",
            "referrerReward": { "kind": "POINTS", "amount": 500 },
            "refereeReward": { "kind": "FIXED_COUPON", "amount": 1000 },
        } }),
    )
    .await;

    let register = "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { customer { referralCode } } }";
    let codes: Vec<String> = {
        let codes = std::sync::Mutex::new(vec![String::new(); REFERRERS]);
        in_parallel(REFERRERS, 16, |r| {
            let (service, codes) = (&service, &codes);
            async move {
                let answer = call(
                    url(r),
                    service,
                    register,
                    json!({ "input": { "externalId": format!("referrer{r}"), "email": format!("referrer{r}@example.com"), "name": format!("Referrer {r}"), "marketingConsent": true } }),
                )
                .await;
                codes.lock().unwrap()[r] = answer["data"]["registerCustomer"]["customer"]
                    ["referralCode"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            }
        })
        .await;
        codes.into_inner().unwrap()
    };

    // A subscription on server 0 hears a referral made through server 1.
    let mut socket = ws::connect(url(0), &admin).await;
    ws::subscribe(
        &mut socket,
        "r",
        "subscription { referralEvents { referralId status } }",
    )
    .await;
    let probes = std::cell::Cell::new(0);
    let heard = ws::until_heard(&mut socket, "r", || {
        let n = probes.get();
        probes.set(n + 1);
        let (service, code) = (&service, &codes[0]);
        async move {
            call(
                url(1),
                service,
                REGISTER_WITH_REFERRAL,
                json!({ "input": { "externalId": format!("probe{n}"), "email": format!("probe{n}@example.com"), "referralCode": code } }),
            )
            .await;
        }
    })
    .await;
    assert_eq!(heard["data"]["referralEvents"]["status"], "PENDING");
    let probes = probes.get();
    drop(socket);

    let friends = REFERRERS * FRIENDS_EACH;
    in_parallel(friends, 16, |f| {
        let (service, code) = (&service, &codes[f % REFERRERS]);
        async move {
            call(
                url(f),
                service,
                REGISTER_WITH_REFERRAL,
                json!({ "input": { "externalId": format!("friend{f}"), "email": format!("friend{f}@example.com"), "referralCode": code } }),
            )
            .await;
            // The first order goes through the other server.
            call(
                url(f + 1),
                service,
                "mutation($input: OrderInput!) { recordOrder(input: $input) { id } }",
                json!({ "input": { "externalId": format!("order{f}"), "customerExternalId": format!("friend{f}"), "amount": 5000, "currency": "USD" } }),
            )
            .await;
        }
    })
    .await;
    // A customer gets one cart sequence per cooldown, so each cart has its own shopper.
    in_parallel(CARTS, 16, |c| {
        let service = &service;
        async move {
            call(
                url(c),
                service,
                register,
                json!({ "input": { "externalId": format!("shopper{c}"), "email": format!("shopper{c}@example.com"), "marketingConsent": true } }),
            )
            .await;
            call(
                url(c),
                service,
                "mutation($input: CartInput!) { upsertCart(input: $input) { id } }",
                json!({ "input": { "externalId": format!("cart{c}"), "customerExternalId": format!("shopper{c}"),
                    "items": [{ "productId": format!("p{c}"), "name": "Mug", "unitPrice": 1200, "quantity": 1 }],
                    "checkoutUrl": format!("https://shop.example/checkout/{c}") } }),
            )
            .await;
        }
    })
    .await;

    // Per friend: friend_joined to the referrer, reward_earned to each side. Per cart: a reminder.
    let expected_emails = (friends * 3 + CARTS) as u64;
    let db = Database::connect(database.url()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let sent = email_outbox::Entity::find()
            .filter(email_outbox::Column::Status.eq("SENT"))
            .count(&db)
            .await
            .unwrap();
        if sent >= expected_emails + probes as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 240 s: {sent} of {expected_emails} emails sent"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A moment more, so a double send would have arrived.
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(workers);
    drop(servers);

    let rewarded = referral::Entity::find()
        .filter(referral::Column::Status.eq("REWARDED"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(
        rewarded, friends as u64,
        "every first order qualified its referral"
    );
    let rewards = reward::Entity::find()
        .filter(reward::Column::Side.is_in(["REFERRER", "REFEREE"]))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(rewards, (friends * 2) as u64, "one reward a side");
    let credits = points_ledger_entry::Entity::find()
        .filter(points_ledger_entry::Column::SourceKind.eq("reward"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(
        credits, friends as u64,
        "one points credit per referrer reward"
    );
    let reminders = email_outbox::Entity::find()
        .filter(email_outbox::Column::Template.eq("cart_reminder"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(reminders, CARTS as u64, "one reminder a cart");
    let outbox = email_outbox::Entity::find().count(&db).await.unwrap();
    assert_eq!(
        outbox,
        expected_emails + probes as u64,
        "the probes' friend_joined too"
    );
    assert_each_arrived_once(&smtp, outbox);
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What a server of the test build may hold above its idle size once the sockets of the soak
/// below are closed (docs/operations.md names the release build's figures).
const SOAK_GROWTH_BOUND_KIB: u64 = 24 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_holding_the_most_each_token_may_open_leave_memory_within_its_bound() {
    use crate::common::{TEST_SECRET, sign_hs256};

    let database = TestDatabase::create().await;
    let dir = work_dir();
    let mut child = tandem(&database, &dir)
        .env("TANDEM_JWT_SECRET", TEST_SECRET)
        .args(["serve", "--no-workers"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tandem serve starts");
    let url = listening_url(&mut child).await;
    let pid = child.id().expect("the server runs");
    let expires = chrono::Utc::now().timestamp() + 3600;
    let tokens: Vec<String> = (0..4)
        .map(|n| {
            sign_hs256(
                &json!({ "sub": format!("soak-{n}"), "role": "admin", "exp": expires }),
                TEST_SECRET,
            )
        })
        .collect();
    let idle = rss_kib(pid);
    let mut held = Vec::new();
    let mut after_close = Vec::new();
    for round in 0..3 {
        let mut sockets = Vec::new();
        for token in &tokens {
            // 49 + 49 + 2: the default bound of 100 a token, each socket under its own 50.
            for (s, count) in [49, 49, 2].into_iter().enumerate() {
                let mut socket = ws::connect(&url, token).await;
                for id in 0..count {
                    ws::subscribe(
                        &mut socket,
                        &format!("{s}-{id}"),
                        "subscription { referralEvents { status reasons } }",
                    )
                    .await;
                }
                // Messages are taken in order: once this answers, the 50 before it run.
                ws::subscribe(&mut socket, "probe", "{ __typename }").await;
                let answer = ws::next_message(&mut socket).await.unwrap();
                if s == 2 {
                    // The token's 101st operation is refused.
                    assert_eq!(answer["type"], "error", "{answer}");
                    assert_eq!(answer["payload"][0]["extensions"]["code"], "RATE_LIMITED");
                } else {
                    assert_eq!(answer["type"], "next", "{answer}");
                }
                sockets.push(socket);
            }
        }
        held.push(rss_kib(pid));
        drop(sockets);
        tokio::time::sleep(Duration::from_millis(500)).await;
        after_close.push(rss_kib(pid));
        eprintln!(
            "soak round {round}: idle {idle} KiB, holding 400 subscriptions {} KiB, closed {} KiB",
            held[round], after_close[round]
        );
    }
    let last = *after_close.last().unwrap();
    assert!(
        last <= idle + SOAK_GROWTH_BOUND_KIB,
        "after three rounds the server holds {last} KiB (idle {idle} KiB)"
    );
    assert!(
        held[2] <= held[0] + 16 * 1024,
        "rounds reuse what the first one took: {held:?}"
    );
    child.kill().await.ok();
}
