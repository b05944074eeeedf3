//! What operators watch and switch: request ids, Prometheus metrics, JSON logs, and turning
//! introspection and GraphiQL off.

use std::process::Stdio;
use std::time::Duration;

use sea_orm::{ActiveEnum, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tandem::entities::email_outbox;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::{listening_url, tandem, work_dir};
use crate::common::{TestApp, TestDatabase, data};

async fn post_with_request_id(app: &TestApp, id: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ __typename }" }));
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    request.send().await.unwrap()
}

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("every response carries a request id")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_clients_request_id_comes_back_and_one_is_made_when_it_is_missing_or_odd() {
    let app = TestApp::spawn().await;
    let sent = post_with_request_id(&app, Some("checkout-7f3a:retry.2")).await;
    assert_eq!(request_id(&sent), "checkout-7f3a:retry.2");

    let made = request_id(&post_with_request_id(&app, None).await);
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "made: {made}");
    let again = request_id(&post_with_request_id(&app, None).await);
    assert_ne!(made, again, "each request gets its own");

    for odd in ["x".repeat(129), "has spaces".into(), "new\tline".into()] {
        let replaced = request_id(&post_with_request_id(&app, Some(&odd)).await);
        assert_ne!(replaced, odd);
        assert!(uuid::Uuid::parse_str(&replaced).is_ok());
    }
    let health = app.get("/health").await;
    assert!(health.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn metrics_show_operations_outbox_pool_and_workers_after_traffic() {
    let app = TestApp::spawn().await;
    data(
        &app.register_customer("metrics-ann", "ann@example.com")
            .await,
    );
    let refused = app
        .graphql(Some(&app.service_token()), "{ nosuchfield }", json!({}))
        .await;
    assert!(refused["errors"].is_array());
    // A client's operation name is logged, never a label: labels come from the schema.
    let named = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(
            &json!({ "query": "query ClientChosenName8e1f { __typename }",
                       "operationName": "ClientChosenName8e1f" }),
        )
        .send()
        .await
        .unwrap();
    assert!(named.status().is_success());

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        "operation=\"mutation.registerCustomer\"",
        "outcome=\"ok\"",
        "operation=\"invalid\"",
        "outcome=\"refused\"",
        "operation=\"query.__typename\"",
        "tandem_graphql_operation_duration_seconds_bucket",
        "tandem_http_requests_total",
        "route=\"/graphql\"",
        "tandem_outbox_rows{status=\"PENDING\"}",
        "tandem_db_pool_connections{state=\"idle\"}",
        "tandem_db_pool_connections{state=\"in_use\"}",
        "tandem_emails_sent_total",
        "tandem_emails_failed_total",
        "tandem_scheduler_runs_total",
    ] {
        assert!(
            text.contains(expected),
            "/metrics lacks {expected}:\n{text}"
        );
    }
    assert!(!text.contains("ClientChosenName8e1f"));
    let pending = text
        .lines()
        .find(|line| line.starts_with("tandem_outbox_rows{status=\"PENDING\"}"))
        .unwrap();
    let count: f64 = pending.rsplit(' ').next().unwrap().parse().unwrap();
    let in_database = email_outbox::Entity::find()
        .filter(email_outbox::Column::Status.eq("PENDING"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, in_database as f64, "{pending}");
}

#[tokio::test]
async fn introspection_suggestions_and_graphiql_can_be_switched_off() {
    let open = TestApp::spawn().await;
    let types = open
        .graphql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(data(&types)["__schema"]["queryType"]["name"], "Query");
    let page = open
        .client
        .get(format!("{}/graphql", open.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("graphiql"));

    let closed = TestApp::spawn_with(&[
        ("TANDEM_INTROSPECTION", "false"),
        ("TANDEM_PLAYGROUND", "off"),
    ])
    .await;
    let types = closed
        .graphql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(
        types["data"]["__schema"].is_null(),
        "introspection is off: {types}"
    );
    let typo = closed
        .graphql(
            Some(&closed.admin_token()),
            "{ customerz(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await;
    let message = typo["errors"][0]["message"].as_str().unwrap();
    assert!(
        !message.contains("Did you mean"),
        "no suggestions: {message}"
    );
    let page = closed
        .client
        .get(format!("{}/graphql", closed.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        400,
        "a GET without a query, as for any client"
    );
    let body = page.text().await.unwrap();
    assert!(!body.contains("graphiql"), "no GraphiQL: {body}");
    assert!(body.contains("no query"));
}

#[tokio::test]
async fn json_logs_carry_the_request_id_operation_and_role() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let mut child = tandem(&database, &dir)
        .args(["serve", "--no-workers"])
        .env("TANDEM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,sqlx=warn,sea_orm=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tandem serve starts");
    let url = listening_url(&mut child).await;
    let response = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .header("x-request-id", "json-log-probe-1")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            let parsed: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("every log line is JSON: {line}"));
            if parsed["span"]["request_id"] == "json-log-probe-1" {
                return parsed;
            }
        }
        panic!("no log line for the request");
    })
    .await
    .expect("the request is logged");
    assert_eq!(found["span"]["operation"], "query.__typename");
    assert_eq!(found["span"]["role"], "anonymous");
    assert_eq!(found["fields"]["status"], 200);
    assert!(!found.to_string().contains('\u{1b}'), "no colour codes");
    child.kill().await.unwrap();
}

/// Starts `tandem serve` with its workers and returns it with its address (`host:port`).
async fn serve_process(
    database: &TestDatabase,
    dir: &std::path::Path,
) -> (tokio::process::Child, String) {
    let mut child = tandem(database, dir)
        .arg("serve")
        .env("TANDEM_SHUTDOWN_GRACE", "20s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tandem serve starts");
    let url = listening_url(&mut child).await;
    let address = url.strip_prefix("http://").unwrap().to_owned();
    (child, address)
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let (mut child, address) = serve_process(&database, &dir).await;

    // A request whose body is still arriving when the signal comes.
    let body = json!({ "query": "{ __typename }" }).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

    // New connections are refused once the listener closes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(&address).await.is_err() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(15),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("the request in flight is answered")
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"__typename\":\"Query\""), "{response}");

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the process exits")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn a_stopping_worker_gives_back_the_emails_it_claimed() {
    let app = TestApp::spawn().await;
    let friends = json!(["one@example.com", "two@example.com"]);
    data(&app.register_customer("stop-ann", "ann@example.com").await);
    let invited = app
        .graphql(
            Some(&app.customer_token("stop-ann")),
            "mutation($emails: [String!]!) { inviteFriends(emails: $emails) { sent } }",
            json!({ "emails": friends }),
        )
        .await;
    data(&invited);
    let waiting = email_outbox::Entity::find()
        .filter(email_outbox::Column::Status.eq("PENDING"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert!(waiting >= 2);

    app.state.shutdown.begin();
    let report = app.deliver_emails().await;
    assert_eq!(report.sent, 0);
    assert_eq!(report.deferred as u64, waiting);
    for row in email_outbox::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
    {
        assert_eq!(row.status.to_value(), "PENDING");
        assert_eq!(row.attempts, 0, "a given-back email was not tried");
        assert!(row.lease_until.is_none());
    }
}

#[tokio::test]
async fn a_worker_process_stops_on_sigterm_with_exit_0() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let mut child = tandem(&database, &dir)
        .arg("worker")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tandem worker starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if line.contains("tandem worker: delivering email") {
                return;
            }
        }
        panic!("the worker did not start");
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the worker exits")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn graphiql_works_offline_every_asset_it_names_comes_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let references: Vec<&str> = page
        .split(['"', '\''])
        .filter(|part| part.contains("graphiql/") || part.contains("://") || part.starts_with("//"))
        .collect();
    assert!(references.len() >= 5, "{page}");
    for reference in &references {
        assert!(
            reference.starts_with("/graphiql/"),
            "the page loads {reference} from elsewhere"
        );
        let asset = app.get(reference).await;
        assert_eq!(asset.status(), 200, "{reference}");
        let kind = asset.headers()["content-type"].to_str().unwrap().to_owned();
        let body = asset.bytes().await.unwrap();
        assert!(body.len() > 100, "{reference} is empty");
        if reference.ends_with(".js") {
            assert!(kind.starts_with("text/javascript"), "{reference}: {kind}");
        }
    }
    let licences = app
        .get("/graphiql/LICENSES.txt")
        .await
        .text()
        .await
        .unwrap();
    for package in ["== graphiql", "== react", "== react-dom", "MIT License"] {
        assert!(licences.contains(package), "{package}");
    }
    let script = app
        .get("/graphiql/graphiql.min.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(!script.contains("unpkg.com") && !script.contains("cdn.jsdelivr"));
    assert_eq!(app.get("/graphiql/nothing.js").await.status(), 404);
}
