//! CORS in both modes, and the headers every response carries.

use reqwest::Method;

use crate::helpers::{TestOptions, spawn_app};

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/facebook/login"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("preflight")
}

#[tokio::test]
async fn cors_unset_allows_any_origin_without_credentials() {
    let app = spawn_app(TestOptions::default()).await;

    let response = preflight(&app, "https://anything.example").await;

    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*", "any origin");
    assert!(
        !headers.contains_key("access-control-allow-credentials"),
        "no credentials with a wildcard origin"
    );
}

#[tokio::test]
async fn cors_list_allows_only_listed_origins() {
    let app = spawn_app(TestOptions {
        cors_allowed_origins: vec!["https://app.example.com".to_owned()],
        ..TestOptions::default()
    })
    .await;

    let allowed = preflight(&app, "https://app.example.com").await;
    let refused = preflight(&app, "https://evil.example.com").await;
    let simple = app
        .client
        .get(app.url("/facebook/login"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("request");

    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com",
        "listed origin is echoed"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true",
        "credentials allowed for listed origins"
    );
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin"),
        "unlisted origin gets no CORS header"
    );
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://app.example.com",
        "simple request from a listed origin"
    );
}

#[tokio::test]
async fn request_id_kept_or_generated() {
    let app = spawn_app(TestOptions::default()).await;

    let kept = app
        .client
        .get(app.url("/"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .expect("request");
    let replaced = app
        .client
        .get(app.url("/"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .expect("request");

    assert_eq!(
        kept.headers()["x-request-id"],
        "trace-42",
        "a short printable id is kept"
    );
    let new_id = replaced.headers()["x-request-id"].to_str().expect("ASCII");
    assert_eq!(new_id.len(), 32, "an overlong id is replaced: {new_id}");
}

#[tokio::test]
async fn every_response_has_nosniff() {
    let app = spawn_app(TestOptions::default()).await;

    for path in ["/", "/facebook/login", "/facebook/callback", "/missing"] {
        let response = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(
            response
                .headers()
                .get("x-content-type-options")
                .map(|value| value.as_bytes()),
            Some(&b"nosniff"[..]),
            "nosniff on {path}"
        );
    }
}

#[tokio::test]
async fn facebook_errors_are_not_cached() {
    let app = spawn_app(TestOptions::default()).await;

    let response = app
        .client
        .get(app.url("/facebook/callback"))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 400, "status");
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "Cache-Control on an error"
    );
}
