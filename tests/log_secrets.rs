//! Captures the debug-level log of logins that succeed and fail, and checks
//! that no secret, token or code reaches it.
//!
//! This is its own test binary because it installs the global subscriber.

#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use facebook_oauth::sandbox::{Endpoint, Fault, SandboxConfig};
use helpers::{TestApp, TestOptions, json_body, spawn_app};

#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs one login and returns the code and every token it produced.
async fn log_in_collecting_secrets(app: &TestApp) -> Vec<String> {
    let state = app.start_login().await;
    let code = app.issue_code();
    let response = app.callback(&[("code", &code), ("state", &state)]).await;
    let body = json_body(response).await;
    let mut secrets = vec![code];
    if let Some(token) = body["token_data"]["access_token"].as_str() {
        secrets.push(token.to_owned());
    }
    for page in body["pages"]["data"].as_array().into_iter().flatten() {
        if let Some(token) = page["access_token"].as_str() {
            secrets.push(token.to_owned());
        }
    }
    secrets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_log_contains_no_secret() {
    let captured = CapturedLog::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let wrong_secret = "wrong-secret-for-the-log-test".to_owned();
    let mut secrets = vec![
        SandboxConfig::DEFAULT_APP_SECRET.to_owned(),
        wrong_secret.clone(),
    ];

    let app = spawn_app(TestOptions {
        page_count: 120,
        ..TestOptions::default()
    })
    .await;
    let successful = log_in_collecting_secrets(&app).await;
    assert!(
        successful.len() > 2,
        "the login produced a token and Page tokens"
    );
    secrets.extend(successful);

    let used_code = secrets[2].clone();
    let state = app.start_login().await;
    app.callback(&[("code", &used_code), ("state", &state)])
        .await;

    let code = app.issue_code();
    app.sandbox.age_codes(Duration::from_secs(11 * 60));
    let state = app.start_login().await;
    app.callback(&[("code", &code), ("state", &state)]).await;
    secrets.push(code);

    for fault in [
        Fault::ServerError,
        Fault::Html,
        Fault::MalformedJson,
        Fault::Redirect,
    ] {
        app.sandbox.inject(Endpoint::TokenExchange, fault);
        secrets.extend(log_in_collecting_secrets(&app).await);
        app.sandbox.clear_faults();
    }
    app.sandbox.inject(Endpoint::Accounts, Fault::RateLimited);
    secrets.extend(log_in_collecting_secrets(&app).await);

    let misconfigured = spawn_app(TestOptions {
        app_secret: Some(wrong_secret),
        ..TestOptions::default()
    })
    .await;
    secrets.extend(log_in_collecting_secrets(&misconfigured).await);

    let slow = spawn_app(TestOptions {
        timeout: Duration::from_secs(1),
        ..TestOptions::default()
    })
    .await;
    slow.sandbox.inject(
        Endpoint::TokenExchange,
        Fault::Delay(Duration::from_secs(3)),
    );
    secrets.extend(log_in_collecting_secrets(&slow).await);

    let log = String::from_utf8_lossy(&captured.0.lock().expect("log buffer")).into_owned();
    assert!(
        log.contains("request finished"),
        "the log captured the requests: {log}"
    );
    assert!(
        log.contains("facebook_app_misconfigured"),
        "the log has the errors: {log}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log contains a secret, token or code: {secret}"
        );
    }
}
