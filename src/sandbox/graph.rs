//! Graph API building blocks: error objects, response headers and API versions.

use axum::extract::OriginalUri;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::store::random_alphanumeric;
use crate::config::OLDEST_SERVED_GRAPH_VERSION;

/// Oldest Graph API version Facebook still serves: calls naming a retired
/// version are served by it. The same date-bound fact the start-up warning uses.
pub(super) const OLDEST_SERVED_VERSION: ApiVersion = ApiVersion {
    major: OLDEST_SERVED_GRAPH_VERSION.0,
    minor: OLDEST_SERVED_GRAPH_VERSION.1,
};

/// A Graph API version from a request path, such as `v21.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ApiVersion {
    major: u32,
    minor: u32,
}

impl ApiVersion {
    /// Parses `vMAJOR.MINOR` with decimal numbers, the only form Facebook's paths use.
    pub fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.strip_prefix('v')?.split_once('.')?;
        let is_number = |part: &str| {
            !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_digit())
        };
        if !is_number(major) || !is_number(minor) {
            return None;
        }
        Some(Self {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// Returns the version that handles a request naming `self`: retired versions are upgraded.
    pub fn served(self) -> Self {
        self.max(OLDEST_SERVED_VERSION)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

/// Per-response values that every Graph response carries: the `facebook-api-version` header and
/// the trace id sent both as `x-fb-trace-id` and as `fbtrace_id` in error objects.
pub(super) struct GraphContext {
    pub version: ApiVersion,
    pub trace_id: String,
}

impl GraphContext {
    /// Creates the context for a request whose path named `version`. A malformed version gets
    /// the oldest served one in the header, because the request is rejected anyway.
    pub fn new(version: Option<ApiVersion>) -> Self {
        Self {
            version: version.map_or(OLDEST_SERVED_VERSION, ApiVersion::served),
            trace_id: random_alphanumeric(11),
        }
    }

    /// Adds the Graph headers to `response`.
    pub fn finish(&self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        let headers = response.headers_mut();
        insert_header(headers, "facebook-api-version", &self.version.to_string());
        insert_header(headers, "x-fb-trace-id", &self.trace_id);
        response
    }

    /// Returns a JSON success response with the Graph headers.
    pub fn json(&self, body: &Value) -> Response {
        self.finish(json_response(StatusCode::OK, body.to_string()))
    }

    /// Returns the error response for `error` with the Graph headers.
    pub fn error(&self, error: GraphError) -> Response {
        // Messages never contain tokens, codes or secrets, so they are safe to log.
        tracing::debug!(
            code = error.code,
            subcode = error.subcode,
            trace_id = %self.trace_id,
            message = %error.message,
            "sandbox returned a Graph error"
        );
        self.finish(error.into_response_with_trace(&self.trace_id))
    }
}

/// A Graph API error object and the HTTP details sent with it.
#[derive(Clone, Debug)]
pub(super) struct GraphError {
    pub status: StatusCode,
    pub message: String,
    pub error_type: String,
    pub code: i64,
    pub subcode: Option<i64>,
    pub is_transient: Option<bool>,
    /// Second token of `WWW-Authenticate: OAuth "Facebook Platform" "<kind>" "<message>"`, which
    /// the token endpoint sends on its errors (`invalid_code` or `invalid_request`).
    pub www_authenticate: Option<&'static str>,
}

impl GraphError {
    /// Creates an HTTP 400 error of type `OAuthException`, the usual type for token and login
    /// errors.
    pub fn oauth(code: i64, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            error_type: "OAuthException".to_owned(),
            code,
            subcode: None,
            is_transient: None,
            www_authenticate: None,
        }
    }

    /// Creates an HTTP 400 error of type `GraphMethodException`, as sent for `appsecret_proof`
    /// errors.
    pub fn method(code: i64, message: impl Into<String>) -> Self {
        Self {
            error_type: "GraphMethodException".to_owned(),
            ..Self::oauth(code, message)
        }
    }

    pub fn with_subcode(mut self, subcode: i64) -> Self {
        self.subcode = Some(subcode);
        self
    }

    pub fn with_www_authenticate(mut self, kind: &'static str) -> Self {
        self.www_authenticate = Some(kind);
        self
    }

    pub fn body(&self, trace_id: &str) -> Value {
        let mut error = Map::new();
        error.insert("message".to_owned(), json!(self.message));
        error.insert("type".to_owned(), json!(self.error_type));
        error.insert("code".to_owned(), json!(self.code));
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".to_owned(), json!(subcode));
        }
        if let Some(is_transient) = self.is_transient {
            error.insert("is_transient".to_owned(), json!(is_transient));
        }
        error.insert("fbtrace_id".to_owned(), json!(trace_id));
        json!({ "error": error })
    }

    pub fn into_response_with_trace(self, trace_id: &str) -> Response {
        let mut response = json_response(self.status, self.body(trace_id).to_string());
        if let Some(kind) = self.www_authenticate {
            // Quotes inside the message would end the quoted string early.
            let message = self.message.replace('"', "'");
            let value = format!("OAuth \"Facebook Platform\" \"{kind}\" \"{message}\"");
            insert_header(response.headers_mut(), "www-authenticate", &value);
        }
        response
    }
}

/// Returns a response with a JSON body and Facebook's JSON content type.
pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    insert_header(
        response.headers_mut(),
        header::CONTENT_TYPE.as_str(),
        "application/json; charset=UTF-8",
    );
    response
}

/// Marks `response` as not cacheable, as RFC 6749 section 5.1 requires for token responses.
pub(super) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    insert_header(headers, header::CACHE_CONTROL.as_str(), "no-store");
    insert_header(headers, header::PRAGMA.as_str(), "no-cache");
    response
}

/// Inserts a header, skipping a value that is not a valid header value. Every caller passes
/// ASCII text built here, so a skip would point to a bug rather than to client input.
pub(super) fn insert_header(headers: &mut HeaderMap, name: &str, value: &str) {
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        (Ok(name), Ok(value)) => {
            headers.insert(name, value);
        }
        _ => tracing::warn!(header = name, "sandbox skipped an invalid response header"),
    }
}

/// Returns the error for a path that names no known Graph node or edge.
///
/// NOTE: Facebook rejects unknown path segments with code 2500 "Unknown path components", but
/// the exact text for every kind of unknown path is not documented.
pub(super) fn unknown_path_error(path: &str) -> GraphError {
    GraphError::oauth(2500, format!("Unknown path components: {path}"))
}

/// Handles any path under `/graph` that has no route, with the unknown-path error.
pub(super) async fn unknown_path(OriginalUri(uri): OriginalUri) -> Response {
    let path = graph_relative_path(uri.path());
    let version = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .and_then(ApiVersion::parse);
    GraphContext::new(version).error(unknown_path_error(path))
}

/// Returns the part of `path` after the `/graph` segment, as Facebook would see it.
pub(super) fn graph_relative_path(path: &str) -> &str {
    match path.find("/graph") {
        Some(index) => &path[index + "/graph".len()..],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_parse_accepts_graph_form() {
        assert_eq!(
            ApiVersion::parse("v21.0").map(|v| v.to_string()),
            Some("v21.0".to_owned())
        );
        assert_eq!(
            ApiVersion::parse("v7.1").map(|v| v.to_string()),
            Some("v7.1".to_owned())
        );
    }

    #[test]
    fn api_version_parse_rejects_other_forms() {
        for text in [
            "21.0", "v21", "v21.", "v.0", "vx.0", "v21.0.1", "V21.0", "v+1.0", "",
        ] {
            assert_eq!(ApiVersion::parse(text), None, "rejects {text:?}");
        }
    }

    #[test]
    fn api_version_served_upgrades_retired() {
        let retired = ApiVersion::parse("v19.0").expect("valid");
        let current = ApiVersion::parse("v25.0").expect("valid");
        assert_eq!(
            retired.served().to_string(),
            "v21.0",
            "retired version upgraded"
        );
        assert_eq!(current.served().to_string(), "v25.0", "live version kept");
    }

    #[test]
    fn graph_error_body_has_subcode_only_when_set() {
        let plain = GraphError::oauth(100, "m").body("trace");
        let with_subcode = GraphError::oauth(100, "m")
            .with_subcode(36007)
            .body("trace");
        assert!(plain["error"].get("error_subcode").is_none(), "no subcode");
        assert_eq!(with_subcode["error"]["error_subcode"], 36007, "subcode");
        assert_eq!(plain["error"]["fbtrace_id"], "trace", "trace id");
    }

    #[test]
    fn graph_relative_path_strips_prefix() {
        assert_eq!(graph_relative_path("/sandbox/graph/v21.0/me"), "/v21.0/me");
        assert_eq!(graph_relative_path("/graph"), "");
    }
}
