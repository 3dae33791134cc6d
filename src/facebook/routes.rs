//! `GET /facebook/login` and `GET /facebook/callback`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::FacebookConfig;
use crate::error::{AppError, LoginRefusal};
use crate::facebook::graph::GraphClient;
use crate::facebook::login_state::{LoginSigner, parse_cookie_headers, unix_now_millis};

/// A whole callback may take this many times `FACEBOOK_TIMEOUT_SECS`
/// (60 seconds by default), however many Graph calls it makes.
pub const LOGIN_DEADLINE_FACTOR: u32 = 6;

/// State shared by the Facebook routes.
#[derive(Debug)]
pub struct FacebookState {
    pub config: FacebookConfig,
    pub graph: GraphClient,
    pub signer: LoginSigner,
    /// One permit per callback that calls Graph, `FACEBOOK_MAX_IN_FLIGHT` in all.
    pub in_flight: Semaphore,
    /// The dialog URL up to the state's value, built once at start-up.
    dialog_url_prefix: String,
}

impl FacebookState {
    pub fn new(config: FacebookConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            graph: GraphClient::new(config.clone())?,
            signer: LoginSigner::new(&config.app_secret, &config.redirect_uri),
            in_flight: Semaphore::new(config.max_in_flight),
            dialog_url_prefix: build_dialog_url_prefix(&config),
            config,
        })
    }
}

pub type SharedState = Arc<FacebookState>;

/// Builds the login routes with their full paths. They are merged rather
/// than nested, which saves rewriting every request's URI.
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/facebook/login", get(start_login))
        .route("/facebook/callback", get(finish_login))
}

/// Redirects the browser to Facebook's login dialog, with a new state bound
/// to this browser by a cookie.
async fn start_login(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let cookies = read_cookies(&headers);
    let login = state.signer.start(&cookies, unix_now_millis());

    // The state is unpadded base64url, which needs no percent-encoding.
    let dialog_url = format!("{}{}", state.dialog_url_prefix, login.state);

    let mut response = (StatusCode::FOUND, [(header::LOCATION, dialog_url)]).into_response();
    // Room for every header this response gets, so the map grows only once.
    response.headers_mut().reserve(16);
    append_set_cookies(&mut response, &login.set_cookies);
    mark_uncacheable(&mut response);
    response
}

/// Takes Facebook's redirect back: checks the state, exchanges the code and
/// returns the token with every Page the user manages.
async fn finish_login(
    State(state): State<SharedState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cookies = read_cookies(&headers);
    let params = CallbackParams::parse(query.as_deref());
    let state_param = params
        .as_ref()
        .ok()
        .and_then(|params| params.state.as_deref());

    let mut checked = state.signer.check(state_param, &cookies, unix_now_millis());

    let outcome = match (params, checked.result) {
        (Err(error), _) | (Ok(_), Err(error)) => Err(error),
        (Ok(params), Ok(())) => complete_login(&state, params).await,
    };

    // A busy service has not used the code, so the login stays open and the
    // same callback may be retried. Every other outcome finishes the login.
    if !matches!(outcome, Err(AppError::Busy)) {
        checked.set_cookies.extend(checked.finished_marker.take());
    }
    let mut response = match outcome {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(error) => error.into_response(),
    };
    append_set_cookies(&mut response, &checked.set_cookies);
    mark_uncacheable(&mut response);
    response
}

/// Rejects a method other than GET on a Facebook route, uncached like the rest.
pub async fn reject_method() -> Response {
    let mut response = AppError::MethodNotAllowed.into_response();
    mark_uncacheable(&mut response);
    response
}

/// Marks a response of the login flow, which carries tokens or a fresh
/// state, as never cached, and keeps the callback URL (which contains the
/// code) out of `Referer` headers.
fn mark_uncacheable(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// Runs the steps that need a verified state: the Facebook error check, the
/// code exchange and the Pages list.
async fn complete_login(state: &FacebookState, params: CallbackParams) -> Result<Value, AppError> {
    // Facebook's error wins over a code sent with it.
    if let Some(error) = params.error {
        let refusal = Box::new(LoginRefusal {
            error,
            error_reason: params.error_reason,
            error_description: params.error_description,
            error_code: params.error_code,
        });
        return Err(if refusal.error == "access_denied" {
            AppError::AccessDenied(refusal)
        } else {
            AppError::LoginFailed(refusal)
        });
    }
    let code = params.code.ok_or(AppError::CodeMissing)?;

    // With Facebook hung, waiting callbacks would pile up sockets and memory
    // until they time out; beyond the limit they are turned away at once.
    let _permit = state.in_flight.try_acquire().map_err(|_| AppError::Busy)?;

    // Each Graph call has its own timeout; this bounds the whole login,
    // paging and retries included.
    let deadline = state.config.timeout * LOGIN_DEADLINE_FACTOR;
    let calls = async {
        let (access_token, token_data) = state.graph.exchange_code(&code).await?;
        let pages = state.graph.list_pages(&access_token).await?;
        Ok::<_, AppError>((token_data, pages))
    };
    let (token_data, pages) = tokio::time::timeout(deadline, calls)
        .await
        .map_err(|_| AppError::FacebookTimedOut)??;

    Ok(json!({ "token_data": token_data, "pages": { "data": pages } }))
}

/// The callback's query parameters that the service reads. Others, such as
/// `granted_scopes` or `iss`, are ignored.
#[derive(Debug, Default)]
struct CallbackParams {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_reason: Option<String>,
    error_description: Option<String>,
    error_code: Option<String>,
}

impl CallbackParams {
    /// Parses the query string. A repeated parameter is rejected, because
    /// the intended copy is ambiguous, and an empty one counts as absent.
    fn parse(query: Option<&str>) -> Result<Self, AppError> {
        let mut seen: HashMap<String, String> = HashMap::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let known = matches!(
                name.as_ref(),
                "state" | "code" | "error" | "error_reason" | "error_description" | "error_code"
            );
            if !known {
                continue;
            }
            if seen.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(AppError::InvalidQuery(format!(
                    "the parameter {name} appears more than once; send it once"
                )));
            }
        }
        let mut take = |name: &str| seen.remove(name).filter(|value| !value.is_empty());
        Ok(Self {
            state: take("state"),
            code: take("code"),
            error: take("error"),
            error_reason: take("error_reason"),
            error_description: take("error_description"),
            error_code: take("error_code"),
        })
    }
}

/// Builds the dialog URL, every value percent-encoded, up to and including
/// `state=`. No PKCE parameters: Facebook drops `code_challenge` in this flow
/// and then rejects a `code_verifier` at the token exchange.
fn build_dialog_url_prefix(config: &FacebookConfig) -> String {
    let address = format!(
        "{}/{}/dialog/oauth",
        config.dialog_url, config.graph_version
    );
    let mut url =
        Url::parse(&address).expect("dialog base URL and version are validated at start-up");
    url.query_pairs_mut()
        .append_pair("client_id", &config.app_id)
        .append_pair("redirect_uri", &config.redirect_uri)
        .append_pair("scope", &config.scopes)
        .append_pair("response_type", "code");
    format!("{url}&state=")
}

fn read_cookies(headers: &HeaderMap) -> Vec<(&str, &str)> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok());
    parse_cookie_headers(values)
}

fn append_set_cookies(response: &mut Response, set_cookies: &[String]) {
    for cookie in set_cookies {
        match HeaderValue::from_str(cookie) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            // Unreachable in practice: cookie names and values contain only
            // base64url characters, digits and dots.
            Err(error) => tracing::error!(%error, "failed to build a Set-Cookie header"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialog_url_percent_encodes_values() {
        let mut config = FacebookConfig::sandbox(5000);
        config.redirect_uri = "https://a.example.com/cb?next=/x&y=1".to_owned();
        config.scopes = "pages_show_list,pages_messaging".to_owned();
        let url = format!("{}abc", build_dialog_url_prefix(&config));
        assert!(
            url.contains("redirect_uri=https%3A%2F%2Fa.example.com%2Fcb%3Fnext%3D%2Fx%26y%3D1"),
            "redirect_uri encoded: {url}"
        );
        assert!(
            url.contains("scope=pages_show_list%2Cpages_messaging"),
            "scope encoded: {url}"
        );
        assert!(url.contains("response_type=code"), "response_type: {url}");
        assert!(!url.contains("code_challenge"), "no PKCE: {url}");
    }

    #[test]
    fn callback_params_reject_repeats() {
        let error = CallbackParams::parse(Some("state=a&state=b")).expect_err("repeat");
        assert_eq!(error.code(), "invalid_query", "repeated state");
    }

    #[test]
    fn callback_params_ignore_unknown() {
        let params = CallbackParams::parse(Some("code=c&state=s&iss=x&iss=y")).expect("valid");
        assert_eq!(params.code.as_deref(), Some("c"), "code");
        assert_eq!(params.state.as_deref(), Some("s"), "state");
    }
}
