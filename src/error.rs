//! The one error type of the service and its one JSON shape.
//!
//! Every error response is `{"error": "<code>", "detail": "<sentence>"}`, plus
//! a `facebook` object when Facebook itself reported the error. The codes are
//! stable and documented in the README; the details are for people.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::facebook::graph::FacebookError;

/// Error parameters that Facebook puts on the redirect when a login fails, such as
/// `error=access_denied&error_reason=user_denied`.
#[derive(Debug, Clone, Serialize)]
pub struct LoginRefusal {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// The Facebook setting an operator must check when Facebook rejects the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppSetting {
    AppId,
    AppSecret,
    RedirectUri,
}

impl AppSetting {
    fn advice(self) -> &'static str {
        match self {
            AppSetting::AppId => {
                "Facebook rejected FACEBOOK_APP_ID: check that it is the App ID shown under \
                 App settings > Basic in the App Dashboard"
            }
            AppSetting::AppSecret => {
                "Facebook rejected FACEBOOK_APP_SECRET: check that it is the current App Secret \
                 of this app (App settings > Basic); it changes when the secret is reset"
            }
            AppSetting::RedirectUri => {
                "Facebook rejected FACEBOOK_REDIRECT_URI: it must match, byte for byte, one of \
                 the Valid OAuth Redirect URIs under Facebook Login > Settings"
            }
        }
    }
}

/// Every error the service returns. Each variant's doc names its status and code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400 `invalid_query`: the query string cannot be read, or repeats a parameter.
    #[error("the query string is invalid: {0}")]
    InvalidQuery(String),

    /// 400 `state_missing`: the callback has no `state` parameter.
    #[error(
        "the callback has no state parameter, so it cannot be matched to a login: \
         start again at /facebook/login"
    )]
    StateMissing,

    /// 400 `state_cookie_missing`: this browser has no login in progress.
    #[error(
        "the login expired or was started in another browser (no login cookie was sent): \
         start again at /facebook/login in this browser, with cookies enabled and on the same \
         host name as the redirect URI (localhost and 127.0.0.1 are different sites)"
    )]
    StateCookieMissing,

    /// 400 `state_cookie_invalid`: the login cookie was altered or forged.
    #[error(
        "the login cookie is invalid (its signature does not match): \
         start again at /facebook/login"
    )]
    StateCookieInvalid,

    /// 400 `state_expired`: the login was started more than 10 minutes ago.
    #[error("the login expired (it must finish within 10 minutes): start again at /facebook/login")]
    StateExpired,

    /// 400 `state_mismatch`: the callback's state belongs to no login of this browser.
    #[error(
        "the state parameter does not match any login started in this browser, so the \
         callback may be forged: start again at /facebook/login"
    )]
    StateMismatch,

    /// 409 `login_already_finished`: the callback was refreshed or replayed.
    #[error(
        "this login already finished, successfully or not, and refreshing the callback page \
         cannot repeat it: start again at /facebook/login to log in again"
    )]
    LoginAlreadyFinished,

    /// 403 `access_denied`: the user cancelled the dialog or declined the permissions.
    #[error(
        "the user cancelled the Facebook login or declined the permissions: \
         start again at /facebook/login and choose Continue"
    )]
    AccessDenied(Box<LoginRefusal>),

    /// 400 `facebook_login_failed`: Facebook redirected back with another error.
    #[error("Facebook reported an error instead of a login: {}", .0.error)]
    LoginFailed(Box<LoginRefusal>),

    /// 400 `code_missing`: the callback has neither `code` nor `error`.
    #[error(
        "the callback has no code parameter: open /facebook/login and let Facebook \
         redirect back here"
    )]
    CodeMissing,

    /// 400 `code_used`: Facebook reports that this authorization code was already exchanged.
    #[error(
        "Facebook reports that this authorization code was already used: start again at \
         /facebook/login"
    )]
    CodeUsed(Box<FacebookError>),

    /// 400 `code_expired`: Facebook reports the code expired (subcode 36007).
    #[error(
        "Facebook reports that this authorization code has expired: start again at \
         /facebook/login"
    )]
    CodeExpired(Box<FacebookError>),

    /// 400 `code_invalid`: Facebook does not recognise the code.
    #[error("Facebook rejected the authorization code: start again at /facebook/login")]
    CodeInvalid(Box<FacebookError>),

    /// 401 `facebook_token_invalid`: Facebook rejected the user's access token.
    #[error(
        "Facebook rejected the user's access token (expired, revoked or invalid): \
         start again at /facebook/login"
    )]
    TokenInvalid(Box<FacebookError>),

    /// 403 `facebook_permission_missing`: the user did not grant a permission the call needs.
    #[error(
        "the user did not grant a permission needed to list their Pages (pages_show_list): \
         start again at /facebook/login and allow every permission and Page"
    )]
    PermissionMissing(Box<FacebookError>),

    /// 500 `facebook_app_misconfigured`: Facebook rejected this service's own settings.
    #[error("{}", .setting.advice())]
    AppMisconfigured {
        setting: AppSetting,
        facebook: Box<FacebookError>,
    },

    /// 503 `facebook_rate_limited`: Facebook throttles this app or user; sends `Retry-After`.
    #[error(
        "Facebook is rate-limiting this app or user: wait the number of seconds in the \
         Retry-After header, then start again at /facebook/login"
    )]
    RateLimited {
        retry_after: Duration,
        facebook: Box<FacebookError>,
    },

    /// 502 `facebook_error`: Facebook failed, or returned an unexpected response.
    #[error(
        "the call to Facebook failed: {reason}. Start again at /facebook/login; if the error \
         persists, report it with the x-request-id response header"
    )]
    FacebookFailed {
        reason: String,
        facebook: Option<Box<FacebookError>>,
    },

    /// 504 `facebook_timeout`: Facebook did not respond within `FACEBOOK_TIMEOUT_SECS`.
    #[error("Facebook did not respond in time: start again at /facebook/login in a few minutes")]
    FacebookTimedOut,

    /// 502 `facebook_too_many_pages`: `/me/accounts` kept paging past the request cap.
    #[error(
        "Facebook kept returning more Pages after {0} requests, the most this service makes \
         for one login; the list of Pages was not returned"
    )]
    TooManyPages(usize),

    /// 503 `facebook_busy`: `FACEBOOK_MAX_IN_FLIGHT` callbacks already wait on
    /// Facebook; sends `Retry-After`.
    #[error(
        "too many logins are waiting on Facebook right now, which usually means Facebook is \
         slow; this login is still open: reload this page after the number of seconds in the \
         Retry-After header"
    )]
    Busy,

    /// 414 `uri_too_long`: the request URI is longer than the service accepts.
    #[error("the request URI is longer than {0} bytes: shorten the query string")]
    UriTooLong(usize),

    /// 431 `headers_too_large`: the request headers are larger than the service accepts.
    #[error(
        "the request headers are larger than {0} bytes in total: send fewer or smaller headers"
    )]
    HeadersTooLarge(usize),

    /// 400 `too_many_cookies`: the request carries more cookies than the service reads.
    #[error(
        "the request carries more than {0} cookies: clear this site's cookies in the browser \
         and start again at /facebook/login"
    )]
    TooManyCookies(usize),

    /// 500 `internal_error`: a bug in this service; the log has the cause.
    #[error(
        "an unexpected error occurred in this service: report it with the x-request-id \
         response header, which identifies the request in the log"
    )]
    Internal,

    /// 404 `not_found`: no route has this path.
    #[error("no route has this path: the routes are /, /facebook/login and /facebook/callback")]
    NotFound,

    /// 405 `method_not_allowed`: the route exists but not for this method.
    #[error("this route does not accept this HTTP method: use GET")]
    MethodNotAllowed,
}

/// `Retry-After` of a busy response: in-flight callbacks end within the Graph
/// timeout, so a short wait usually finds a free slot.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The JSON body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    facebook: Option<FacebookDetail<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum FacebookDetail<'a> {
    Graph(&'a FacebookError),
    Redirect(&'a LoginRefusal),
}

/// Summary of an error response for the request log, carried in the
/// response extensions so logging stays out of the conversion. None of it
/// contains a secret, token or code.
#[derive(Debug, Clone)]
pub struct ErrorSummary {
    pub code: &'static str,
    pub detail: String,
    /// Facebook's own message, when Facebook reported the error.
    pub facebook_message: Option<String>,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::InvalidQuery(_)
            | AppError::StateMissing
            | AppError::StateCookieMissing
            | AppError::StateCookieInvalid
            | AppError::StateExpired
            | AppError::StateMismatch
            | AppError::LoginFailed(_)
            | AppError::CodeMissing
            | AppError::CodeUsed(_)
            | AppError::CodeExpired(_)
            | AppError::CodeInvalid(_)
            | AppError::TooManyCookies(_) => StatusCode::BAD_REQUEST,
            AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            AppError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::LoginAlreadyFinished => StatusCode::CONFLICT,
            AppError::TokenInvalid(_) => StatusCode::UNAUTHORIZED,
            AppError::AccessDenied(_) | AppError::PermissionMissing(_) => StatusCode::FORBIDDEN,
            AppError::AppMisconfigured { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::RateLimited { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::FacebookFailed { .. } | AppError::TooManyPages(_) => StatusCode::BAD_GATEWAY,
            AppError::FacebookTimedOut => StatusCode::GATEWAY_TIMEOUT,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidQuery(_) => "invalid_query",
            AppError::StateMissing => "state_missing",
            AppError::StateCookieMissing => "state_cookie_missing",
            AppError::StateCookieInvalid => "state_cookie_invalid",
            AppError::StateExpired => "state_expired",
            AppError::StateMismatch => "state_mismatch",
            AppError::LoginAlreadyFinished => "login_already_finished",
            AppError::AccessDenied(_) => "access_denied",
            AppError::LoginFailed(_) => "facebook_login_failed",
            AppError::CodeMissing => "code_missing",
            AppError::CodeUsed(_) => "code_used",
            AppError::CodeExpired(_) => "code_expired",
            AppError::CodeInvalid(_) => "code_invalid",
            AppError::TokenInvalid(_) => "facebook_token_invalid",
            AppError::PermissionMissing(_) => "facebook_permission_missing",
            AppError::AppMisconfigured { .. } => "facebook_app_misconfigured",
            AppError::RateLimited { .. } => "facebook_rate_limited",
            AppError::FacebookFailed { .. } => "facebook_error",
            AppError::FacebookTimedOut => "facebook_timeout",
            AppError::TooManyPages(_) => "facebook_too_many_pages",
            AppError::Busy => "facebook_busy",
            AppError::UriTooLong(_) => "uri_too_long",
            AppError::HeadersTooLarge(_) => "headers_too_large",
            AppError::TooManyCookies(_) => "too_many_cookies",
            AppError::Internal => "internal_error",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
        }
    }

    fn facebook_detail(&self) -> Option<FacebookDetail<'_>> {
        match self {
            AppError::AccessDenied(refusal) | AppError::LoginFailed(refusal) => {
                Some(FacebookDetail::Redirect(refusal))
            }
            AppError::CodeUsed(error)
            | AppError::CodeExpired(error)
            | AppError::CodeInvalid(error)
            | AppError::TokenInvalid(error)
            | AppError::PermissionMissing(error)
            | AppError::AppMisconfigured {
                facebook: error, ..
            }
            | AppError::RateLimited {
                facebook: error, ..
            }
            | AppError::FacebookFailed {
                facebook: Some(error),
                ..
            } => Some(FacebookDetail::Graph(error)),
            _ => None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code(),
            detail: self.to_string(),
            facebook: self.facebook_detail(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();

        let retry_after = match &self {
            AppError::RateLimited { retry_after, .. } => Some(*retry_after),
            AppError::Busy => Some(BUSY_RETRY_AFTER),
            _ => None,
        };
        if let Some(retry_after) = retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        let facebook_message = match self.facebook_detail() {
            Some(FacebookDetail::Graph(error)) => Some(error.message.clone()),
            Some(FacebookDetail::Redirect(refusal)) => refusal.error_description.clone(),
            None => None,
        };
        response.extensions_mut().insert(ErrorSummary {
            code: self.code(),
            detail: self.to_string(),
            facebook_message,
        });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_sets_retry_after() {
        let error = AppError::RateLimited {
            retry_after: Duration::from_secs(120),
            facebook: Box::default(),
        };
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "status");
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|value| value.as_bytes()),
            Some(&b"120"[..]),
            "Retry-After in seconds"
        );
    }

    #[test]
    fn codes_are_snake_case() {
        let errors = [
            AppError::StateMissing,
            AppError::FacebookTimedOut,
            AppError::TooManyPages(100),
            AppError::LoginAlreadyFinished,
        ];
        for error in errors {
            let code = error.code();
            assert!(
                code.bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_'),
                "{code} is not snake_case"
            );
        }
    }
}
