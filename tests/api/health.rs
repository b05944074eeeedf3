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
