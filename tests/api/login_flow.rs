//! The successful paths: health check, login redirect and the whole flow.

use std::collections::HashSet;

use facebook_oauth::sandbox::Endpoint;
use reqwest::header::SET_COOKIE;

use crate::helpers::{TestOptions, json_body, location, query_param, spawn_app};

#[tokio::test]
async fn health_check_returns_ok() {
    let app = spawn_app(TestOptions::default()).await;

    let response = app.client.get(app.url("/")).send().await.expect("request");

    assert_eq!(response.status(), 200, "status");
    assert_eq!(
        json_body(response).await,
        serde_json::json!({"status": "ok"}),
        "body"
    );
}

#[tokio::test]
async fn login_redirects_to_dialog() {
    let app = spawn_app(TestOptions::default()).await;

    let response = app
        .client
        .get(app.url("/facebook/login"))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 302, "status");
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .expect("a state cookie")
        .to_str()
        .expect("ASCII")
        .to_owned();
    let dialog = location(response.headers());
    let facebook = &app.config.facebook;
    let expected_prefix = format!(
        "{}/{}/dialog/oauth?",
        facebook.dialog_url, facebook.graph_version
    );
    assert!(dialog.starts_with(&expected_prefix), "dialog URL: {dialog}");
    assert_eq!(
        query_param(&dialog, "client_id").as_deref(),
        Some(facebook.app_id.as_str()),
        "client_id"
    );
    assert_eq!(
        query_param(&dialog, "redirect_uri").as_deref(),
        Some(facebook.redirect_uri.as_str()),
        "redirect_uri sent exactly as configured"
    );
    assert_eq!(
        query_param(&dialog, "scope").as_deref(),
        Some(facebook.scopes.as_str()),
        "scope"
    );
    assert_eq!(
        query_param(&dialog, "response_type").as_deref(),
        Some("code"),
        "response_type"
    );
    assert!(
        query_param(&dialog, "code_challenge").is_none(),
        "no PKCE challenge"
    );
    let state = query_param(&dialog, "state").expect("state");
    assert!(
        state.len() >= 22,
        "state carries at least 128 bits: {state}"
    );
    assert!(cookie.contains("HttpOnly"), "cookie is HttpOnly: {cookie}");
    assert!(
        cookie.contains("SameSite=Lax"),
        "cookie is SameSite=Lax: {cookie}"
    );
    assert!(
        cookie.contains("Max-Age=600"),
        "cookie expires in 10 minutes: {cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "no Secure on an http redirect URI: {cookie}"
    );
    assert!(
        !cookie.contains(&state),
        "the cookie does not carry the state itself: {cookie}"
    );
}

#[tokio::test]
async fn login_returns_token_and_pages() {
    let app = spawn_app(TestOptions::default()).await;

    let response = app.log_in().await;

    assert_eq!(response.status(), 200, "status");
    let headers = response.headers().clone();
    let body = json_body(response).await;
    let token = body["token_data"]["access_token"]
        .as_str()
        .unwrap_or_default();
    assert!(!token.is_empty(), "token_data has the access token: {body}");
    assert_eq!(
        body["token_data"]["token_type"], "bearer",
        "token_type as Facebook sent it"
    );
    assert!(
        body["token_data"]["expires_in"].is_number(),
        "expires_in as Facebook sent it"
    );
    let pages = body["pages"]["data"]
        .as_array()
        .expect("pages.data is an array");
    assert_eq!(pages.len(), 3, "every sandbox Page");
    for field in facebook_oauth::config::DEFAULT_PAGE_FIELDS.split(',') {
        assert!(
            pages[0].get(field).is_some(),
            "Page field {field} is kept: {}",
            pages[0]
        );
    }
    assert_eq!(headers["cache-control"], "no-store", "Cache-Control");
    assert_eq!(headers["pragma"], "no-cache", "Pragma");
    assert_eq!(headers["referrer-policy"], "no-referrer", "Referrer-Policy");
    assert_eq!(
        headers["x-content-type-options"], "nosniff",
        "X-Content-Type-Options"
    );
    assert!(headers.contains_key("x-request-id"), "x-request-id");
    let cookies: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|cookie| cookie.starts_with("fb_login_") && cookie.contains("=done.")),
        "the live state cookie is replaced by a finished marker: {cookies:?}"
    );
}

#[tokio::test]
async fn login_finishes_on_other_instance() {
    let app = spawn_app(TestOptions::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let other = listener.local_addr().expect("address");
    crate::helpers::serve_instance(listener, &app.config);

    let state = app.start_login().await;
    let code = app.issue_code();
    let response = app
        .client
        .get(format!("http://{other}/facebook/callback"))
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .expect("callback on the other instance");

    assert_eq!(
        response.status(),
        200,
        "the other instance finishes the login"
    );
}

#[tokio::test]
async fn pages_follow_cursor_across_requests() {
    let app = spawn_app(TestOptions {
        page_count: 250,
        ..TestOptions::default()
    })
    .await;

    let response = app.log_in().await;

    assert_eq!(response.status(), 200, "status");
    let body = json_body(response).await;
    let pages = body["pages"]["data"].as_array().expect("pages.data");
    let ids: HashSet<&str> = pages
        .iter()
        .filter_map(|page| page["id"].as_str())
        .collect();
    assert_eq!(pages.len(), 250, "every Page is returned");
    assert_eq!(ids.len(), 250, "no Page is repeated");
    assert_eq!(
        app.sandbox.request_count(Endpoint::Accounts),
        3,
        "three requests of 100"
    );
}

#[tokio::test]
async fn two_tabs_finish_in_either_order() {
    let app = spawn_app(TestOptions::default()).await;

    let first_state = app.start_login().await;
    let second_state = app.start_login().await;
    let second_code = app.issue_code();
    let second = app
        .callback(&[("code", &second_code), ("state", &second_state)])
        .await;
    let first_code = app.issue_code();
    let first = app
        .callback(&[("code", &first_code), ("state", &first_state)])
        .await;

    assert_eq!(second.status(), 200, "the tab opened second finishes first");
    assert_eq!(first.status(), 200, "the tab opened first finishes second");
}

#[tokio::test]
async fn refreshed_callback_reports_finished_login() {
    let app = spawn_app(TestOptions::default()).await;
    let state = app.start_login().await;
    let code = app.issue_code();
    let first = app.callback(&[("code", &code), ("state", &state)]).await;
    assert_eq!(first.status(), 200, "first callback succeeds");

    let refreshed = app.callback(&[("code", &code), ("state", &state)]).await;

    assert_eq!(refreshed.status(), 409, "a refresh is a conflict");
    let body = json_body(refreshed).await;
    assert_eq!(
        body["error"], "login_already_finished",
        "error code: {body}"
    );
    assert_eq!(
        app.sandbox.request_count(Endpoint::TokenExchange),
        1,
        "the refresh never reaches Facebook"
    );
}

#[tokio::test]
async fn login_cookies_capped_per_browser() {
    let app = spawn_app(TestOptions::default()).await;

    let mut states = Vec::new();
    for _ in 0..8 {
        states.push(app.start_login().await);
    }

    let names = app.login_cookie_names();
    assert_eq!(names.len(), 5, "at most five login cookies: {names:?}");
    let newest = facebook_oauth::facebook::login_state::cookie_name(&states[7]);
    let oldest = facebook_oauth::facebook::login_state::cookie_name(&states[0]);
    assert!(
        names.contains(&newest),
        "the newest login is kept: {names:?}"
    );
    assert!(
        !names.contains(&oldest),
        "the oldest login is dropped: {names:?}"
    );
}
