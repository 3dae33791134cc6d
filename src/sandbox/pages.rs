//! HTML for the login dialog and its error pages, with their security headers.

use std::fmt::Write;
use std::sync::LazyLock;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::graph::insert_header;

/// Style sheet of every sandbox page. It is inlined and allowed by its hash in the CSP, so the
/// pages load nothing else.
const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;background:#f0f2f5;color:#1c1e21;font:15px/1.4 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif}\
.bar{background:#1877f2;color:#fff;padding:10px 20px;font-weight:700;font-size:22px;letter-spacing:-.5px}\
.tag{font-size:12px;font-weight:600;background:#fff;color:#1877f2;border-radius:4px;padding:2px 6px;margin-left:8px;vertical-align:middle;letter-spacing:0}\
.card{max-width:500px;margin:32px auto;background:#fff;border-radius:8px;box-shadow:0 2px 12px rgba(0,0,0,.12);padding:24px}\
h1{font-size:20px;margin:0 0 16px}\
h2{font-size:13px;text-transform:uppercase;color:#65676b;margin:20px 0 8px}\
.user{display:flex;align-items:center;gap:12px;padding:12px;background:#f7f8fa;border-radius:8px}\
.avatar{width:40px;height:40px;border-radius:50%;background:#1877f2;color:#fff;display:flex;align-items:center;justify-content:center;font-weight:700}\
ul{margin:0;padding:0;list-style:none}\
li{padding:8px 0;border-bottom:1px solid #e4e6eb}\
li:last-child{border-bottom:0}\
.muted{color:#65676b;font-size:13px}\
.actions{display:flex;flex-direction:row-reverse;gap:8px;margin-top:24px}\
button{flex:1;border:0;border-radius:6px;padding:10px 16px;font-size:16px;font-weight:600;cursor:pointer}\
.primary{background:#1877f2;color:#fff}\
.primary:hover{background:#166fe5}\
.secondary{background:#e4e6eb;color:#050505}\
.secondary:hover{background:#d8dadf}\
.error h1{color:#b42318}\
code{background:#f0f2f5;border-radius:4px;padding:1px 4px;word-break:break-all}\
";

/// `'sha256-...'` source that allows [`STYLE`] in a `style-src` directive.
static STYLE_HASH_SOURCE: LazyLock<String> =
    LazyLock::new(|| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(STYLE))));

/// Escapes text for use in HTML element content and in quoted attribute values.
pub(super) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Wraps `body_html` (already escaped) in the sandbox page layout.
pub(super) fn layout(title: &str, body_html: &str) -> String {
    let title = escape_html(title);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header class=\"bar\">facebook<span class=\"tag\">sandbox</span></header>\n\
         {body_html}\n</body>\n</html>\n"
    );
    page
}

/// Returns an HTML response with a strict Content-Security-Policy.
///
/// `form_action_origin` is the origin the page's form may lead to besides 'self'. Chromium
/// applies `form-action` to redirects that follow a form POST, so the dialog must allow the
/// redirect URI's origin or the browser blocks the way back to the app.
pub(super) fn html_response(
    status: StatusCode,
    html: String,
    form_action_origin: Option<&str>,
) -> Response {
    let form_action = match form_action_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'none'".to_owned(),
    };
    let policy = format!(
        "default-src 'none'; style-src {}; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'",
        *STYLE_HASH_SOURCE
    );

    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    let headers = response.headers_mut();
    insert_header(headers, header::CONTENT_SECURITY_POLICY.as_str(), &policy);
    insert_header(headers, header::X_FRAME_OPTIONS.as_str(), "DENY");
    insert_header(headers, header::CACHE_CONTROL.as_str(), "no-store");
    insert_header(headers, header::REFERRER_POLICY.as_str(), "no-referrer");
    insert_header(headers, header::X_CONTENT_TYPE_OPTIONS.as_str(), "nosniff");
    response
}

/// Returns an HTTP 400 error page with a heading and an explanation (both plain text).
pub(super) fn error_page(heading: &str, explanation: &str) -> Response {
    tracing::debug!(heading, "sandbox returned an error page");
    let body = format!(
        "<main class=\"card error\">\n<h1>{}</h1>\n<p>{}</p>\n</main>",
        escape_html(heading),
        escape_html(explanation)
    );
    html_response(StatusCode::BAD_REQUEST, layout(heading, &body), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_html_replaces_special_characters() {
        assert_eq!(
            escape_html(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#x27;y&#x27;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn escape_html_keeps_plain_text() {
        assert_eq!(escape_html("Sandbox Page 1 – ok"), "Sandbox Page 1 – ok");
    }

    #[test]
    fn style_hash_matches_inline_style() {
        let page = layout("t", "");
        let expected = format!("<style>{STYLE}</style>");
        assert!(page.contains(&expected), "layout inlines STYLE unchanged");
        assert!(
            STYLE_HASH_SOURCE.starts_with("'sha256-"),
            "hash source form"
        );
    }
}
