//! Captures the debug-level log of logins that succeed and fail, and checks
//! what reaches it: never a secret, token or code, but the warnings an
//! operator needs.
//!
//! This is its own test binary because it installs the global subscriber,
//! which every test here shares.

#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
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

/// Installs the capturing subscriber once for this binary and returns its buffer.
fn captured_log() -> &'static CapturedLog {
    static CAPTURED: OnceLock<CapturedLog> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = CapturedLog::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        captured
    })
}

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
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
    let captured = captured_log();
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

    let log = captured.text();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_graph_version_logged_once() {
    let captured = captured_log();
    let app = spawn_app(TestOptions {
        graph_version: Some("v19.0".to_owned()),
        ..TestOptions::default()
    })
    .await;

    let first = app.log_in().await;
    let second = app.log_in().await;

    assert_eq!(first.status(), 200, "an upgraded version still works");
    assert_eq!(second.status(), 200, "an upgraded version still works");
    let log = captured.text();
    let warning = "instead of the requested v19.0";
    assert_eq!(
        log.matches(warning).count(),
        1,
        "one warning naming both versions: {log}"
    );
    assert!(
        log.contains("API version v21.0"),
        "the warning names the served version: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_rate_limit_usage_warned() {
    let captured = captured_log();
    let app = spawn_app(TestOptions::default()).await;
    app.sandbox.inject(Endpoint::Accounts, Fault::RateLimited);

    let response = app.log_in().await;

    assert_eq!(response.status(), 503, "rate limited");
    let log = captured.text();
    let warning = log
        .lines()
        .find(|line| line.contains("rate-limit usage is at 100%"))
        .unwrap_or_else(|| panic!("no usage warning: {log}"));
    assert!(
        warning.contains("WARN"),
        "logged at warning level: {warning}"
    );
    assert!(
        warning.contains("call_count"),
        "the header is in the line: {warning}"
    );
}
