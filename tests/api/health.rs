use crate::common::TestApp;

#[tokio::test]
async fn health_answers_200_while_the_process_lives() {
    let app = TestApp::spawn().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn ready_answers_200_when_the_database_answers() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/ready").await.status(), 200);
}

#[tokio::test]
async fn ready_answers_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.state.db.clone().close().await.expect("the pool closes");
    assert_eq!(app.get("/ready").await.status(), 503);
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn ready_answers_503_when_the_schema_is_gone() {
    use sea_orm::ConnectionTrait;

    let app = TestApp::spawn().await;
    assert_eq!(app.get("/ready").await.status(), 200);
    app.state
        .db
        .execute_unprepared("DROP TABLE seaql_migrations")
        .await
        .unwrap();
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("tandem migrate"));
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn graphiql_is_served_to_a_browser() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("graphiql"));
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_400_not_500() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_query_that_does_not_parse_gets_a_coded_error() {
    let app = TestApp::spawn().await;
    let response = app
        .graphql(None, "{ customers { ", serde_json::json!({}))
        .await;
    crate::common::assert_error(&response, "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_answers_503_while_a_worker_is_down_and_200_once_it_restarted() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tandem::jobs::supervisor::{Backoff, supervise};

    let app = TestApp::spawn().await;
    let runs = Arc::new(AtomicUsize::new(0));
    let started = runs.clone();
    let backoff = Backoff {
        first: Duration::from_millis(300),
        longest: Duration::from_secs(5),
    };
    tokio::spawn(supervise(
        app.state.workers.clone(),
        app.state.shutdown.clone(),
        "flaky",
        backoff,
        move || {
            let run = started.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 0 {
                    panic!("a bad row");
                }
                std::future::pending::<()>().await;
            }
        },
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        let response = app.get("/ready").await;
        let status = response.status().as_u16();
        if seen.last() != Some(&status) {
            let body = response.text().await.unwrap_or_default();
            if status == 503 {
                assert!(
                    body.contains("flaky") && body.contains("a bad row"),
                    "{body}"
                );
            }
            seen.push(status);
        }
        if seen.ends_with(&[503, 200]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.ends_with(&[503, 200]), "{seen:?}");
    let flaky = app.state.workers.get("flaky").unwrap();
    assert!(flaky.up);
    assert_eq!(flaky.restarts, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_says_when_every_database_connection_is_taken_and_recovers_when_one_frees() {
    use sea_orm::TransactionTrait;

    let app = TestApp::spawn_with(&[
        ("TANDEM_DB_POOL_SIZE", "3"),
        ("TANDEM_REQUEST_TIMEOUT", "2s"),
    ])
    .await;
    crate::common::data(&app.register_customer("ann", "ann@example.com").await);
    assert_eq!(app.get("/ready").await.status(), 200);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(app.state.db.begin().await.expect("a connection"));
    }
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("pool is exhausted"));
    let me = app
        .graphql(
            Some(&app.customer_token("ann")),
            "{ me { pointsBalance } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        crate::common::error_code(&me),
        Some("UNAVAILABLE"),
        "no connection is free, and the answer says so before the request's time runs out: {me}"
    );
    for transaction in held {
        transaction.rollback().await.unwrap();
    }
    assert_eq!(app.get("/ready").await.status(), 200);
    crate::common::data(
        &app.graphql(
            Some(&app.customer_token("ann")),
            "{ me { pointsBalance } }",
            serde_json::json!({}),
        )
        .await,
    );
}

#[tokio::test]
async fn a_database_that_allows_too_few_connections_refuses_the_start_with_the_reason() {
    use sea_orm::ConnectionTrait;

    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        return; // SQLite has no connection limit.
    };
    if admin_url.is_empty() {
        return;
    }
    let database = crate::common::TestDatabase::create().await;
    let name = database.url().rsplit('/').next().unwrap().to_owned();
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("ALTER DATABASE {name} CONNECTION LIMIT 3"))
        .await
        .unwrap();
    admin.close().await.ok();
    let env = std::collections::HashMap::from([
        ("DATABASE_URL".to_owned(), database.url().to_owned()),
        (
            "TANDEM_JWT_SECRET".to_owned(),
            crate::common::TEST_SECRET.to_owned(),
        ),
    ]);
    let settings = tandem::config::Settings::from_sources(&env, None).unwrap();
    let clock = std::sync::Arc::new(tandem::clock::ManualClock::new(chrono::Utc::now()));
    let refused = tandem::state::AppState::init(settings.clone(), clock.clone())
        .await
        .err()
        .expect("the start is refused");
    let message = refused.to_string();
    assert!(message.starts_with("DATABASE_URL"), "{message}");
    assert!(message.contains("CONNECTION LIMIT"), "{message}");
    assert!(message.contains("3 connection"), "{message}");

    // At 4 it starts, with a pool of 3 beside its LISTEN connection.
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("ALTER DATABASE {name} CONNECTION LIMIT 4"))
        .await
        .unwrap();
    admin.close().await.ok();
    let state = tandem::state::AppState::init(settings, clock)
        .await
        .expect("a limit of 4 is enough");
    let pool = state.db.get_postgres_connection_pool();
    assert_eq!(pool.options().get_max_connections(), 3);
    state.db.clone().close().await.ok();
}
