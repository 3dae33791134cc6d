//! Responses for injected faults.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Fault;
use super::graph::{GraphError, insert_header, json_response};

/// Shortest body that `Fault::OversizedBody` pads: `{"data":""}`.
const MIN_PADDED_BODY: usize = r#"{"data":""}"#.len();

/// Builds the response for `fault`. `Fault::Delay` is served before this and never reaches it,
/// so it gets an ordinary 500 here only to keep the match total.
pub(super) fn render(fault: &Fault, trace_id: &str, request_headers: &HeaderMap) -> Response {
    match fault {
        Fault::ServerError => GraphError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            is_transient: Some(true),
            ..GraphError::oauth(
                2,
                "An unexpected error has occurred. Please retry your request later.",
            )
        }
        .into_response_with_trace(trace_id),
        Fault::Html => proxy_error_page(),
        Fault::MalformedJson => {
            json_response(StatusCode::OK, r#"{"access_token":"EAASandbox"#.to_owned())
        }
        Fault::Redirect => redirect_elsewhere(request_headers),
        Fault::Delay(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Fault::RateLimited => {
            let error = GraphError {
                is_transient: Some(true),
                ..GraphError::oauth(4, "(#4) Application request limit reached")
            };
            let mut response = error.into_response_with_trace(trace_id);
            insert_header(
                response.headers_mut(),
                "x-app-usage",
                r#"{"call_count":100,"total_cputime":20,"total_time":40}"#,
            );
            response
        }
        Fault::GraphError {
            status,
            code,
            subcode,
            message,
            error_type,
        } => GraphError {
            status: StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
            message: message.clone(),
            error_type: error_type.clone(),
            code: *code,
            subcode: *subcode,
            is_transient: None,
            www_authenticate: None,
        }
        .into_response_with_trace(trace_id),
        Fault::OversizedBody(size) => json_response(StatusCode::OK, padded_json(*size)),
    }
}

fn proxy_error_page() -> Response {
    let body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
        <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>proxy</center>\r\n\
        </body>\r\n</html>\r\n";
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html")],
        body,
    )
        .into_response()
}

/// Redirects to a path that exists nowhere, on the host the request was sent to. In tests that
/// host is 127.0.0.1, so a client that follows the redirect stays on loopback.
fn redirect_elsewhere(request_headers: &HeaderMap) -> Response {
    let host = request_headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    let location = format!("http://{host}/sandbox-fault-redirect-target");
    let mut response = StatusCode::FOUND.into_response();
    insert_header(response.headers_mut(), header::LOCATION.as_str(), &location);
    response
}

/// Returns a JSON object of exactly `size` bytes, or of 2 bytes (`{}`) when `size` is smaller.
fn padded_json(size: usize) -> String {
    if size < MIN_PADDED_BODY {
        return format!("{}{{}}", " ".repeat(size.saturating_sub(2)));
    }
    let padding = "a".repeat(size - MIN_PADDED_BODY);
    format!(r#"{{"data":"{padding}"}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_json_has_exact_size() {
        for size in [2, 5, MIN_PADDED_BODY, 1000] {
            let body = padded_json(size);
            assert_eq!(body.len(), size, "size {size}");
            assert!(
                serde_json::from_str::<serde_json::Value>(&body).is_ok(),
                "valid JSON at size {size}"
            );
        }
    }
}
