//! A fake Facebook: the OAuth login dialog and the few Graph API calls this service makes.
//!
//! `facebook-oauth --sandbox` nests [`Sandbox::router`] under `/sandbox` so the whole login runs
//! without a Facebook app. Integration tests serve the same router on an ephemeral port and use
//! the test hooks ([`Sandbox::inject`], [`Sandbox::issue_code`], [`Sandbox::age_codes`], ...) to
//! drive edge cases and failures.
//!
//! # Layout
//! - `mod.rs`: public API, configuration, shared state and fault bookkeeping.
//! - `dialog.rs`: the HTML login dialog and its Continue / Cancel form target.
//! - `pages.rs`: HTML rendering, CSS and the dialog's security headers.
//! - `graph.rs`: Graph API error objects, response headers, versions and unknown paths.
//! - `token.rs`: `oauth/access_token`, the code-for-token exchange.
//! - `accounts.rs`: `me/accounts`, the user's Pages with cursor paging.
//! - `faults.rs`: responses for injected faults.
//! - `store.rs`: bounded, expiring maps for codes and tokens.
//! - `params.rs`: query and form parameter parsing.
//!
//! Behaviour follows what Facebook documents or was observed to do (Graph API v21.0 to v27.0,
//! as of late 2026). Where the sandbox had to pick an error text that Facebook is not known to
//! send, a `NOTE:` marks it in the handler.

mod accounts;
mod dialog;
mod faults;
mod graph;
mod pages;
mod params;
mod store;
mod token;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use store::{CodeGrant, ExpiringMap, TokenGrant};

/// Lifetime of an authorization code. RFC 6749 section 4.1.2 recommends at most 10 minutes, and
/// Facebook rejects older codes with subcode 36007.
const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// How long an expired code is kept so that exchanging it reports "expired" rather than "invalid".
const CODE_RETENTION: Duration = Duration::from_secs(60 * 60);

/// Lifetime of a user access token, in seconds, as sent in `expires_in`. Facebook's long-lived
/// token documentation shows this value, and code exchanges commonly return about 60 days.
const TOKEN_LIFETIME_SECS: u64 = 5_183_944;

/// Maximum number of codes, and separately of tokens, kept in memory. The oldest entry is
/// dropped first when a map is full, so a long-running `--sandbox` server stays bounded.
const MAX_STORED_GRANTS: usize = 100_000;

/// Settings of the one Facebook app and one user that the sandbox imitates.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// App ID that the dialog and the token exchange accept as `client_id`.
    pub app_id: String,
    /// App secret that the token exchange accepts and that keys `appsecret_proof`.
    pub app_secret: String,
    /// The only redirect URI registered for the app. Requests must match it byte for byte.
    pub redirect_uri: String,
    /// Number of Pages the sandbox user manages.
    pub page_count: usize,
    /// App name shown on the login dialog.
    pub app_name: String,
}

impl SandboxConfig {
    pub const DEFAULT_APP_ID: &'static str = "100000000000001";
    pub const DEFAULT_APP_SECRET: &'static str = "sandbox-app-secret-not-for-production";
    pub const DEFAULT_PAGE_COUNT: usize = 3;
    pub const DEFAULT_APP_NAME: &'static str = "Sandbox App";

    /// Sandbox defaults for everything but the redirect URI.
    pub fn with_redirect_uri(redirect_uri: impl Into<String>) -> Self {
        Self {
            app_id: Self::DEFAULT_APP_ID.to_owned(),
            app_secret: Self::DEFAULT_APP_SECRET.to_owned(),
            redirect_uri: redirect_uri.into(),
            page_count: Self::DEFAULT_PAGE_COUNT,
            app_name: Self::DEFAULT_APP_NAME.to_owned(),
        }
    }
}

/// Sandbox endpoint that faults and request counts apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The login dialog page and its Continue / Cancel form target.
    Dialog,
    /// `oauth/access_token`.
    TokenExchange,
    /// `me/accounts`.
    Accounts,
}

impl Endpoint {
    fn index(self) -> usize {
        match self {
            Endpoint::Dialog => 0,
            Endpoint::TokenExchange => 1,
            Endpoint::Accounts => 2,
        }
    }
}

/// Failure that an endpoint returns instead of its normal response, for testing clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with Facebook's transient error object (code 2, `is_transient: true`).
    ServerError,
    /// HTTP 502 with an HTML body and `content-type: text/html`, as a proxy's error page.
    Html,
    /// HTTP 200 with `content-type: application/json` and a truncated JSON body.
    MalformedJson,
    /// HTTP 302 to another URL on the same host.
    Redirect,
    /// Waits this long, then responds normally.
    Delay(Duration),
    /// HTTP 400 with code 4 "(#4) Application request limit reached" and a full `X-App-Usage`.
    RateLimited,
    /// Any Facebook error object with the given HTTP status.
    GraphError {
        status: u16,
        code: i64,
        subcode: Option<i64>,
        message: String,
        error_type: String,
    },
    /// HTTP 200 with a JSON body of this many bytes (at least 2), for testing body size caps.
    OversizedBody(usize),
}

/// The fake Facebook. Cloning is cheap and every clone shares the same state.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

/// A fault and how many more requests it applies to (`None`: until cleared).
struct InjectedFault {
    fault: Fault,
    remaining: Option<usize>,
}

struct Inner {
    config: SandboxConfig,
    page_count: AtomicUsize,
    request_counts: [AtomicUsize; 3],
    faults: Mutex<HashMap<Endpoint, InjectedFault>>,
    codes: Mutex<ExpiringMap<CodeGrant>>,
    tokens: Mutex<ExpiringMap<TokenGrant>>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        let page_count = AtomicUsize::new(config.page_count);
        let codes = ExpiringMap::new(CODE_RETENTION, MAX_STORED_GRANTS);
        let tokens = ExpiringMap::new(Duration::from_secs(TOKEN_LIFETIME_SECS), MAX_STORED_GRANTS);
        Self {
            inner: Arc::new(Inner {
                config,
                page_count,
                request_counts: Default::default(),
                faults: Mutex::new(HashMap::new()),
                codes: Mutex::new(codes),
                tokens: Mutex::new(tokens),
            }),
        }
    }

    /// Builds the sandbox routes without a prefix.
    ///
    /// The service nests them at `/sandbox`, so with the server at `http://127.0.0.1:PORT` the
    /// dialog base URL is `http://127.0.0.1:PORT/sandbox` and the Graph base URL is
    /// `http://127.0.0.1:PORT/sandbox/graph`. Routes, relative to the nest point:
    /// - `GET /{version}/dialog/oauth`: login dialog (HTML).
    /// - `POST /{version}/dialog/oauth/confirm`: form target of Continue and Cancel.
    /// - `GET|POST /graph/{version}/oauth/access_token`: code-for-token exchange.
    /// - `GET /graph/{version}/me/accounts`: the user's Pages.
    /// - anything else under `/graph`: Facebook's error for an unknown path (HTTP 400).
    pub fn router(&self) -> Router {
        let dialog_routes = Router::new()
            .route("/{version}/dialog/oauth", get(dialog::show))
            .route("/{version}/dialog/oauth/confirm", post(dialog::confirm));
        // Nested as a service so that its fallback handles every other path under `/graph`,
        // including `/graph` itself, even when the service nests this router again.
        let graph_routes = Router::new()
            .route(
                "/{version}/oauth/access_token",
                get(token::exchange).post(token::exchange),
            )
            .route("/{version}/me/accounts", get(accounts::list))
            .route_layer(crate::telemetry::RecordMatchedPathLayer)
            .fallback(graph::unknown_path)
            .with_state(self.clone());

        dialog_routes
            .nest_service("/graph", graph_routes)
            .layer(middleware::from_fn(log_request))
            .with_state(self.clone())
    }

    /// Makes every later request to `endpoint` fail with `fault` until [`Sandbox::clear_faults`].
    /// A new fault for the same endpoint replaces the previous one.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault) {
        let injected = InjectedFault {
            fault,
            remaining: None,
        };
        lock(&self.inner.faults).insert(endpoint, injected);
    }

    /// Makes the next `times` requests to `endpoint` fail with `fault`. Later
    /// requests get normal responses. Replaces any fault for that endpoint.
    pub fn inject_times(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        let injected = InjectedFault {
            fault,
            remaining: Some(times),
        };
        lock(&self.inner.faults).insert(endpoint, injected);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// Returns how many requests reached `endpoint`, faulted or not.
    pub fn request_count(&self, endpoint: Endpoint) -> usize {
        self.inner.request_counts[endpoint.index()].load(Ordering::Relaxed)
    }

    /// Issues an authorization code as if the user had clicked Continue on a dialog opened with
    /// this `redirect_uri` and `scope` (comma- or space-separated). The redirect URI is not
    /// checked against the registered one, so tests can create mismatching codes.
    pub fn issue_code(&self, redirect_uri: &str, scope: &str) -> String {
        let code = store::new_code();
        let grant = CodeGrant {
            redirect_uri: redirect_uri.to_owned(),
            scopes: split_scope(scope),
            used: false,
        };
        lock(&self.inner.codes).insert(code.clone(), grant);
        code
    }

    /// Makes every stored code older by `by`, to test the 10-minute code expiry.
    pub fn age_codes(&self, by: Duration) {
        lock(&self.inner.codes).age_all(by);
    }

    /// Changes the number of Pages the sandbox user manages, for later requests.
    pub fn set_page_count(&self, count: usize) {
        self.inner.page_count.store(count, Ordering::Relaxed);
    }

    fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    fn page_count(&self) -> usize {
        self.inner.page_count.load(Ordering::Relaxed)
    }

    /// Counts a request to `endpoint` and returns the fault to respond with, if one is injected.
    /// A [`Fault::Delay`] is served here by sleeping, and then no fault is returned.
    async fn begin_request(&self, endpoint: Endpoint) -> Option<Fault> {
        self.inner.request_counts[endpoint.index()].fetch_add(1, Ordering::Relaxed);
        let fault = {
            let mut faults = lock(&self.inner.faults);
            match faults.get_mut(&endpoint) {
                Some(InjectedFault {
                    remaining: Some(0), ..
                }) => {
                    faults.remove(&endpoint);
                    None
                }
                Some(injected) => {
                    if let Some(remaining) = injected.remaining.as_mut() {
                        *remaining -= 1;
                    }
                    Some(injected.fault.clone())
                }
                None => None,
            }
        };
        match fault {
            Some(Fault::Delay(duration)) => {
                tokio::time::sleep(duration).await;
                None
            }
            other => other,
        }
    }
}

/// Splits a `scope` parameter on commas and spaces, as the dialog does, dropping empty items.
fn split_scope(scope: &str) -> Vec<String> {
    scope
        .split([',', ' '])
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it. Every critical section
/// here leaves the data consistent, so a poisoned lock carries no torn state.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Logs method and path only, because query strings carry codes, tokens and secrets.
async fn log_request(request: Request, next: Next) -> Response {
    tracing::debug!(method = %request.method(), path = %request.uri().path(), "sandbox request");
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_scope_accepts_commas_and_spaces() {
        assert_eq!(
            split_scope("pages_show_list, business_management email"),
            ["pages_show_list", "business_management", "email"]
        );
    }

    #[test]
    fn split_scope_empty_gives_nothing() {
        assert!(split_scope("").is_empty(), "empty scope");
        assert!(split_scope(" , ").is_empty(), "separators only");
    }
}
