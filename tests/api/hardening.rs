//! Uncommon paths: transient Graph failures, a hung Facebook, oversized requests.

use std::time::{Duration, Instant};

use facebook_oauth::sandbox::{Endpoint, Fault};
use reqwest::header::COOKIE;

use tokio::task::JoinSet;

use crate::helpers::{
    TestOptions, json_body, location, new_client_with_jar, query_param, spawn_app,
};

#[tokio::test]
async fn pages_retried_once_after_facebook_failure() {
    let app = spawn_app(TestOptions::default()).await;
    app.sandbox
        .inject_times(Endpoint::Accounts, Fault::ServerError, 1);

    let response = app.log_in().await;

    assert_eq!(response.status(), 200, "the retry succeeds");
    assert_eq!(
        app.sandbox.request_count(Endpoint::Accounts),
        2,
        "one failure, one retry"
    );
}

#[tokio::test]
async fn pages_retried_only_once() {
    let app = spawn_app(TestOptions::default()).await;
    app.sandbox
        .inject_times(Endpoint::Accounts, Fault::ServerError, 2);

    let response = app.log_in().await;

    assert_eq!(response.status(), 502, "two failures give up");
    assert_eq!(
        app.sandbox.request_count(Endpoint::Accounts),
        2,
        "exactly one retry"
    );
}

#[tokio::test]
async fn rate_limit_never_retried() {
    let app = spawn_app(TestOptions::default()).await;
    app.sandbox
        .inject_times(Endpoint::Accounts, Fault::RateLimited, 1);

    let response = app.log_in().await;

    assert_eq!(response.status(), 503, "rate limit answered at once");
    assert_eq!(
        app.sandbox.request_count(Endpoint::Accounts),
        1,
        "no retry into a rate limit"
    );
}

#[tokio::test]
async fn code_exchange_never_retried() {
    let app = spawn_app(TestOptions::default()).await;
    app.sandbox
        .inject_times(Endpoint::TokenExchange, Fault::ServerError, 1);

    let response = app.log_in().await;

    assert_eq!(response.status(), 502, "the exchange failure is returned");
    assert_eq!(
        app.sandbox.request_count(Endpoint::TokenExchange),
        1,
        "a code is used once"
    );
}

#[tokio::test]
async fn hung_facebook_bounds_calls_in_flight() {
    let app = spawn_app(TestOptions {
        timeout: Duration::from_secs(2),
        max_in_flight: 5,
        ..TestOptions::default()
    })
    .await;
    app.sandbox.inject(
        Endpoint::TokenExchange,
        Fault::Delay(Duration::from_secs(30)),
    );
    // Twenty users, each with a browser of their own and a login in progress.
    let mut browsers = Vec::new();
    for _ in 0..20 {
        let (client, _) = new_client_with_jar();
        let login = client
            .get(app.url("/facebook/login"))
            .send()
            .await
            .expect("login");
        let state = query_param(&location(login.headers()), "state").expect("state");
        browsers.push((client, state, app.issue_code()));
    }

    let started = Instant::now();
    let mut callbacks = JoinSet::new();
    for (client, state, code) in browsers {
        let url = app.url("/facebook/callback");
        callbacks.spawn(async move {
            let response = client
                .get(url)
                .query(&[("code", code), ("state", state)])
                .send()
                .await
                .expect("callback");
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body = json_body(response).await;
            let code = body["error"].as_str().unwrap_or_default().to_owned();
            (status, retry_after, code, started.elapsed())
        });
    }
    let outcomes = callbacks.join_all().await;

    let busy: Vec<_> = outcomes.iter().filter(|outcome| outcome.0 == 503).collect();
    let timed_out: Vec<_> = outcomes.iter().filter(|outcome| outcome.0 == 504).collect();
    assert_eq!(
        timed_out.len(),
        5,
        "only the limit reaches Facebook: {outcomes:?}"
    );
    assert_eq!(busy.len(), 15, "the rest are turned away: {outcomes:?}");
    assert!(
        busy.iter().all(|outcome| outcome.2 == "facebook_busy"),
        "busy code: {busy:?}"
    );
    assert!(
        busy.iter().all(|outcome| outcome.1),
        "busy answers carry Retry-After"
    );
    assert!(
        busy.iter()
            .all(|outcome| outcome.3 < Duration::from_secs(2)),
        "busy answers come before the Graph timeout: {busy:?}"
    );
    assert_eq!(
        app.sandbox.request_count(Endpoint::TokenExchange),
        5,
        "Graph calls in flight"
    );
}

#[tokio::test]
async fn oversized_requests_rejected_as_json() {
    let app = spawn_app(TestOptions::default()).await;
    let client = reqwest::Client::new();
    let long_query = "x".repeat(10 * 1024);
    let big_header = "y".repeat(20 * 1024);
    let many_cookies: Vec<String> = (0..100).map(|index| format!("c{index}=1")).collect();

    let cases = [
        (
            "long URI",
            client.get(app.url(&format!("/facebook/callback?state={long_query}"))),
            414,
            "uri_too_long",
        ),
        (
            "large header",
            client.get(app.url("/")).header("x-padding", big_header),
            431,
            "headers_too_large",
        ),
        (
            "many cookies",
            client
                .get(app.url("/facebook/callback"))
                .header(COOKIE, many_cookies.join("; ")),
            400,
            "too_many_cookies",
        ),
    ];
    for (case, request, status, code) in cases {
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), status, "case {case}: status");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "case {case}: nosniff"
        );
        let body = json_body(response).await;
        assert_eq!(body["error"], code, "case {case}: error code");
    }
}

#[tokio::test]
async fn busy_callback_can_be_retried() {
    let app = spawn_app(TestOptions {
        timeout: Duration::from_secs(2),
        max_in_flight: 1,
        ..TestOptions::default()
    })
    .await;
    app.sandbox.inject(
        Endpoint::TokenExchange,
        Fault::Delay(Duration::from_millis(800)),
    );
    let (first_client, _) = new_client_with_jar();
    let first_login = first_client
        .get(app.url("/facebook/login"))
        .send()
        .await
        .expect("login");
    let first_state = query_param(&location(first_login.headers()), "state").expect("state");
    let first_code = app.issue_code();
    let second_state = app.start_login().await;
    let second_code = app.issue_code();

    let first = first_client
        .get(app.url("/facebook/callback"))
        .query(&[("code", &first_code), ("state", &first_state)])
        .send();
    let second = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.callback(&[("code", &second_code), ("state", &second_state)])
            .await
    };
    let (first, busy) = tokio::join!(first, second);
    let retried = app
        .callback(&[("code", &second_code), ("state", &second_state)])
        .await;

    assert_eq!(
        first.expect("first callback").status(),
        200,
        "the first login succeeds"
    );
    assert_eq!(busy.status(), 503, "the second waits behind the limit");
    assert_eq!(
        retried.status(),
        200,
        "the same callback succeeds when retried"
    );
}
