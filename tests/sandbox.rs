//! Drives the sandbox over real sockets on 127.0.0.1, nested at `/sandbox` as the service does.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::Router;
use facebook_oauth::sandbox::{Endpoint, Fault, Sandbox, SandboxConfig};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::Sha256;

const REDIRECT_URI: &str = "http://127.0.0.1:3000/auth/callback";
const VERSION: &str = "v21.0";

/// A sandbox served on an ephemeral loopback port, and a client that does not follow redirects.
struct Harness {
    sandbox: Sandbox,
    base: String,
    client: reqwest::Client,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(SandboxConfig::with_redirect_uri(REDIRECT_URI)).await
    }

    async fn start_with(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::new(config);
        let app = Router::new().nest("/sandbox", sandbox.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve sandbox");
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("build client");
        Self {
            sandbox,
            base: format!("http://{address}/sandbox"),
            client,
        }
    }

    fn dialog_url(&self) -> String {
        format!("{}/{VERSION}/dialog/oauth", self.base)
    }

    fn graph_url(&self, path: &str) -> String {
        format!("{}/graph/{VERSION}{path}", self.base)
    }

    async fn get(&self, url: &str, query: &[(&str, &str)]) -> Reply {
        let response = self.client.get(url).query(query).send().await.expect("GET");
        Reply::read(response).await
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Reply {
        let response = self.client.post(url).form(form).send().await.expect("POST");
        Reply::read(response).await
    }

    async fn open_dialog(&self, query: &[(&str, &str)]) -> Reply {
        self.get(&self.dialog_url(), query).await
    }

    async fn confirm(&self, form: &[(&str, &str)]) -> Reply {
        self.post_form(&format!("{}/confirm", self.dialog_url()), form)
            .await
    }

    /// Exchanges `code` with correct app credentials by GET.
    async fn exchange(&self, code: &str) -> Reply {
        let query = [
            ("client_id", SandboxConfig::DEFAULT_APP_ID),
            ("redirect_uri", REDIRECT_URI),
            ("client_secret", SandboxConfig::DEFAULT_APP_SECRET),
            ("code", code),
        ];
        self.get(&self.graph_url("/oauth/access_token"), &query)
            .await
    }

    /// Returns a user access token granted `scope`.
    async fn login(&self, scope: &str) -> String {
        let code = self.sandbox.issue_code(REDIRECT_URI, scope);
        let reply = self.exchange(&code).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login exchange: {}",
            reply.body
        );
        reply.json()["access_token"]
            .as_str()
            .expect("access_token string")
            .to_owned()
    }

    async fn accounts(&self, token: &str, extra: &[(&str, &str)]) -> Reply {
        let proof = appsecret_proof(token);
        let mut query = vec![("access_token", token), ("appsecret_proof", proof.as_str())];
        query.extend_from_slice(extra);
        self.get(&self.graph_url("/me/accounts"), &query).await
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("read body");
        Self {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.body))
    }
}

fn appsecret_proof(token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SandboxConfig::DEFAULT_APP_SECRET.as_bytes())
        .expect("HMAC key");
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn dialog_query(state: &str) -> Vec<(&str, &str)> {
    vec![
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "pages_show_list,business_management"),
        ("response_type", "code"),
        ("state", state),
    ]
}

/// Asserts a Graph error's status, code, subcode and message.
fn assert_graph_error(reply: &Reply, case: &str, code: i64, subcode: Option<i64>, message: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{case}: status, body {}",
        reply.body
    );
    let error = &reply.json()["error"];
    assert_eq!(error["code"], code, "{case}: code");
    assert_eq!(error["error_subcode"].as_i64(), subcode, "{case}: subcode");
    assert_eq!(error["message"], message, "{case}: message");
    assert!(error["fbtrace_id"].is_string(), "{case}: fbtrace_id");
}

// ---------------------------------------------------------------------------------------------
// Login dialog

#[tokio::test]
async fn dialog_renders_continue_and_cancel() {
    let harness = Harness::start().await;
    let reply = harness.open_dialog(&dialog_query("csrf-1")).await;

    assert_eq!(reply.status, StatusCode::OK, "dialog status");
    assert!(reply.body.contains(">Continue</button>"), "Continue button");
    assert!(reply.body.contains(">Cancel</button>"), "Cancel button");
    assert!(reply.body.contains("Sandbox User"), "user name");
    assert!(
        reply.body.contains(SandboxConfig::DEFAULT_APP_NAME),
        "app name"
    );
    assert!(
        reply.body.contains("<code>pages_show_list</code>"),
        "first permission"
    );
    assert!(
        reply.body.contains("<code>business_management</code>"),
        "second permission"
    );
    assert!(reply.body.contains("Sandbox Page 3"), "Pages listed");
    assert!(
        reply.body.contains("name=\"state\" value=\"csrf-1\""),
        "state carried in a hidden field"
    );
}

#[tokio::test]
async fn dialog_sends_security_headers() {
    let harness = Harness::start().await;
    let reply = harness.open_dialog(&dialog_query("s")).await;
    let policy = reply.header("content-security-policy").unwrap_or_default();

    assert!(
        policy.contains("default-src 'none'"),
        "CSP default-src: {policy}"
    );
    assert!(
        policy.contains("style-src 'sha256-"),
        "CSP style hash: {policy}"
    );
    assert!(
        policy.contains("form-action 'self' http://127.0.0.1:3000"),
        "CSP form-action allows the redirect origin: {policy}"
    );
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "CSP frame-ancestors: {policy}"
    );
    assert!(policy.contains("base-uri 'none'"), "CSP base-uri: {policy}");
    assert_eq!(
        reply.header("x-frame-options"),
        Some("DENY"),
        "X-Frame-Options"
    );
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "Cache-Control"
    );
    assert_eq!(
        reply.header("referrer-policy"),
        Some("no-referrer"),
        "Referrer-Policy"
    );
    assert!(
        !reply.body.contains(" style=\""),
        "no inline style attributes"
    );
}

#[tokio::test]
async fn dialog_escapes_hostile_state() {
    let harness = Harness::start().await;
    let hostile = "\"><script>alert('x')</script>&";
    let reply = harness.open_dialog(&dialog_query(hostile)).await;

    assert_eq!(reply.status, StatusCode::OK, "dialog status");
    assert!(!reply.body.contains("<script>"), "no raw script tag");
    assert!(
        reply
            .body
            .contains("&quot;&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;"),
        "state escaped in the hidden field"
    );
}

#[tokio::test]
async fn dialog_blocks_wrong_redirect_uri() {
    let harness = Harness::start().await;
    let cases = [
        ("other host", Some("http://127.0.0.1:4000/auth/callback")),
        (
            "trailing slash",
            Some("http://127.0.0.1:3000/auth/callback/"),
        ),
        (
            "extra query",
            Some("http://127.0.0.1:3000/auth/callback?x=1"),
        ),
        ("missing", None),
    ];
    for (case, redirect_uri) in cases {
        let mut query = vec![("client_id", SandboxConfig::DEFAULT_APP_ID), ("state", "s")];
        if let Some(uri) = redirect_uri {
            query.push(("redirect_uri", uri));
        }
        let reply = harness.open_dialog(&query).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}: status");
        assert!(reply.body.contains("URL Blocked"), "{case}: heading");
        assert!(
            reply.body.contains("redirect URI is not whitelisted"),
            "{case}: explanation"
        );
        assert!(
            reply.header("location").is_none(),
            "{case}: no Location header"
        );
    }
}

#[tokio::test]
async fn dialog_rejects_unknown_client_id() {
    let harness = Harness::start().await;
    let query = [("client_id", "999"), ("redirect_uri", REDIRECT_URI)];
    let reply = harness.open_dialog(&query).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "status");
    assert!(reply.body.contains("Invalid App ID"), "heading");
    assert!(reply.header("location").is_none(), "no Location header");
}

#[tokio::test]
async fn dialog_rejects_token_response_type() {
    let harness = Harness::start().await;
    let mut query = dialog_query("s");
    query.retain(|(name, _)| *name != "response_type");
    query.push(("response_type", "token"));
    let reply = harness.open_dialog(&query).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "status");
    assert!(reply.body.contains("Unsupported response type"), "heading");
}

#[tokio::test]
async fn dialog_defaults_response_type_to_code() {
    let harness = Harness::start().await;
    let mut query = dialog_query("s");
    query.retain(|(name, _)| *name != "response_type");
    let reply = harness.open_dialog(&query).await;

    assert_eq!(reply.status, StatusCode::OK, "status without response_type");
}

#[tokio::test]
async fn dialog_rejects_malformed_version() {
    let harness = Harness::start().await;
    let url = format!("{}/21.0/dialog/oauth", harness.base);
    let reply = harness.get(&url, &dialog_query("s")).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "status");
    assert!(
        reply.body.contains("not a Graph API version"),
        "explanation"
    );
}

#[tokio::test]
async fn dialog_caps_listed_pages() {
    let harness = Harness::start().await;
    harness.sandbox.set_page_count(14);
    let reply = harness.open_dialog(&dialog_query("s")).await;

    assert!(reply.body.contains("Sandbox Page 10<"), "tenth Page listed");
    assert!(
        !reply.body.contains("Sandbox Page 11<"),
        "eleventh Page not listed"
    );
    assert!(reply.body.contains("and 4 more"), "remainder summarised");
}

#[tokio::test]
async fn confirm_continue_redirects_with_code_and_state() {
    let harness = Harness::start().await;
    let form = [
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT_URI),
        ("state", "csrf 1/2"),
        ("scope", "pages_show_list"),
        ("choice", "continue"),
    ];
    let reply = harness.confirm(&form).await;
    let location = reply.header("location").unwrap_or_default().to_owned();

    assert_eq!(reply.status, StatusCode::SEE_OTHER, "status");
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?code=")),
        "code first: {location}"
    );
    assert!(
        location.ends_with("&state=csrf+1%2F2#_=_"),
        "state and fragment: {location}"
    );

    let code = location
        .split_once("code=")
        .and_then(|(_, rest)| rest.split('&').next())
        .expect("code value");
    let exchanged = harness.exchange(code).await;
    assert_eq!(
        exchanged.status,
        StatusCode::OK,
        "dialog code exchanges: {}",
        exchanged.body
    );
}

#[tokio::test]
async fn confirm_cancel_redirects_with_access_denied() {
    let harness = Harness::start().await;
    let form = [
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT_URI),
        ("state", "abc"),
        ("scope", "pages_show_list"),
        ("choice", "cancel"),
    ];
    let reply = harness.confirm(&form).await;

    assert_eq!(reply.status, StatusCode::SEE_OTHER, "status");
    assert_eq!(
        reply.header("location"),
        Some(
            "http://127.0.0.1:3000/auth/callback?error=access_denied&error_code=200\
             &error_description=Permissions+error&error_reason=user_denied&state=abc#_=_"
        ),
        "cancel Location"
    );
}

#[tokio::test]
async fn confirm_without_state_omits_state() {
    let harness = Harness::start().await;
    let form = [
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT_URI),
        ("choice", "continue"),
    ];
    let reply = harness.confirm(&form).await;
    let location = reply.header("location").unwrap_or_default();

    assert_eq!(reply.status, StatusCode::SEE_OTHER, "status");
    assert!(!location.contains("state="), "no state: {location}");
    assert!(location.ends_with("#_=_"), "fragment: {location}");
}

#[tokio::test]
async fn confirm_keeps_existing_redirect_query() {
    let redirect_uri = "http://127.0.0.1:3000/auth/callback?tenant=7";
    let harness = Harness::start_with(SandboxConfig::with_redirect_uri(redirect_uri)).await;
    let form = [
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", redirect_uri),
        ("state", "s"),
        ("choice", "continue"),
    ];
    let reply = harness.confirm(&form).await;
    let location = reply.header("location").unwrap_or_default();

    assert!(
        location.starts_with("http://127.0.0.1:3000/auth/callback?tenant=7&code="),
        "query appended with &: {location}"
    );
}

#[tokio::test]
async fn confirm_revalidates_hidden_fields() {
    let harness = Harness::start().await;
    let cases = [
        (
            "wrong redirect_uri",
            SandboxConfig::DEFAULT_APP_ID,
            "http://127.0.0.1:4000/x",
            "URL Blocked",
        ),
        ("wrong client_id", "42", REDIRECT_URI, "Invalid App ID"),
    ];
    for (case, client_id, redirect_uri, heading) in cases {
        let form = [
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("choice", "continue"),
        ];
        let reply = harness.confirm(&form).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}: status");
        assert!(reply.body.contains(heading), "{case}: heading");
        assert!(
            reply.header("location").is_none(),
            "{case}: no Location header"
        );
    }
}

#[tokio::test]
async fn confirm_rejects_unknown_choice() {
    let harness = Harness::start().await;
    let form = [
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT_URI),
        ("choice", "maybe"),
    ];
    let reply = harness.confirm(&form).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "status");
    assert!(reply.body.contains("Invalid choice"), "heading");
    assert!(reply.header("location").is_none(), "no Location header");
}

// ---------------------------------------------------------------------------------------------
// Token exchange

#[tokio::test]
async fn token_exchange_get_succeeds() {
    let harness = Harness::start().await;
    let code = harness.sandbox.issue_code(REDIRECT_URI, "pages_show_list");
    let reply = harness.exchange(&code).await;
    let body = reply.json();

    assert_eq!(reply.status, StatusCode::OK, "status");
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "access_token"
    );
    assert_eq!(body["token_type"], "bearer", "token_type");
    assert_eq!(body["expires_in"], 5_183_944, "expires_in");
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "Cache-Control"
    );
    assert_eq!(reply.header("pragma"), Some("no-cache"), "Pragma");
    assert_eq!(
        reply.header("facebook-api-version"),
        Some("v21.0"),
        "version header"
    );
    assert!(reply.header("x-fb-trace-id").is_some(), "trace id header");
}

#[tokio::test]
async fn token_exchange_post_form_succeeds() {
    let harness = Harness::start().await;
    let code = harness.sandbox.issue_code(REDIRECT_URI, "pages_show_list");
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT_URI),
        ("client_secret", SandboxConfig::DEFAULT_APP_SECRET),
        ("code", code.as_str()),
    ];
    let reply = harness
        .post_form(&harness.graph_url("/oauth/access_token"), &form)
        .await;

    assert_eq!(reply.status, StatusCode::OK, "status: {}", reply.body);
    assert_eq!(reply.json()["token_type"], "bearer", "token_type");
}

#[tokio::test]
async fn token_exchange_errors_match_facebook() {
    let harness = Harness::start().await;
    let app_id = SandboxConfig::DEFAULT_APP_ID;
    let secret = SandboxConfig::DEFAULT_APP_SECRET;

    let expired_code = harness.sandbox.issue_code(REDIRECT_URI, "");
    harness.sandbox.age_codes(Duration::from_secs(10 * 60 + 1));

    let used_code = harness.sandbox.issue_code(REDIRECT_URI, "");
    let first_use = harness.exchange(&used_code).await;
    assert_eq!(
        first_use.status,
        StatusCode::OK,
        "first use of the code succeeds"
    );
    let fresh = |h: &Harness| h.sandbox.issue_code(REDIRECT_URI, "");

    struct Case {
        name: &'static str,
        params: Vec<(&'static str, String)>,
        code: i64,
        subcode: Option<i64>,
        kind: &'static str,
        message: &'static str,
    }
    let params = |client_id: &str, redirect: Option<&str>, secret: &str, code: &str| {
        let mut params = vec![
            ("client_id", client_id.to_owned()),
            ("client_secret", secret.to_owned()),
            ("code", code.to_owned()),
        ];
        if let Some(redirect) = redirect {
            params.push(("redirect_uri", redirect.to_owned()));
        }
        params
    };
    let mut verifier_params = params(app_id, Some(REDIRECT_URI), secret, &fresh(&harness));
    verifier_params.push(("code_verifier", "a".repeat(43)));

    let cases = vec![
        Case {
            name: "wrong client_id",
            params: params("1", Some(REDIRECT_URI), secret, &fresh(&harness)),
            code: 101,
            subcode: None,
            kind: "invalid_code",
            message: "Error validating application. Invalid application ID.",
        },
        Case {
            name: "missing redirect_uri",
            params: params(app_id, None, secret, &fresh(&harness)),
            code: 191,
            subcode: None,
            kind: "invalid_request",
            message: "redirect_uri isn't an absolute URI. Check RFC 3986.",
        },
        Case {
            name: "relative redirect_uri",
            params: params(app_id, Some("/auth/callback"), secret, &fresh(&harness)),
            code: 191,
            subcode: None,
            kind: "invalid_request",
            message: "redirect_uri isn't an absolute URI. Check RFC 3986.",
        },
        Case {
            name: "wrong client_secret",
            params: params(app_id, Some(REDIRECT_URI), "nope", &fresh(&harness)),
            code: 1,
            subcode: None,
            kind: "invalid_code",
            message: "Error validating client secret.",
        },
        Case {
            name: "code_verifier without challenge",
            params: verifier_params,
            code: 1,
            subcode: None,
            kind: "invalid_code",
            message: "code_verifier param is provided without a code_challenge in authorization request.",
        },
        Case {
            name: "unknown code",
            params: params(app_id, Some(REDIRECT_URI), secret, "AQnot-a-real-code"),
            code: 100,
            subcode: None,
            kind: "invalid_code",
            message: "Invalid verification code format.",
        },
        Case {
            name: "missing code",
            params: params(app_id, Some(REDIRECT_URI), secret, ""),
            code: 100,
            subcode: None,
            kind: "invalid_code",
            message: "Invalid verification code format.",
        },
        Case {
            name: "expired code",
            params: params(app_id, Some(REDIRECT_URI), secret, &expired_code),
            code: 100,
            subcode: Some(36007),
            kind: "invalid_code",
            message: "This authorization code has expired.",
        },
        Case {
            name: "used code",
            params: params(app_id, Some(REDIRECT_URI), secret, &used_code),
            code: 100,
            subcode: Some(36009),
            kind: "invalid_code",
            message: "This authorization code has been used.",
        },
        Case {
            name: "mismatched redirect_uri",
            params: params(
                app_id,
                Some("http://127.0.0.1:3000/other"),
                secret,
                &fresh(&harness),
            ),
            code: 100,
            subcode: None,
            kind: "invalid_code",
            message: "Error validating verification code. Please make sure your redirect_uri is \
                      identical to the one you used in the OAuth dialog request",
        },
    ];

    for case in cases {
        let query: Vec<(&str, &str)> = case.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = harness
            .get(&harness.graph_url("/oauth/access_token"), &query)
            .await;

        assert_graph_error(&reply, case.name, case.code, case.subcode, case.message);
        assert_eq!(
            reply.json()["error"]["type"],
            "OAuthException",
            "{}: type",
            case.name
        );
        assert_eq!(
            reply.header("www-authenticate"),
            Some(
                format!(
                    "OAuth \"Facebook Platform\" \"{}\" \"{}\"",
                    case.kind, case.message
                )
                .as_str()
            ),
            "{}: WWW-Authenticate",
            case.name
        );
        assert_eq!(
            reply.header("cache-control"),
            Some("no-store"),
            "{}: Cache-Control",
            case.name
        );
        assert_eq!(
            reply.header("pragma"),
            Some("no-cache"),
            "{}: Pragma",
            case.name
        );
    }
}

#[tokio::test]
async fn token_exchange_redirect_mismatch_burns_code() {
    let harness = Harness::start().await;
    let code = harness.sandbox.issue_code(REDIRECT_URI, "");
    let query = [
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", "http://127.0.0.1:3000/other"),
        ("client_secret", SandboxConfig::DEFAULT_APP_SECRET),
        ("code", code.as_str()),
    ];
    let mismatch = harness
        .get(&harness.graph_url("/oauth/access_token"), &query)
        .await;
    assert_eq!(
        mismatch.status,
        StatusCode::BAD_REQUEST,
        "mismatch rejected"
    );

    let retry = harness.exchange(&code).await;
    assert_graph_error(
        &retry,
        "retry after mismatch",
        100,
        Some(36009),
        "This authorization code has been used.",
    );
}

#[tokio::test]
async fn token_exchange_wrong_secret_keeps_code() {
    let harness = Harness::start().await;
    let code = harness.sandbox.issue_code(REDIRECT_URI, "");
    let query = [
        ("client_id", SandboxConfig::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT_URI),
        ("client_secret", "wrong"),
        ("code", code.as_str()),
    ];
    let wrong_secret = harness
        .get(&harness.graph_url("/oauth/access_token"), &query)
        .await;
    assert_eq!(
        wrong_secret.status,
        StatusCode::BAD_REQUEST,
        "wrong secret rejected"
    );

    let retry = harness.exchange(&code).await;
    assert_eq!(
        retry.status,
        StatusCode::OK,
        "code unused before the code check"
    );
}

#[tokio::test]
async fn token_exchange_upgrades_retired_version() {
    let harness = Harness::start().await;
    let cases = [("v19.0", "v21.0"), ("v25.0", "v25.0")];
    for (requested, served) in cases {
        let url = format!("{}/graph/{requested}/oauth/access_token", harness.base);
        let reply = harness.get(&url, &[]).await;
        assert_eq!(
            reply.header("facebook-api-version"),
            Some(served),
            "requested {requested}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// me/accounts

#[tokio::test]
async fn accounts_next_links_chain_through_sixty_pages() {
    let harness = Harness::start().await;
    harness.sandbox.set_page_count(60);
    let token = harness.login("pages_show_list").await;

    let mut reply = harness.accounts(&token, &[("limit", "25")]).await;
    let mut ids = HashSet::new();
    let mut sizes = Vec::new();
    let mut previous_links = Vec::new();
    loop {
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "result page {}: {}",
            sizes.len() + 1,
            reply.body
        );
        let body = reply.json();
        let data = body["data"].as_array().expect("data array").clone();
        sizes.push(data.len());
        for page in &data {
            ids.insert(page["id"].as_str().expect("id string").to_owned());
        }
        previous_links.push(body["paging"]["previous"].as_str().map(str::to_owned));
        let Some(next) = body["paging"]["next"].as_str() else {
            break;
        };
        assert!(
            next.starts_with(&format!("{}/graph/{VERSION}/me/accounts?", harness.base)),
            "absolute next: {next}"
        );
        assert!(
            next.contains(&format!("access_token={token}")),
            "next keeps access_token"
        );
        assert!(next.contains("limit=25"), "next keeps limit");
        assert!(sizes.len() < 10, "next links end");
        reply = Reply::read(harness.client.get(next).send().await.expect("GET next")).await;
    }

    assert_eq!(sizes, [25, 25, 10], "result page sizes");
    assert_eq!(ids.len(), 60, "union of ids is 60 distinct Pages");
    assert!(
        previous_links[0].is_none(),
        "first result page has no previous"
    );
    assert!(
        previous_links[1].is_some(),
        "second result page has previous"
    );
}

#[tokio::test]
async fn accounts_previous_link_returns_earlier_pages() {
    let harness = Harness::start().await;
    harness.sandbox.set_page_count(5);
    let token = harness.login("pages_show_list").await;

    let first = harness.accounts(&token, &[("limit", "2")]).await.json();
    let next = first["paging"]["next"].as_str().expect("next link");
    let second = Reply::read(harness.client.get(next).send().await.expect("GET next"))
        .await
        .json();
    let previous = second["paging"]["previous"]
        .as_str()
        .expect("previous link");
    let back = Reply::read(
        harness
            .client
            .get(previous)
            .send()
            .await
            .expect("GET previous"),
    )
    .await
    .json();

    assert_eq!(
        back["data"], first["data"],
        "previous returns the first result page"
    );
}

#[tokio::test]
async fn accounts_default_fields_and_headers() {
    let harness = Harness::start().await;
    let token = harness.login("pages_show_list").await;
    let reply = harness.accounts(&token, &[]).await;
    let body = reply.json();
    let page = &body["data"][0];

    assert_eq!(reply.status, StatusCode::OK, "status");
    assert_eq!(
        body["data"].as_array().map(Vec::len),
        Some(3),
        "default Page count"
    );
    assert_eq!(page["id"], "1000000000000000", "first Page id");
    assert_eq!(page["name"], "Sandbox Page 1", "name");
    assert_eq!(page["category"], "Software", "category");
    assert_eq!(page["category_list"][0]["id"], "2211", "category_list");
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(6), "tasks");
    assert!(
        page["access_token"].as_str().is_some_and(|t| t != token),
        "Page token differs from user token"
    );
    assert!(
        body["paging"].get("next").is_none(),
        "single result page has no next"
    );
    assert!(
        body["paging"]["cursors"]["after"].is_string(),
        "after cursor"
    );
    assert_eq!(
        reply.header("facebook-api-version"),
        Some("v21.0"),
        "version header"
    );
    assert!(reply.header("x-fb-trace-id").is_some(), "trace id header");

    let usage: Value = serde_json::from_str(reply.header("x-app-usage").expect("X-App-Usage"))
        .expect("usage JSON");
    assert!(
        usage["call_count"].as_i64().is_some_and(|n| n < 100),
        "call_count below the limit"
    );

    let again = harness.accounts(&token, &[]).await.json();
    assert_eq!(
        again["data"][0]["access_token"], page["access_token"],
        "Page token is stable"
    );
}

#[tokio::test]
async fn accounts_fields_filter() {
    let harness = Harness::start().await;
    let token = harness.login("pages_show_list").await;
    let reply = harness.accounts(&token, &[("fields", "name")]).await;
    let page = reply.json()["data"][0].clone();
    let keys: Vec<&String> = page.as_object().expect("Page object").keys().collect();

    assert_eq!(keys, ["id", "name"], "only id and the requested field");

    let unknown = harness
        .accounts(&token, &[("fields", "name,fan_count")])
        .await;
    assert_graph_error(
        &unknown,
        "unknown field",
        100,
        None,
        "(#100) Tried accessing nonexisting field (fan_count) on node type (Page)",
    );
}

#[tokio::test]
async fn accounts_token_errors() {
    let harness = Harness::start().await;
    let no_token = harness.get(&harness.graph_url("/me/accounts"), &[]).await;
    assert_graph_error(
        &no_token,
        "no token",
        2500,
        None,
        "An active access token must be used to query information about the current user.",
    );

    let unknown = harness.accounts("EAAnot-issued", &[]).await;
    assert_graph_error(
        &unknown,
        "unknown token",
        190,
        None,
        "Invalid OAuth access token - Cannot parse access token",
    );

    let token = harness.login("public_profile").await;
    let no_permission = harness.accounts(&token, &[]).await;
    assert_eq!(
        no_permission.status,
        StatusCode::BAD_REQUEST,
        "no pages_show_list: status"
    );
    assert_eq!(
        no_permission.json()["error"]["code"],
        200,
        "no pages_show_list: code"
    );
}

#[tokio::test]
async fn accounts_appsecret_proof_errors() {
    let harness = Harness::start().await;
    let token = harness.login("pages_show_list").await;
    let url = harness.graph_url("/me/accounts");

    let missing = harness.get(&url, &[("access_token", token.as_str())]).await;
    assert_graph_error(
        &missing,
        "missing proof",
        100,
        None,
        "API calls from the server require an appsecret_proof argument",
    );
    assert_eq!(
        missing.json()["error"]["type"],
        "GraphMethodException",
        "missing proof: type"
    );

    let wrong_proof = appsecret_proof("another-token");
    let wrong_cases = [("wrong proof", wrong_proof.as_str()), ("not hex", "zz")];
    for (case, proof) in wrong_cases {
        let reply = harness
            .get(
                &url,
                &[("access_token", token.as_str()), ("appsecret_proof", proof)],
            )
            .await;
        assert_graph_error(
            &reply,
            case,
            100,
            None,
            "Invalid appsecret_proof provided in the API argument",
        );
        assert_eq!(
            reply.json()["error"]["type"],
            "GraphMethodException",
            "{case}: type"
        );
    }
}

#[tokio::test]
async fn accounts_accepts_header_token_and_timestamped_proof() {
    let harness = Harness::start().await;
    let token = harness.login("pages_show_list").await;
    let url = harness.graph_url("/me/accounts");

    let bearer = harness
        .client
        .get(&url)
        .bearer_auth(&token)
        .query(&[("appsecret_proof", appsecret_proof(&token))])
        .send()
        .await
        .expect("GET with bearer");
    assert_eq!(bearer.status(), StatusCode::OK, "Bearer header token");

    let time = "1790000000";
    let timed_proof = appsecret_proof(&format!("{token}|{time}"));
    let query = [
        ("access_token", token.as_str()),
        ("appsecret_proof", &timed_proof),
        ("appsecret_time", time),
    ];
    let timed = harness.get(&url, &query).await;
    assert_eq!(
        timed.status,
        StatusCode::OK,
        "timestamped proof: {}",
        timed.body
    );
}

#[tokio::test]
async fn accounts_limit_and_cursor_errors() {
    let harness = Harness::start().await;
    harness.sandbox.set_page_count(150);
    let token = harness.login("pages_show_list").await;

    for bad in ["0", "abc", "-5"] {
        let reply = harness.accounts(&token, &[("limit", bad)]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "limit {bad}: status");
        assert_eq!(reply.json()["error"]["code"], 100, "limit {bad}: code");
    }

    let clamped = harness.accounts(&token, &[("limit", "500")]).await.json();
    assert_eq!(
        clamped["data"].as_array().map(Vec::len),
        Some(100),
        "limit clamped to 100"
    );

    let default = harness.accounts(&token, &[]).await.json();
    assert_eq!(
        default["data"].as_array().map(Vec::len),
        Some(25),
        "default limit 25"
    );

    let bad_cursor = harness
        .accounts(&token, &[("after", "%%%not-base64")])
        .await;
    assert_eq!(
        bad_cursor.status,
        StatusCode::BAD_REQUEST,
        "bad cursor: status"
    );
    assert_eq!(bad_cursor.json()["error"]["code"], 100, "bad cursor: code");
}

#[tokio::test]
async fn accounts_zero_pages_has_no_paging() {
    let harness = Harness::start().await;
    harness.sandbox.set_page_count(0);
    let token = harness.login("pages_show_list").await;
    let reply = harness.accounts(&token, &[]).await;

    assert_eq!(reply.status, StatusCode::OK, "status");
    assert_eq!(
        reply.json(),
        serde_json::json!({ "data": [] }),
        "empty data, no paging"
    );
}

#[tokio::test]
async fn graph_unknown_path_is_error_2500() {
    let harness = Harness::start().await;
    for path in [
        "/graph/v21.0/me",
        "/graph/v21.0/me/accounts/extra",
        "/graph/nonsense",
        "/graph",
    ] {
        let reply = harness.get(&format!("{}{path}", harness.base), &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: status");
        assert_eq!(reply.json()["error"]["code"], 2500, "{path}: code");
        assert!(
            reply.header("facebook-api-version").is_some(),
            "{path}: version header"
        );
    }

    let bad_version = harness
        .get(&format!("{}/graph/21/me/accounts", harness.base), &[])
        .await;
    assert_eq!(
        bad_version.status,
        StatusCode::BAD_REQUEST,
        "malformed version: status"
    );
    assert_eq!(
        bad_version.json()["error"]["code"],
        2500,
        "malformed version: code"
    );
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn fault_server_error() {
    let harness = Harness::start().await;
    harness
        .sandbox
        .inject(Endpoint::TokenExchange, Fault::ServerError);
    let reply = harness.exchange("any").await;
    let error = &reply.json()["error"];

    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "status");
    assert_eq!(error["code"], 2, "code");
    assert_eq!(error["is_transient"], true, "is_transient");
    assert_eq!(error["type"], "OAuthException", "type");
    assert_eq!(
        error["message"], "An unexpected error has occurred. Please retry your request later.",
        "message"
    );
}

#[tokio::test]
async fn fault_html_body() {
    let harness = Harness::start().await;
    harness.sandbox.inject(Endpoint::Accounts, Fault::Html);
    let reply = harness.accounts("any", &[]).await;

    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "status");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "content type"
    );
    assert!(reply.body.contains("<html>"), "HTML body");
}

#[tokio::test]
async fn fault_malformed_json() {
    let harness = Harness::start().await;
    harness
        .sandbox
        .inject(Endpoint::TokenExchange, Fault::MalformedJson);
    let reply = harness.exchange("any").await;

    assert_eq!(reply.status, StatusCode::OK, "status");
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "content type"
    );
    assert!(
        serde_json::from_str::<Value>(&reply.body).is_err(),
        "body does not parse"
    );
}

#[tokio::test]
async fn fault_redirect() {
    let harness = Harness::start().await;
    harness.sandbox.inject(Endpoint::Dialog, Fault::Redirect);
    let reply = harness.open_dialog(&dialog_query("s")).await;
    let location = reply.header("location").unwrap_or_default();

    assert_eq!(reply.status, StatusCode::FOUND, "status");
    assert!(
        location.starts_with("http://127.0.0.1:"),
        "redirect stays on loopback: {location}"
    );
    assert!(
        !location.contains("/dialog/oauth"),
        "redirect goes elsewhere: {location}"
    );
}

#[tokio::test]
async fn fault_delay_then_normal_answer() {
    let harness = Harness::start().await;
    let delay = Duration::from_millis(300);
    harness
        .sandbox
        .inject(Endpoint::TokenExchange, Fault::Delay(delay));
    let code = harness.sandbox.issue_code(REDIRECT_URI, "");
    let started = Instant::now();
    let reply = harness.exchange(&code).await;

    assert!(started.elapsed() >= delay, "answer waited for the delay");
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "normal answer after the delay"
    );
}

#[tokio::test]
async fn fault_rate_limited() {
    let harness = Harness::start().await;
    harness
        .sandbox
        .inject(Endpoint::Accounts, Fault::RateLimited);
    let reply = harness.accounts("any", &[]).await;
    let usage: Value = serde_json::from_str(reply.header("x-app-usage").expect("X-App-Usage"))
        .expect("usage JSON");

    assert_graph_error(
        &reply,
        "rate limited",
        4,
        None,
        "(#4) Application request limit reached",
    );
    assert_eq!(reply.json()["error"]["is_transient"], true, "is_transient");
    assert_eq!(usage["call_count"], 100, "call_count at the limit");
}

#[tokio::test]
async fn fault_custom_graph_error() {
    let harness = Harness::start().await;
    let fault = Fault::GraphError {
        status: 400,
        code: 190,
        subcode: Some(463),
        message: "Error validating access token: Session has expired".to_owned(),
        error_type: "OAuthException".to_owned(),
    };
    harness.sandbox.inject(Endpoint::Accounts, fault);
    let reply = harness.accounts("any", &[]).await;

    assert_graph_error(
        &reply,
        "custom error",
        190,
        Some(463),
        "Error validating access token: Session has expired",
    );
}

#[tokio::test]
async fn fault_oversized_body() {
    let harness = Harness::start().await;
    let size = 3 * 1024 * 1024;
    harness
        .sandbox
        .inject(Endpoint::TokenExchange, Fault::OversizedBody(size));
    let reply = harness.exchange("any").await;

    assert_eq!(reply.status, StatusCode::OK, "status");
    assert_eq!(reply.body.len(), size, "body size");
    assert!(
        serde_json::from_str::<Value>(&reply.body).is_ok(),
        "body is valid JSON"
    );
}

#[tokio::test]
async fn faults_count_and_clear() {
    let harness = Harness::start().await;
    harness
        .sandbox
        .inject(Endpoint::TokenExchange, Fault::ServerError);
    let faulted = harness.exchange("any").await;
    assert_eq!(
        faulted.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "fault applies"
    );

    harness.sandbox.clear_faults();
    let code = harness.sandbox.issue_code(REDIRECT_URI, "");
    let normal = harness.exchange(&code).await;
    assert_eq!(
        normal.status,
        StatusCode::OK,
        "cleared fault no longer applies"
    );

    assert_eq!(
        harness.sandbox.request_count(Endpoint::TokenExchange),
        2,
        "faulted and normal requests counted"
    );
    assert_eq!(
        harness.sandbox.request_count(Endpoint::Accounts),
        0,
        "other endpoint untouched"
    );
}
