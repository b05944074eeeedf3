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
