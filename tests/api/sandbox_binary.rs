//! The real binary in sandbox mode, driven over HTTP as a browser would be.

use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;

use crate::helpers::{SandboxProcess, json_body, location, new_client, query_param};

/// Opens the login URL and the dialog, submits the dialog's form with
/// `choice`, and follows the redirect back to the callback.
async fn run_dialog(
    client: &reqwest::Client,
    service: &SandboxProcess,
    choice: &str,
) -> reqwest::Response {
    let login = client.get(service.login_url()).send().await.expect("login");
    assert_eq!(login.status(), 302, "login redirects to the dialog");
    let dialog_url = location(login.headers());
    assert!(
        dialog_url.starts_with(&format!("http://127.0.0.1:{}/sandbox/", service.port)),
        "the dialog is on 127.0.0.1, another site than localhost: {dialog_url}"
    );

    let dialog = client.get(&dialog_url).send().await.expect("dialog");
    assert_eq!(dialog.status(), 200, "the dialog page loads");
    let html = dialog.text().await.expect("dialog HTML");
    assert!(
        html.contains(">Continue<"),
        "the dialog has a Continue button"
    );
    assert!(html.contains(">Cancel<"), "the dialog has a Cancel button");

    let mut form = form_urlencoded::Serializer::new(String::new());
    for name in ["client_id", "redirect_uri", "state", "scope"] {
        form.append_pair(name, &query_param(&dialog_url, name).unwrap_or_default());
    }
    form.append_pair("choice", choice);
    let (path, _) = dialog_url.split_once('?').expect("dialog URL has a query");
    let confirmed = client
        .post(format!("{path}/confirm"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form.finish())
        .send()
        .await
        .expect("submit the dialog");
    assert_eq!(confirmed.status(), 303, "the dialog redirects back");
    let callback = location(confirmed.headers());
    assert!(
        callback.ends_with("#_=_"),
        "Facebook's fragment is appended: {callback}"
    );

    let (callback, _) = callback.split_once('#').expect("a fragment");
    client.get(callback).send().await.expect("callback")
}

#[tokio::test]
async fn sandbox_binary_completes_login() {
    let service = SandboxProcess::start(&["--sandbox-pages", "60"], &[]);
    let client = new_client();

    let response = run_dialog(&client, &service, "continue").await;

    assert_eq!(response.status(), 200, "the login succeeds");
    let body = json_body(response).await;
    // The request log is written by a background thread; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let printed = service.stderr.lock().expect("stderr").clone();
    for route in [
        "route=/facebook/login",
        "route=/facebook/callback",
        "route=/sandbox/{version}/dialog/oauth",
        "route=/sandbox/graph/{version}/oauth/access_token",
        "route=/sandbox/graph/{version}/me/accounts",
    ] {
        assert!(printed.contains(route), "the log names {route}: {printed}");
    }
    assert_eq!(
        body["pages"]["data"].as_array().map(Vec::len),
        Some(60),
        "every Page: {body}"
    );
    assert!(
        body["token_data"]["access_token"].is_string(),
        "a token: {body}"
    );
}

#[tokio::test]
async fn sandbox_binary_cancel_denies_access() {
    let service = SandboxProcess::start(&[], &[]);
    let client = new_client();

    let response = run_dialog(&client, &service, "cancel").await;

    assert_eq!(response.status(), 403, "Cancel is a denial");
    let body = json_body(response).await;
    assert_eq!(body["error"], "access_denied", "error code: {body}");
    assert_eq!(
        body["facebook"]["error_reason"], "user_denied",
        "Facebook's reason: {body}"
    );
}

#[tokio::test]
async fn sandbox_binary_warns_about_real_settings() {
    let service = SandboxProcess::start(
        &[],
        &[
            ("FACEBOOK_APP_ID", "42"),
            ("FACEBOOK_APP_SECRET", "real-secret-7f3a9c"),
        ],
    );
    let client = new_client();
    let response = client.get(service.login_url()).send().await.expect("login");
    let dialog_url = location(response.headers());

    let printed = service.stderr.lock().expect("stderr").clone();
    assert!(
        printed.contains("FACEBOOK_APP_ID is set but ignored"),
        "warning: {printed}"
    );
    assert!(
        !printed.contains("real-secret-7f3a9c"),
        "the real secret is not printed: {printed}"
    );
    assert_ne!(
        query_param(&dialog_url, "client_id").as_deref(),
        Some("42"),
        "the real app id is ignored"
    );
}

#[tokio::test]
async fn sigterm_exits_zero() {
    let mut service = SandboxProcess::start(&[], &[]);
    let client = new_client();
    let health = client
        .get(format!("http://127.0.0.1:{}/", service.port))
        .send()
        .await
        .expect("health check");
    assert_eq!(health.status(), 200, "the service runs");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "SIGTERM sent");

    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = service.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not stop within 15 seconds"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
}
