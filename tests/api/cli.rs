//! The `tandem` binary itself, as an operator runs it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::TestDatabase;

pub(crate) fn tandem(database: &TestDatabase, work_dir: &std::path::Path) -> Command {
    program(env!("CARGO_BIN_EXE_tandem"), database, work_dir)
}

/// `program` with the environment of a test server.
fn program(program: &str, database: &TestDatabase, work_dir: &std::path::Path) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .current_dir(work_dir)
        .env("DATABASE_URL", database.url())
        .env("TANDEM_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

/// Reads a started server's banner from its piped stdout and returns its base URL; the rest of
/// stdout is drained in the background.
pub(crate) async fn listening_url(child: &mut Child) -> String {
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let banner = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the banner is printed")
        .unwrap()
        .unwrap_or_default();
    let url = banner
        .strip_prefix("Tandem is listening on ")
        .unwrap_or_else(|| panic!("no banner: {banner:?}"))
        .to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    url
}

pub(crate) fn work_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `tandem serve` and reads its banner up to the line about tokens; returns the base URL
/// and the banner.
async fn serve(database: &TestDatabase, dir: &std::path::Path) -> (Child, String, String) {
    let mut child = tandem(database, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tandem starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut banner) = (None, String::new());
    while !banner.contains("token") {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the banner is printed")
            .unwrap()
            .expect("stdout stays open");
        if let Some(rest) = line.strip_prefix("Tandem is listening on ") {
            url = Some(rest.to_owned());
        }
        banner.push_str(&line);
        banner.push('\n');
    }
    // Keep reading, so the server never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url.expect("the banner gives the URL"), banner)
}

/// Mints a token with `tandem token`.
async fn mint(database: &TestDatabase, dir: &std::path::Path) -> String {
    let output = tandem(database, dir)
        .args(["token", "--role", "admin", "--sub", "ops", "--ttl", "1h"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

async fn customers_with(url: &str, token: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": "{ customers { edges { cursor } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn tandem_schema_prints_the_sdl() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        tandem::graphql::sdl()
    );
}

#[tokio::test]
async fn a_minted_token_survives_a_restart() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let token = mint(&database, &dir).await;
    let (child, url, _) = serve(&database, &dir).await;
    let health = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(customers_with(&url, &token).await.get("errors").is_none());
    drop(child);

    let (_child, url, _) = serve(&database, &dir).await;
    let response = customers_with(&url, &token).await;
    assert!(response.get("errors").is_none(), "{response}");
}

#[tokio::test]
async fn serve_prints_no_token_when_stdout_is_not_a_terminal() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let (_child, _, banner) = serve(&database, &dir).await;
    assert!(!banner.contains("eyJ"), "{banner}");
    assert!(banner.contains("tandem token --role admin"), "{banner}");
}

/// Runs `tandem serve` under `script`, which gives it a terminal, until the banner's token line.
async fn banner_at_a_terminal(database: &TestDatabase, extra: &[(&str, &str)]) -> String {
    let dir = work_dir();
    let mut command = program("script", database, &dir);
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["-q", "-e", "-c", env!("CARGO_BIN_EXE_tandem"), "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    while !banner.contains("token") {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the banner is printed")
            .unwrap()
            .expect("stdout stays open");
        banner.push_str(&line);
        banner.push('\n');
    }
    let _ = child.kill().await;
    banner
}

#[tokio::test]
async fn serve_prints_a_development_token_only_at_a_terminal_without_a_configured_secret() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let database = TestDatabase::create().await;
    let banner = banner_at_a_terminal(&database, &[]).await;
    assert!(
        banner.contains("Admin token (development, valid 24h): eyJ"),
        "{banner}"
    );

    let configured = banner_at_a_terminal(
        &database,
        &[(
            "TANDEM_JWT_SECRET",
            "a-configured-secret-of-at-least-32-chars",
        )],
    )
    .await;
    assert!(!configured.contains("eyJ"), "{configured}");
    assert!(configured.contains("tandem token"), "{configured}");
}

#[tokio::test]
async fn logs_carry_no_colour_codes_when_not_at_a_terminal() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let output = tandem(&database, &dir)
        .env("RUST_LOG", "info")
        .arg("migrate")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("INFO") || stderr.contains("WARN"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[tokio::test]
async fn token_mints_a_token_the_server_accepts() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let token = mint(&database, &dir).await;
    let (_child, url, _) = serve(&database, &dir).await;
    let response = customers_with(&url, &token).await;
    assert!(response.get("errors").is_none(), "{response}");
}

#[tokio::test]
async fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let output = tandem(&database, &dir)
        .env("TANDEM_BIND", "not-an-address")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("TANDEM_BIND"), "{stderr}");
}

#[tokio::test]
async fn three_processes_started_at_once_on_a_fresh_database_all_migrate_it() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    let runs: Vec<_> = (0..3)
        .map(|_| tandem(&database, &dir).arg("migrate").output())
        .collect();
    for output in futures::future::join_all(runs).await {
        let output = output.unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Migrated: a server that applies nothing starts and serves.
    let mut child = tandem(&database, &dir)
        .args(["serve", "--no-migrate"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the banner is printed")
        .unwrap()
        .unwrap_or_default();
    assert!(first.starts_with("Tandem is listening on "), "{first}");
}

#[tokio::test]
async fn serve_with_no_migrate_refuses_an_unmigrated_database() {
    let database = TestDatabase::create().await;
    let dir = work_dir();
    for command in ["serve", "worker"] {
        let output = tandem(&database, &dir)
            .args([command, "--no-migrate"])
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("tandem migrate"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}
