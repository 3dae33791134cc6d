//! The Graph API client: the code exchange and `/me/accounts`.
//!
//! Every failure is classified before it becomes an [`AppError`]: Facebook
//! rejected the user's input, Facebook rejected this app's settings, Facebook
//! is rate-limiting, Facebook failed, or Facebook timed out.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use url::Url;

use crate::config::FacebookConfig;
use crate::error::{AppError, AppSetting};

/// Maximum bytes read from one Graph response. A `/me/accounts` page of 100
/// Pages with every default field is an estimated 100 KB, so 4 MiB leaves
/// room while keeping one misbehaving response from exhausting memory.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Maximum bytes of all `/me/accounts` responses of one login together, so
/// that the per-response cap cannot add up to hundreds of MiB per callback.
pub const MAX_TOTAL_PAGE_BYTES: usize = 32 * 1024 * 1024;

/// Pages requested per `/me/accounts` call.
pub const PAGES_PER_REQUEST: usize = 100;

/// The most `/me/accounts` calls for one login: 100 × 100 Pages is more than
/// any real account manages, and the cap stops a cursor loop.
pub const MAX_PAGE_REQUESTS: usize = 100;

/// Wait before the one retry of a `/me/accounts` call that failed on Facebook's side.
const RETRY_BACKOFF: Duration = Duration::from_millis(250);

/// Usage percentage from which Facebook's usage headers are logged as warnings;
/// Facebook starts throttling at 100.
const USAGE_WARNING_PERCENT: u64 = 80;

/// `Retry-After` sent to a rate-limited client when Facebook gives no estimate.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Facebook's error object, as documented in
/// <https://developers.facebook.com/docs/graph-api/guides/error-handling>.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FacebookError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default)]
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    /// Not described in Facebook's error guide, but sent on real responses;
    /// treated as a hint only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
}

impl FacebookError {
    /// Returns whether the code is one of Graph's rate-limit codes
    /// (<https://developers.facebook.com/docs/graph-api/overview/rate-limiting/>).
    fn is_rate_limit(&self) -> bool {
        matches!(self.code, 4 | 17 | 32 | 341 | 613 | 80000..=80014)
    }

    /// Returns whether Facebook reports the failure is on its side (codes 1 and 2,
    /// or the `is_transient` hint).
    fn is_transient(&self) -> bool {
        matches!(self.code, 1 | 2) || self.is_transient == Some(true)
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: FacebookError,
}

/// The Graph call a response came from; errors are classified per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GraphCall {
    ExchangeCode,
    ListPages,
}

/// A failed Graph call, with whether repeating it may succeed.
struct CallFailure {
    error: AppError,
    /// Facebook failed on its side (5xx, codes 1 and 2, `is_transient`, a
    /// reset connection), so an idempotent call may be repeated once.
    retryable: bool,
}

impl CallFailure {
    fn final_error(error: AppError) -> Self {
        Self {
            error,
            retryable: false,
        }
    }
}

impl From<CallFailure> for AppError {
    fn from(failure: CallFailure) -> Self {
        failure.error
    }
}

/// One pooled HTTP client for the whole process, with the app's settings.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    config: FacebookConfig,
    /// Set once a version mismatch is logged, so it is logged only once.
    version_mismatch_logged: Arc<AtomicBool>,
}

impl GraphClient {
    /// Builds the client: timeouts from the config, no redirects followed
    /// (a redirect from Graph is a failure, and following one could leak the
    /// secret elsewhere), and a User-Agent naming this service.
    pub fn new(config: FacebookConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("facebook-oauth/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(Self {
            http,
            config,
            version_mismatch_logged: Arc::new(AtomicBool::new(false)),
        })
    }

    fn endpoint(&self, path: &str) -> Url {
        let address = format!(
            "{}/{}/{path}",
            self.config.graph_url, self.config.graph_version
        );
        // The base URL and version were validated at start-up, so this parses.
        Url::parse(&address).expect("Graph base URL and version are validated at start-up")
    }

    /// Exchanges an authorization code for a user access token. Returns the
    /// token and Facebook's JSON object unchanged. Never retried: a code
    /// works once.
    pub async fn exchange_code(
        &self,
        code: &str,
    ) -> Result<(String, Map<String, Value>), AppError> {
        let mut url = self.endpoint("oauth/access_token");
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.app_id)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("client_secret", self.config.app_secret.expose())
            .append_pair("code", code);

        let (token_data, _) = self
            .send(self.http.get(url), GraphCall::ExchangeCode)
            .await?;

        match token_data.get("access_token") {
            Some(Value::String(token)) if !token.is_empty() => Ok((token.clone(), token_data)),
            _ => Err(AppError::FacebookFailed {
                reason: "the token exchange response has no access_token".to_owned(),
                facebook: None,
            }),
        }
    }

    /// Lists every Page the user manages, following the `after` cursor while
    /// Graph sends `paging.next`. The cursor is used on our own base URL, never
    /// the `next` URL as given, so a tampered `next` cannot redirect the call.
    pub async fn list_pages(&self, access_token: &str) -> Result<Vec<Value>, AppError> {
        let proof = sign_token(self.config.app_secret.expose(), access_token);
        let limit = PAGES_PER_REQUEST.to_string();
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        let mut total_bytes = 0;

        for _ in 0..MAX_PAGE_REQUESTS {
            let mut url = self.endpoint("me/accounts");
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("fields", &self.config.page_fields)
                    .append_pair("limit", &limit)
                    .append_pair("appsecret_proof", &proof);
                if let Some(cursor) = &after {
                    query.append_pair("after", cursor);
                }
            }
            let request = self.http.get(url).bearer_auth(access_token);

            let (mut body, body_bytes) = self.send_with_one_retry(request).await?;
            total_bytes += body_bytes;
            if total_bytes > MAX_TOTAL_PAGE_BYTES {
                return Err(AppError::FacebookFailed {
                    reason: format!(
                        "the Pages list is larger than {MAX_TOTAL_PAGE_BYTES} bytes in all"
                    ),
                    facebook: None,
                });
            }

            match body.remove("data") {
                Some(Value::Array(data)) => pages.extend(data),
                _ => {
                    return Err(AppError::FacebookFailed {
                        reason: "the /me/accounts response has no data array".to_owned(),
                        facebook: None,
                    });
                }
            }
            let paging = body.get("paging");
            // Graph's rule: the list ends when `next` is absent, even after a
            // short or empty page (https://developers.facebook.com/docs/graph-api/results/).
            if paging.and_then(|paging| paging.get("next")).is_none() {
                return Ok(pages);
            }
            let cursor = paging
                .and_then(|paging| paging.pointer("/cursors/after"))
                .and_then(Value::as_str);
            match cursor {
                Some(cursor) if !seen_cursors.insert(cursor.to_owned()) => {
                    return Err(AppError::FacebookFailed {
                        reason: "Graph repeated a paging cursor, so the Pages list would never end"
                            .to_owned(),
                        facebook: None,
                    });
                }
                Some(cursor) if !cursor.is_empty() => after = Some(cursor.to_owned()),
                _ => {
                    return Err(AppError::FacebookFailed {
                        reason: "the /me/accounts response has paging.next but no after cursor"
                            .to_owned(),
                        facebook: None,
                    });
                }
            }
        }
        Err(AppError::TooManyPages(MAX_PAGE_REQUESTS))
    }

    /// Sends an idempotent `/me/accounts` request, and repeats it once after
    /// [`RETRY_BACKOFF`] when Facebook failed on its side. Rate limits and
    /// timeouts are not retried: more calls extend a block, and a second
    /// timeout would double the user's wait.
    async fn send_with_one_retry(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(Map<String, Value>, usize), AppError> {
        let retry = request.try_clone();
        match self.send(request, GraphCall::ListPages).await {
            Ok(body) => Ok(body),
            Err(failure) if failure.retryable && retry.is_some() => {
                tracing::warn!(
                    cause = %failure.error,
                    backoff_ms = RETRY_BACKOFF.as_millis() as u64,
                    "/me/accounts failed on Facebook's side; retrying once"
                );
                tokio::time::sleep(RETRY_BACKOFF).await;
                let retry = retry.expect("checked above");
                Ok(self.send(retry, GraphCall::ListPages).await?)
            }
            Err(failure) => Err(failure.error),
        }
    }

    /// Sends a request and returns the JSON object of a successful response,
    /// or the classified failure.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        call: GraphCall,
    ) -> Result<(Map<String, Value>, usize), CallFailure> {
        let response = request.send().await.map_err(classify_transport_error)?;
        let status = response.status();
        self.check_version(response.headers());
        log_usage(response.headers());

        if status.is_redirection() {
            return Err(CallFailure::final_error(AppError::FacebookFailed {
                reason: format!("Graph responded with a redirect (HTTP {})", status.as_u16()),
                facebook: None,
            }));
        }

        let retry_hint = read_retry_hint(response.headers());
        let body = read_body(response)
            .await
            .map_err(CallFailure::final_error)?;

        let parsed: Result<Value, _> = serde_json::from_slice(&body);
        let Ok(Value::Object(object)) = parsed else {
            return Err(CallFailure {
                error: AppError::FacebookFailed {
                    reason: format!(
                        "Graph returned HTTP {} with a body that is not a JSON object",
                        status.as_u16()
                    ),
                    facebook: None,
                },
                retryable: status.is_server_error(),
            });
        };

        if object.get("error").is_some_and(Value::is_object) {
            let envelope = serde_json::from_value::<ErrorEnvelope>(Value::Object(object))
                .unwrap_or_else(|error| {
                    // Classified below as an unknown Graph error (code 0).
                    tracing::warn!(%error, "Graph sent an error object of an unexpected shape");
                    ErrorEnvelope {
                        error: FacebookError::default(),
                    }
                });
            let retryable = !envelope.error.is_rate_limit()
                && (envelope.error.is_transient() || status.is_server_error());
            let error = classify_facebook_error(call, status, envelope.error, retry_hint);
            return Err(CallFailure { error, retryable });
        }
        if !status.is_success() {
            return Err(CallFailure {
                error: AppError::FacebookFailed {
                    reason: format!(
                        "Graph returned HTTP {} without an error object",
                        status.as_u16()
                    ),
                    facebook: None,
                },
                retryable: status.is_server_error(),
            });
        }
        Ok((object, body.len()))
    }

    /// Logs once when Graph served another version than the one requested,
    /// which Facebook does when the requested version is retired.
    fn check_version(&self, headers: &reqwest::header::HeaderMap) {
        let Some(served) = headers
            .get("facebook-api-version")
            .and_then(|value| value.to_str().ok())
        else {
            return;
        };
        if served == self.config.graph_version {
            return;
        }
        if !self.version_mismatch_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                requested = %self.config.graph_version,
                served,
                "Graph served API version {served} instead of the requested {}; \
                 set FACEBOOK_GRAPH_VERSION to a version Facebook still serves",
                self.config.graph_version
            );
        }
    }
}

/// Computes `appsecret_proof`: the hex HMAC-SHA256 of the access token, keyed
/// by the app secret (<https://developers.facebook.com/docs/graph-api/securing-requests>).
pub fn sign_token(app_secret: &str, access_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC accepts a key of any length");
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Maps a transport failure. The URL is stripped, because it carries the
/// app secret and the code in its query string.
fn classify_transport_error(error: reqwest::Error) -> CallFailure {
    if error.is_timeout() {
        return CallFailure::final_error(AppError::FacebookTimedOut);
    }
    let error = error.without_url();
    let reason = if error.is_connect() {
        format!(
            "the connection to Graph failed ({})",
            describe_chain(&error)
        )
    } else {
        format!("the request to Graph failed ({})", describe_chain(&error))
    };
    CallFailure {
        error: AppError::FacebookFailed {
            reason,
            facebook: None,
        },
        // A refused, reset or cut connection is worth one more try of an
        // idempotent call, but a TLS or DNS failure would fail the same way again.
        retryable: is_connection_dropped(&error),
    }
}

/// Returns whether an I/O error in the chain reports the connection as
/// refused, reset, aborted or closed early.
fn is_connection_dropped(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            return matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            );
        }
        source = cause.source();
    }
    false
}

/// Logs Facebook's rate-limit usage headers when present: at warning level
/// from [`USAGE_WARNING_PERCENT`], otherwise at debug level. They carry
/// percentages and business object ids, never tokens.
fn log_usage(headers: &reqwest::header::HeaderMap) {
    let app_usage = headers
        .get("x-app-usage")
        .and_then(|value| value.to_str().ok());
    let business_usage = headers
        .get("x-business-use-case-usage")
        .and_then(|value| value.to_str().ok());
    if app_usage.is_none() && business_usage.is_none() {
        return;
    }
    let highest = [app_usage, business_usage]
        .into_iter()
        .flatten()
        .filter_map(|header| serde_json::from_str::<Value>(header).ok())
        .map(|usage| highest_percentage(&usage))
        .max()
        .unwrap_or(0);
    if highest >= USAGE_WARNING_PERCENT {
        tracing::warn!(
            x_app_usage = app_usage,
            x_business_use_case_usage = business_usage,
            "Facebook rate-limit usage is at {highest}%; Facebook throttles this app at 100%"
        );
    } else {
        tracing::debug!(
            x_app_usage = app_usage,
            x_business_use_case_usage = business_usage,
            "Facebook rate-limit usage"
        );
    }
}

/// Returns the highest `call_count`, `total_time` or `total_cputime` found
/// anywhere in a usage header's JSON.
fn highest_percentage(usage: &Value) -> u64 {
    match usage {
        Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| match (name.as_str(), value) {
                ("call_count" | "total_time" | "total_cputime", Value::Number(number)) => {
                    number.as_u64().unwrap_or(0)
                }
                _ => highest_percentage(value),
            })
            .max()
            .unwrap_or(0),
        Value::Array(items) => items.iter().map(highest_percentage).max().unwrap_or(0),
        _ => 0,
    }
}

/// Joins an error and its sources into one line.
fn describe_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads the body up to [`MAX_BODY_BYTES`], stopping early on a larger one.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, AppError> {
    let too_large = || AppError::FacebookFailed {
        reason: format!("the Graph answer is larger than {MAX_BODY_BYTES} bytes"),
        facebook: None,
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| classify_transport_error(error).error)?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads how long Facebook expects a throttled app to wait, from
/// `X-Business-Use-Case-Usage`'s `estimated_time_to_regain_access` (minutes).
fn read_retry_hint(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let usage = headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let usage: Value = serde_json::from_str(usage).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access")?.as_u64())
        .max()?;
    Some(Duration::from_secs(minutes.max(1) * 60))
}

/// Decides whose fault a Graph error is, per call, from Facebook's codes
/// (<https://developers.facebook.com/docs/graph-api/guides/error-handling>).
fn classify_facebook_error(
    call: GraphCall,
    status: StatusCode,
    error: FacebookError,
    retry_hint: Option<Duration>,
) -> AppError {
    let error = Box::new(error);
    if error.is_rate_limit() {
        return AppError::RateLimited {
            retry_after: retry_hint.unwrap_or(DEFAULT_RETRY_AFTER),
            facebook: error,
        };
    }

    let message = error.message.to_ascii_lowercase();
    match call {
        GraphCall::ExchangeCode => match (error.code, error.error_subcode) {
            (100, Some(36009)) => return AppError::CodeUsed(error),
            (100, Some(36007)) => return AppError::CodeExpired(error),
            (191, _) => return app_misconfigured(AppSetting::RedirectUri, error),
            (100, _) if message.contains("redirect_uri") => {
                return app_misconfigured(AppSetting::RedirectUri, error);
            }
            (101, _) => return app_misconfigured(AppSetting::AppId, error),
            (1, _) if message.contains("client secret") => {
                return app_misconfigured(AppSetting::AppSecret, error);
            }
            (100, _) => return AppError::CodeInvalid(error),
            _ => {}
        },
        GraphCall::ListPages => match error.code {
            100 if message.contains("appsecret_proof") => {
                return app_misconfigured(AppSetting::AppSecret, error);
            }
            102 | 190 => return AppError::TokenInvalid(error),
            10 | 200..=299 => return AppError::PermissionMissing(error),
            _ => {}
        },
    }

    let reason = if error.is_transient() || status.is_server_error() {
        format!("Graph reported a failure on its side (code {})", error.code)
    } else {
        format!("Graph rejected the request (code {})", error.code)
    };
    AppError::FacebookFailed {
        reason,
        facebook: Some(error),
    }
}

fn app_misconfigured(setting: AppSetting, facebook: Box<FacebookError>) -> AppError {
    AppError::AppMisconfigured { setting, facebook }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_error(code: i64, subcode: Option<i64>, message: &str) -> FacebookError {
        FacebookError {
            message: message.to_owned(),
            code,
            error_subcode: subcode,
            ..FacebookError::default()
        }
    }

    fn classify(call: GraphCall, error: FacebookError) -> &'static str {
        classify_facebook_error(call, StatusCode::BAD_REQUEST, error, None).code()
    }

    #[test]
    fn appsecret_proof_matches_known_value() {
        // Computed independently with Python: hmac.new(b"secret", b"token", hashlib.sha256).hexdigest()
        assert_eq!(
            sign_token("secret", "token"),
            "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a",
            "hex HMAC-SHA256 of the token keyed by the secret"
        );
    }

    #[test]
    fn exchange_errors_classified() {
        let cases = [
            (
                graph_error(100, Some(36009), "This authorization code has been used."),
                "code_used",
            ),
            (
                graph_error(100, Some(36007), "This authorization code has expired."),
                "code_expired",
            ),
            (
                graph_error(100, None, "Invalid verification code format."),
                "code_invalid",
            ),
            (
                graph_error(
                    100,
                    None,
                    "Error validating verification code. Please make sure your redirect_uri is identical",
                ),
                "facebook_app_misconfigured",
            ),
            (
                graph_error(191, None, "redirect_uri isn't an absolute URI."),
                "facebook_app_misconfigured",
            ),
            (
                graph_error(101, None, "Error validating application."),
                "facebook_app_misconfigured",
            ),
            (
                graph_error(1, None, "Error validating client secret."),
                "facebook_app_misconfigured",
            ),
            (
                graph_error(1, None, "An unknown error occurred"),
                "facebook_error",
            ),
            (
                graph_error(4, None, "(#4) Application request limit reached"),
                "facebook_rate_limited",
            ),
        ];
        for (error, expected) in cases {
            let message = error.message.clone();
            assert_eq!(
                classify(GraphCall::ExchangeCode, error),
                expected,
                "exchange: {message}"
            );
        }
    }

    #[test]
    fn list_pages_errors_classified() {
        let cases = [
            (
                graph_error(190, Some(463), "Error validating access token"),
                "facebook_token_invalid",
            ),
            (
                graph_error(200, None, "(#200) permission"),
                "facebook_permission_missing",
            ),
            (
                graph_error(
                    100,
                    None,
                    "Invalid appsecret_proof provided in the API argument",
                ),
                "facebook_app_misconfigured",
            ),
            (
                graph_error(17, None, "User request limit reached"),
                "facebook_rate_limited",
            ),
            (
                graph_error(32, None, "Page request limit reached"),
                "facebook_rate_limited",
            ),
            (
                graph_error(613, None, "Calls to this api have exceeded the rate limit."),
                "facebook_rate_limited",
            ),
            (
                graph_error(2, None, "Service temporarily unavailable"),
                "facebook_error",
            ),
        ];
        for (error, expected) in cases {
            let message = error.message.clone();
            assert_eq!(
                classify(GraphCall::ListPages, error),
                expected,
                "list pages: {message}"
            );
        }
    }

    #[test]
    fn usage_percentage_found_in_both_headers() {
        let app: Value =
            serde_json::from_str(r#"{"call_count":28,"total_time":85,"total_cputime":25}"#)
                .expect("JSON");
        let business: Value = serde_json::from_str(
            r#"{"1":[{"type":"pages","call_count":97,"estimated_time_to_regain_access":0}]}"#,
        )
        .expect("JSON");
        assert_eq!(highest_percentage(&app), 85, "X-App-Usage");
        assert_eq!(
            highest_percentage(&business),
            97,
            "X-Business-Use-Case-Usage"
        );
    }

    #[test]
    fn retry_hint_read_from_usage_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-business-use-case-usage",
            r#"{"123":[{"type":"pages","call_count":100,"estimated_time_to_regain_access":5}]}"#
                .parse()
                .expect("valid header"),
        );
        assert_eq!(
            read_retry_hint(&headers),
            Some(Duration::from_secs(300)),
            "5 minutes"
        );
    }
}
