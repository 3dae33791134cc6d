//! `me/accounts`: the Pages the sandbox user manages, with Graph's cursor paging.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::graph::{ApiVersion, GraphContext, GraphError, insert_header, unknown_path_error};
use super::params::Params;
use super::{Endpoint, Sandbox, faults, lock};

/// First Page id. Page ids are this plus the Page's index, as decimal strings like Facebook's.
const FIRST_PAGE_ID: u64 = 1_000_000_000_000_000;

/// Page size when the request sends no `limit`. Facebook's docs and observed responses use 25.
const DEFAULT_LIMIT: usize = 25;

/// Largest page size. Larger `limit` values are clamped to it.
/// NOTE: Facebook does not document the cap for this edge, so 100 is the sandbox's choice.
const MAX_LIMIT: usize = 100;

/// Fields returned when the request sends no `fields`, which are also the only fields known here.
const DEFAULT_FIELDS: [&str; 6] = [
    "id",
    "name",
    "access_token",
    "category",
    "category_list",
    "tasks",
];

const PAGE_TASKS: [&str; 6] = [
    "ADVERTISE",
    "ANALYZE",
    "CREATE_CONTENT",
    "MESSAGING",
    "MODERATE",
    "MANAGE",
];

/// Permission that a token needs to list Pages.
const REQUIRED_PERMISSION: &str = "pages_show_list";

/// Handles `GET /graph/{version}/me/accounts`.
///
/// The token comes from `Authorization: Bearer` (or `OAuth`) or from `access_token`, and the
/// sandbox app has "Require App Secret" on, so every call needs a valid `appsecret_proof`.
pub(super) async fn list(
    State(sandbox): State<Sandbox>,
    Path(version): Path<String>,
    OriginalUri(original_uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let parsed_version = ApiVersion::parse(&version);
    let context = GraphContext::new(parsed_version);

    if let Some(fault) = sandbox.begin_request(Endpoint::Accounts).await {
        return context.finish(faults::render(&fault, &context.trace_id, &headers));
    }
    if parsed_version.is_none() {
        return context.error(unknown_path_error(&format!("/{version}/me/accounts")));
    }

    let params = Params::from_query(query.as_deref());
    let request = AccountsRequest {
        params: &params,
        headers: &headers,
        path: original_uri.path(),
    };
    let mut response = match respond(&sandbox, &request) {
        Ok(body) => context.json(&body),
        Err(error) => context.error(error),
    };

    // Whole-number percentages of the app's hourly limit. Small values that grow slowly with
    // use, because a client should see the header but never a reason to back off.
    let usage = sandbox.request_count(Endpoint::Accounts).min(50);
    let app_usage = format!(r#"{{"call_count":{usage},"total_cputime":1,"total_time":1}}"#);
    insert_header(response.headers_mut(), "x-app-usage", &app_usage);
    response
}

struct AccountsRequest<'a> {
    params: &'a Params,
    headers: &'a HeaderMap,
    /// Path as sent by the client, before nesting stripped its prefix, for `next` and `previous`.
    path: &'a str,
}

fn respond(sandbox: &Sandbox, request: &AccountsRequest<'_>) -> Result<Value, GraphError> {
    let token = access_token(request.params, request.headers).ok_or_else(|| {
        GraphError::oauth(
            2500,
            "An active access token must be used to query information about the current user.",
        )
    })?;

    let scopes = lock(&sandbox.inner.tokens)
        .get_mut(&token)
        .map(|(grant, _)| grant.scopes.clone())
        .ok_or_else(|| {
            GraphError::oauth(
                190,
                "Invalid OAuth access token - Cannot parse access token",
            )
        })?;

    check_appsecret_proof(&sandbox.config().app_secret, &token, request.params)?;

    if !scopes.iter().any(|scope| scope == REQUIRED_PERMISSION) {
        // NOTE: the message is the sandbox's own wording, because Facebook's text for this edge
        // is not documented. The code (200, API Permission) matches its error list.
        return Err(GraphError::oauth(
            200,
            "(#200) Listing Pages requires the pages_show_list permission, which this access \
             token was not granted.",
        ));
    }

    let fields = requested_fields(request.params.get("fields"))?;
    let limit = page_limit(request.params.get("limit"))?;
    let page_count = sandbox.page_count();
    let window = page_window(request.params, limit, page_count)?;

    let data: Vec<Value> = window
        .clone()
        .map(|index| page_json(index, &fields, &token, &sandbox.config().app_secret))
        .collect();
    if data.is_empty() {
        return Ok(json!({ "data": [] }));
    }

    let mut paging = json!({
        "cursors": {
            "before": encode_cursor(window.start),
            "after": encode_cursor(window.end - 1),
        }
    });
    let base = absolute_base(request.headers, request.path);
    if window.end < page_count {
        let query = request
            .params
            .encode_with("after", &encode_cursor(window.end - 1), "before");
        paging["next"] = json!(format!("{base}?{query}"));
    }
    if window.start > 0 {
        let query = request
            .params
            .encode_with("before", &encode_cursor(window.start), "after");
        paging["previous"] = json!(format!("{base}?{query}"));
    }
    Ok(json!({ "data": data, "paging": paging }))
}

/// Returns the token from `Authorization: Bearer|OAuth <token>`, else from `access_token`.
fn access_token(params: &Params, headers: &HeaderMap) -> Option<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")
        })
        .map(|(_, token)| token.trim());
    from_header
        .or_else(|| params.get("access_token"))
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
}

/// Checks `appsecret_proof`: hex HMAC-SHA256 of the token keyed by the app secret, or of
/// `token|appsecret_time` when the request sends `appsecret_time`.
///
/// NOTE: Facebook rejects timestamped proofs older than 5 minutes, but the sandbox only checks
/// that the timestamp is an integer, not its age.
fn check_appsecret_proof(app_secret: &str, token: &str, params: &Params) -> Result<(), GraphError> {
    let proof = params.get("appsecret_proof").ok_or_else(|| {
        GraphError::method(
            100,
            "API calls from the server require an appsecret_proof argument",
        )
    })?;
    let invalid =
        || GraphError::method(100, "Invalid appsecret_proof provided in the API argument");

    let message = match params.get("appsecret_time") {
        Some(time) if time.parse::<u64>().is_ok() => format!("{token}|{time}"),
        Some(_) => return Err(invalid()),
        None => token.to_owned(),
    };
    let expected_mac = hex::decode(proof).map_err(|_| invalid())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).map_err(|_| invalid())?;
    mac.update(message.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected_mac).map_err(|_| invalid())
}

/// Parses `fields` into the list to return, with `id` always first.
fn requested_fields(fields: Option<&str>) -> Result<Vec<&'static str>, GraphError> {
    let Some(fields) = fields else {
        return Ok(DEFAULT_FIELDS.to_vec());
    };
    let mut selected = vec!["id"];
    for name in fields
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let known = DEFAULT_FIELDS
            .iter()
            .find(|field| **field == name)
            .ok_or_else(|| {
                GraphError::oauth(
                    100,
                    format!(
                        "(#100) Tried accessing nonexisting field ({name}) on node type (Page)"
                    ),
                )
            })?;
        if !selected.contains(known) {
            selected.push(known);
        }
    }
    Ok(selected)
}

/// Parses `limit`: absent means the default, values above the cap are clamped, and zero or a
/// non-number is rejected.
fn page_limit(limit: Option<&str>) -> Result<usize, GraphError> {
    let Some(limit) = limit else {
        return Ok(DEFAULT_LIMIT);
    };
    // NOTE: the message is the sandbox's own wording for Graph's code 100 parameter error.
    let invalid = || {
        GraphError::oauth(
            100,
            format!("(#100) Param limit must be a positive integer, got \"{limit}\""),
        )
    };
    let all_digits = !limit.is_empty() && limit.bytes().all(|b| b.is_ascii_digit());
    if !all_digits {
        return Err(invalid());
    }
    // A number too large for usize is still a positive integer, so it clamps like any other.
    let value = limit.parse::<usize>().unwrap_or(usize::MAX);
    if value == 0 {
        return Err(invalid());
    }
    Ok(value.min(MAX_LIMIT))
}

/// Returns the index range of Pages to return, from `after` (preferred) or `before`.
fn page_window(
    params: &Params,
    limit: usize,
    page_count: usize,
) -> Result<std::ops::Range<usize>, GraphError> {
    if let Some(cursor) = params.get("after") {
        let start = decode_cursor(cursor)?.saturating_add(1).min(page_count);
        return Ok(start..start.saturating_add(limit).min(page_count));
    }
    if let Some(cursor) = params.get("before") {
        let end = decode_cursor(cursor)?.min(page_count);
        return Ok(end.saturating_sub(limit)..end);
    }
    Ok(0..limit.min(page_count))
}

/// Encodes a Page index as an opaque cursor: base64 of the Page id, as Graph's cursors look.
fn encode_cursor(index: usize) -> String {
    STANDARD.encode(page_id(index))
}

fn decode_cursor(cursor: &str) -> Result<usize, GraphError> {
    // NOTE: the message is the sandbox's own wording. Graph reports bad cursors with code 100.
    let invalid = || GraphError::oauth(100, format!("(#100) Invalid cursor \"{cursor}\""));
    let bytes = STANDARD.decode(cursor).map_err(|_| invalid())?;
    let id: u64 = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(invalid)?;
    let index = id.checked_sub(FIRST_PAGE_ID).ok_or_else(invalid)?;
    usize::try_from(index).map_err(|_| invalid())
}

fn page_id(index: usize) -> String {
    (FIRST_PAGE_ID + index as u64).to_string()
}

/// Builds one Page object with `fields`. The Page token is an HMAC of the user token and Page
/// id, so it is stable for a given user token and differs between Pages.
fn page_json(index: usize, fields: &[&str], user_token: &str, app_secret: &str) -> Value {
    let id = page_id(index);
    let mut page = Map::new();
    for field in fields {
        let value = match *field {
            "id" => json!(id),
            "name" => json!(format!("Sandbox Page {}", index + 1)),
            "access_token" => json!(page_token(user_token, &id, app_secret)),
            "category" => json!("Software"),
            "category_list" => json!([{ "id": "2211", "name": "Software" }]),
            "tasks" => json!(PAGE_TASKS),
            _ => continue,
        };
        page.insert((*field).to_owned(), value);
    }
    Value::Object(page)
}

fn page_token(user_token: &str, page_id: &str, app_secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(user_token.as_bytes());
    mac.update(b"|");
    mac.update(page_id.as_bytes());
    format!("EAASandboxPage{}", hex::encode(mac.finalize().into_bytes()))
}

/// Returns `http://HOST/PATH` for paging links.
/// NOTE: always `http`, because the sandbox is served without TLS. Behind a TLS proxy the links
/// would need the proxy's scheme.
fn absolute_base(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limit_defaults_clamps_and_rejects() {
        assert_eq!(page_limit(None).ok(), Some(DEFAULT_LIMIT), "absent");
        assert_eq!(page_limit(Some("10")).ok(), Some(10), "in range");
        assert_eq!(page_limit(Some("500")).ok(), Some(MAX_LIMIT), "clamped");
        assert_eq!(
            page_limit(Some("99999999999999999999999")).ok(),
            Some(MAX_LIMIT),
            "huge number clamped"
        );
        for bad in ["0", "-1", "ten", "", "1.5"] {
            assert!(page_limit(Some(bad)).is_err(), "rejects {bad:?}");
        }
    }

    #[test]
    fn cursor_round_trips() {
        for index in [0, 1, 59, 10_000] {
            assert_eq!(
                decode_cursor(&encode_cursor(index)).ok(),
                Some(index),
                "index {index}"
            );
        }
    }

    #[test]
    fn cursor_rejects_garbage() {
        for bad in ["%%%", "bm90LWEtbnVtYmVy", "MQ=="] {
            assert!(decode_cursor(bad).is_err(), "rejects {bad:?}");
        }
    }

    #[test]
    fn requested_fields_keeps_id_and_rejects_unknown() {
        assert_eq!(
            requested_fields(Some("name")).ok(),
            Some(vec!["id", "name"]),
            "id added"
        );
        assert_eq!(
            requested_fields(Some("name,id,name")).ok(),
            Some(vec!["id", "name"]),
            "duplicates dropped"
        );
        let error = requested_fields(Some("name,fan_count")).expect_err("unknown field");
        assert_eq!(
            error.message,
            "(#100) Tried accessing nonexisting field (fan_count) on node type (Page)",
            "unknown field message"
        );
    }

    #[test]
    fn page_window_follows_cursors() {
        let after = Params::from_query(Some(&format!("after={}", encode_cursor(24))));
        let before = Params::from_query(Some(&format!("before={}", encode_cursor(25))));
        assert_eq!(
            page_window(&Params::default(), 25, 60).ok(),
            Some(0..25),
            "first page"
        );
        assert_eq!(page_window(&after, 25, 60).ok(), Some(25..50), "after");
        assert_eq!(page_window(&before, 25, 60).ok(), Some(0..25), "before");
    }

    #[test]
    fn page_token_is_stable_per_page() {
        let first = page_token("user", &page_id(0), "secret");
        assert_eq!(first, page_token("user", &page_id(0), "secret"), "stable");
        assert_ne!(first, page_token("user", &page_id(1), "secret"), "per Page");
    }
}
