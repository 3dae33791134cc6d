//! Property tests: arbitrary query strings, cookies, headers, paths and
//! methods against every route never get a 5xx, and every error has the JSON
//! error shape.

#[path = "api/helpers.rs"]
mod helpers;

use std::sync::OnceLock;

use helpers::{TestApp, TestOptions, spawn_app};
use proptest::prelude::*;
use reqwest::Method;
use tokio::runtime::Runtime;

/// Returns the runtime and app shared by every case, so a case costs one request.
fn shared() -> &'static (Runtime, TestApp) {
    static SHARED: OnceLock<(Runtime, TestApp)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let app = runtime.block_on(spawn_app(TestOptions::default()));
        (runtime, app)
    })
}

/// Sends the request and checks the outcome; returns a description of the
/// first broken rule, or `None`.
fn check(
    method: Method,
    path: &str,
    query: &str,
    headers: Vec<(String, String)>,
) -> Option<String> {
    let (runtime, app) = shared();
    runtime.block_on(async {
        let address = format!("{}{path}?{query}", app.url(""));
        let url = match url::Url::parse(&address) {
            Ok(url) => url,
            Err(_) => return None,
        };
        let mut request = reqwest::Client::new().request(method.clone(), url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status();
        let nosniff = response.headers().contains_key("x-content-type-options");
        let body = response.text().await.expect("body");

        if status.is_server_error() {
            return Some(format!(
                "{method} {path}?{query}: status {status}, body {body}"
            ));
        }
        if !nosniff {
            return Some(format!(
                "{method} {path}?{query}: no X-Content-Type-Options"
            ));
        }
        if status.is_client_error() && method != Method::HEAD {
            let json: serde_json::Value = match serde_json::from_str(&body) {
                Ok(json) => json,
                Err(_) => return Some(format!("{method} {path}?{query}: non-JSON error {body}")),
            };
            if !json["error"].is_string() || !json["detail"].is_string() {
                return Some(format!("{method} {path}?{query}: error shape {json}"));
            }
        }
        None
    })
}

fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_owned()),
        Just("/facebook/login".to_owned()),
        Just("/facebook/callback".to_owned()),
        "/[a-zA-Z0-9/_.%-]{0,40}",
    ]
}

fn any_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        Just(Method::PATCH),
    ]
}

/// Query strings made of callback parameter names and arbitrary values,
/// which the URL parser percent-encodes where needed.
fn any_query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("state"),
        Just("code"),
        Just("error"),
        Just("error_reason"),
        Just("error_description"),
        Just("error_code"),
        Just("x"),
    ];
    prop::collection::vec((name, "\\PC{0,60}"), 0..8).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// Header values a client can send: visible ASCII and spaces.
fn any_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let cookie = prop::collection::vec(
        ("(fb_login_[0-9a-f]{16}|[a-z_]{1,12})", "[!-:<-~]{0,80}"),
        0..10,
    )
    .prop_map(|pairs| {
        let joined = pairs
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        ("cookie".to_owned(), joined)
    });
    let other = (
        "(x-request-id|origin|referer|accept|x-[a-z]{1,10})",
        "[ -~]{0,120}",
    )
        .prop_map(|(name, value)| (name, value.trim().to_owned()));
    (cookie, prop::collection::vec(other, 0..4)).prop_map(|(cookie, mut others)| {
        others.push(cookie);
        others
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_never_fail_server_side(
        method in any_method(),
        path in any_path(),
        query in any_query(),
        headers in any_headers(),
    ) {
        let broken = check(method, &path, &query, headers);
        prop_assert!(broken.is_none(), "{}", broken.unwrap_or_default());
    }
}

/// Sends a callback with a valid state and cookie from a real login and
/// arbitrary `code` and `error*` parameters, so every case passes the state
/// check and reaches the code exchange or the error handling.
fn check_after_login(extra: Vec<(&'static str, String)>) -> Option<String> {
    let (runtime, app) = shared();
    runtime.block_on(async {
        let (client, _) = helpers::new_client_with_jar();
        let login = client
            .get(app.url("/facebook/login"))
            .send()
            .await
            .expect("login");
        let state = helpers::query_param(&helpers::location(login.headers()), "state")?;
        let mut query = vec![("state", state)];
        query.extend(extra);
        let response = client
            .get(app.url("/facebook/callback"))
            .query(&query)
            .send()
            .await
            .expect("the service answers");
        let status = response.status();
        let body = response.text().await.expect("body");

        if status.is_server_error() {
            return Some(format!("callback {query:?}: status {status}, body {body}"));
        }
        let json: serde_json::Value = match serde_json::from_str(&body) {
            Ok(json) => json,
            Err(_) => return Some(format!("callback {query:?}: non-JSON body {body}")),
        };
        if status.is_client_error() && (!json["error"].is_string() || !json["detail"].is_string()) {
            return Some(format!("callback {query:?}: error shape {json}"));
        }
        None
    })
}

fn any_callback_parameters() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let name = prop_oneof![
        Just("code"),
        Just("error"),
        Just("error_reason"),
        Just("error_description"),
        Just("error_code"),
        Just("granted_scopes"),
    ];
    prop::collection::vec((name, "\\PC{0,80}"), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_callbacks_after_login_never_fail_server_side(extra in any_callback_parameters()) {
        let broken = check_after_login(extra);
        prop_assert!(broken.is_none(), "{}", broken.unwrap_or_default());
    }
}
