//! Every way a callback can fail, and what the client receives.

use std::time::{Duration, Instant};

use facebook_oauth::config::Secret;
use facebook_oauth::facebook::login_state::{LoginSigner, cookie_name, unix_now_millis};
use facebook_oauth::sandbox::{Endpoint, Fault, SandboxConfig};
use reqwest::header::COOKIE;
use serde_json::Value;

use crate::helpers::{TestApp, TestOptions, json_body, spawn_app};

/// Calls the callback with an explicit `Cookie` header and no cookie jar.
async fn call_with_cookie(
    app: &TestApp,
    query: &[(&str, &str)],
    cookie: Option<String>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(app.url("/facebook/callback"))
        .query(query);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("callback request")
}

/// Asserts the status and error code, and returns the body.
async fn expect_error(response: reqwest::Response, status: u16, code: &str, case: &str) -> Value {
    let actual = response.status().as_u16();
    let body = json_body(response).await;
    assert_eq!(actual, status, "case {case}: status, body {body}");
    assert_eq!(body["error"], code, "case {case}: error code, body {body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty()),
        "case {case}: a detail sentence, body {body}"
    );
    body
}

#[tokio::test]
async fn bad_state_never_reaches_facebook() {
    let app = spawn_app(TestOptions::default()).await;
    let signer = LoginSigner::new(
        &Secret::new(SandboxConfig::DEFAULT_APP_SECRET),
        &app.config.facebook.redirect_uri,
    );
    let code = app.issue_code();
    let now = unix_now_millis();
    let state = "AAAAAAAAAAAAAAAAAAAAAA";
    let other_state = "BBBBBBBBBBBBBBBBBBBBBB";
    let valid = format!(
        "{}={}",
        cookie_name(state),
        signer.sign_cookie_value(state, now)
    );
    let forged = format!("{}={now}.{}", cookie_name(state), "x".repeat(43));
    let expired = format!(
        "{}={}",
        cookie_name(state),
        signer.sign_cookie_value(state, now - 11 * 60 * 1000)
    );

    let cases = [
        ("state missing", None, Some(valid.clone()), "state_missing"),
        ("cookie missing", Some(state), None, "state_cookie_missing"),
        (
            "cookie forged",
            Some(state),
            Some(forged),
            "state_cookie_invalid",
        ),
        (
            "cookie expired",
            Some(state),
            Some(expired),
            "state_expired",
        ),
        (
            "state mismatched",
            Some(other_state),
            Some(valid),
            "state_mismatch",
        ),
    ];
    for (case, state, cookie, expected) in cases {
        let mut query = vec![("code", code.as_str())];
        if let Some(state) = state {
            query.push(("state", state));
        }
        let response = call_with_cookie(&app, &query, cookie).await;
        expect_error(response, 400, expected, case).await;
    }

    assert_eq!(
        app.sandbox.request_count(Endpoint::TokenExchange),
        0,
        "no code exchange"
    );
    assert_eq!(
        app.sandbox.request_count(Endpoint::Accounts),
        0,
        "no Pages request"
    );
}

#[tokio::test]
async fn rejected_state_cookie_is_cleared() {
    let app = spawn_app(TestOptions::default()).await;
    let state = "AAAAAAAAAAAAAAAAAAAAAA";
    let forged = format!(
        "{}={}.{}",
        cookie_name(state),
        unix_now_millis(),
        "x".repeat(43)
    );

    let response = call_with_cookie(&app, &[("state", state), ("code", "c")], Some(forged)).await;

    let cleared = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|cookie| cookie.starts_with(&cookie_name(state)) && cookie.contains("Max-Age=0"));
    assert!(cleared, "the forged cookie is cleared");
}

#[tokio::test]
async fn user_denied_returns_facebook_reason() {
    let app = spawn_app(TestOptions::default()).await;
    let state = app.start_login().await;
    let code = app.issue_code();

    let response = app
        .callback(&[
            ("error", "access_denied"),
            ("error_code", "200"),
            ("error_description", "Permissions error"),
            ("error_reason", "user_denied"),
            ("state", &state),
            ("code", &code),
        ])
        .await;

    let body = expect_error(response, 403, "access_denied", "user denied").await;
    assert_eq!(
        body["facebook"]["error_reason"], "user_denied",
        "Facebook's reason is kept"
    );
    assert_eq!(
        body["facebook"]["error_description"], "Permissions error",
        "description kept"
    );
    assert_eq!(
        app.sandbox.request_count(Endpoint::TokenExchange),
        0,
        "the error wins over the code"
    );
}

#[tokio::test]
async fn other_login_error_is_reported() {
    let app = spawn_app(TestOptions::default()).await;
    let state = app.start_login().await;

    let response = app
        .callback(&[("error", "server_error"), ("state", &state)])
        .await;

    let body = expect_error(response, 400, "facebook_login_failed", "server_error").await;
    assert_eq!(
        body["facebook"]["error"], "server_error",
        "Facebook's error is kept"
    );
}

#[tokio::test]
async fn missing_code_rejected() {
    let app = spawn_app(TestOptions::default()).await;
    let state = app.start_login().await;

    let response = app.callback(&[("state", &state)]).await;

    expect_error(response, 400, "code_missing", "no code").await;
}

#[tokio::test]
async fn repeated_parameter_rejected() {
    let app = spawn_app(TestOptions::default()).await;

    let response = app.callback(&[("state", "a"), ("state", "b")]).await;

    expect_error(response, 400, "invalid_query", "state twice").await;
}

#[tokio::test]
async fn used_code_rejected() {
    let app = spawn_app(TestOptions::default()).await;
    let code = app.issue_code();
    let first_state = app.start_login().await;
    let first = app
        .callback(&[("code", &code), ("state", &first_state)])
        .await;
    assert_eq!(first.status(), 200, "first use succeeds");

    let second_state = app.start_login().await;
    let second = app
        .callback(&[("code", &code), ("state", &second_state)])
        .await;

    let body = expect_error(second, 400, "code_used", "used code").await;
    assert_eq!(
        body["facebook"]["error_subcode"], 36009,
        "Facebook's subcode is passed on"
    );
}

#[tokio::test]
async fn expired_code_rejected() {
    let app = spawn_app(TestOptions::default()).await;
    let code = app.issue_code();
    app.sandbox.age_codes(Duration::from_secs(11 * 60));
    let state = app.start_login().await;

    let response = app.callback(&[("code", &code), ("state", &state)]).await;

    let body = expect_error(response, 400, "code_expired", "expired code").await;
    assert_eq!(
        body["facebook"]["error_subcode"], 36007,
        "Facebook's subcode is passed on"
    );
}

#[tokio::test]
async fn unknown_code_rejected() {
    let app = spawn_app(TestOptions::default()).await;
    let state = app.start_login().await;

    let response = app
        .callback(&[("code", "not-a-code"), ("state", &state)])
        .await;

    expect_error(response, 400, "code_invalid", "unknown code").await;
}

#[tokio::test]
async fn wrong_app_secret_names_setting() {
    let app = spawn_app(TestOptions {
        app_secret: Some("wrong-secret".to_owned()),
        ..TestOptions::default()
    })
    .await;

    let response = app.log_in().await;

    let body = expect_error(response, 500, "facebook_app_misconfigured", "wrong secret").await;
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("FACEBOOK_APP_SECRET"),
        "detail names the setting: {detail}"
    );
    assert!(
        !body.to_string().contains("wrong-secret"),
        "the secret is not echoed: {body}"
    );
}

#[tokio::test]
async fn facebook_failures_give_502() {
    let cases = [
        ("HTTP 500", Endpoint::TokenExchange, Fault::ServerError),
        ("HTML body", Endpoint::TokenExchange, Fault::Html),
        (
            "malformed JSON",
            Endpoint::TokenExchange,
            Fault::MalformedJson,
        ),
        ("redirect", Endpoint::TokenExchange, Fault::Redirect),
        ("Pages HTTP 500", Endpoint::Accounts, Fault::ServerError),
        ("Pages HTML body", Endpoint::Accounts, Fault::Html),
        (
            "Pages malformed JSON",
            Endpoint::Accounts,
            Fault::MalformedJson,
        ),
        (
            "Pages body too large",
            Endpoint::Accounts,
            Fault::OversizedBody(5 * 1024 * 1024),
        ),
    ];
    for (case, endpoint, fault) in cases {
        let app = spawn_app(TestOptions::default()).await;
        app.sandbox.inject(endpoint, fault);

        let response = app.log_in().await;

        expect_error(response, 502, "facebook_error", case).await;
        assert_eq!(
            app.sandbox.request_count(Endpoint::TokenExchange),
            1,
            "case {case}: the code exchange is never retried"
        );
    }
}

#[tokio::test]
async fn slow_facebook_times_out() {
    let app = spawn_app(TestOptions {
        timeout: Duration::from_secs(1),
        ..TestOptions::default()
    })
    .await;
    app.sandbox.inject(
        Endpoint::TokenExchange,
        Fault::Delay(Duration::from_secs(5)),
    );
    let state = app.start_login().await;
    let code = app.issue_code();
    let started = Instant::now();

    let response = app.callback(&[("code", &code), ("state", &state)]).await;

    let elapsed = started.elapsed();
    expect_error(response, 504, "facebook_timeout", "slow exchange").await;
    assert!(
        elapsed < Duration::from_secs(4),
        "the 1-second timeout ends the call long before Facebook answers: {elapsed:?}"
    );
}

#[tokio::test]
async fn invalid_token_gives_401() {
    let app = spawn_app(TestOptions::default()).await;
    app.sandbox.inject(
        Endpoint::Accounts,
        Fault::GraphError {
            status: 400,
            code: 190,
            subcode: Some(463),
            message: "Error validating access token: Session has expired".to_owned(),
            error_type: "OAuthException".to_owned(),
        },
    );

    let response = app.log_in().await;

    expect_error(response, 401, "facebook_token_invalid", "expired token").await;
}

#[tokio::test]
async fn missing_permission_gives_403() {
    let app = spawn_app(TestOptions::default()).await;
    app.sandbox.inject(
        Endpoint::Accounts,
        Fault::GraphError {
            status: 403,
            code: 200,
            subcode: None,
            message: "(#200) Requires pages_show_list permission".to_owned(),
            error_type: "OAuthException".to_owned(),
        },
    );

    let response = app.log_in().await;

    expect_error(
        response,
        403,
        "facebook_permission_missing",
        "no permission",
    )
    .await;
}

#[tokio::test]
async fn rate_limit_gives_503_with_retry_after() {
    let app = spawn_app(TestOptions::default()).await;
    app.sandbox.inject(Endpoint::Accounts, Fault::RateLimited);

    let response = app.log_in().await;

    let retry_after = response.headers().get("retry-after").cloned();
    expect_error(response, 503, "facebook_rate_limited", "rate limited").await;
    assert!(retry_after.is_some(), "Retry-After is sent");
}

#[tokio::test]
async fn unknown_route_gives_json_404() {
    let app = spawn_app(TestOptions::default()).await;

    let response = app
        .client
        .get(app.url("/nope"))
        .send()
        .await
        .expect("request");
    expect_error(response, 404, "not_found", "unknown path").await;

    let response = app
        .client
        .post(app.url("/facebook/login"))
        .send()
        .await
        .expect("request");
    expect_error(response, 405, "method_not_allowed", "POST login").await;
}

#[tokio::test]
async fn paging_past_cap_gives_502() {
    let app = spawn_app(TestOptions {
        page_count: 100 * 100 + 1,
        ..TestOptions::default()
    })
    .await;

    let response = app.log_in().await;

    let body = expect_error(response, 502, "facebook_too_many_pages", "10001 Pages").await;
    assert!(
        body.get("pages").is_none(),
        "no partial list is returned: {body}"
    );
    assert_eq!(
        app.sandbox.request_count(Endpoint::Accounts),
        100,
        "the cap of requests"
    );
}
