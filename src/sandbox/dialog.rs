//! The login dialog (`/{version}/dialog/oauth`) and its Continue / Cancel form target.

use std::fmt::Write;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::graph::{ApiVersion, insert_header};
use super::pages::{error_page, escape_html, html_response, layout};
use super::params::Params;
use super::{Endpoint, Sandbox, faults, split_scope};

/// Name of the one user the sandbox logs in.
const USER_NAME: &str = "Sandbox User";

/// Pages listed on the dialog before the rest are summarised as "and N more".
const MAX_LISTED_PAGES: usize = 10;

/// Fragment Facebook appends to its redirects back to the app.
const FACEBOOK_FRAGMENT: &str = "#_=_";

/// A dialog request whose app ID and redirect URI passed validation.
struct DialogRequest<'a> {
    redirect_uri: &'a str,
    /// `None` when the request sent no `state`, and then the redirect back carries none either.
    state: Option<&'a str>,
    scope: &'a str,
}

/// Handles `GET /{version}/dialog/oauth`: shows the consent page, or an error page for a bad app
/// ID, redirect URI or response type. Facebook never redirects to an unregistered URI.
pub(super) async fn show(
    State(sandbox): State<Sandbox>,
    Path(version): Path<String>,
    OriginalUri(original_uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(fault) = sandbox.begin_request(Endpoint::Dialog).await {
        return faults::render(&fault, &super::store::random_alphanumeric(11), &headers);
    }
    if ApiVersion::parse(&version).is_none() {
        return invalid_version_page(&version);
    }

    let params = Params::from_query(query.as_deref());
    let request = match validate(&sandbox, &params) {
        Ok(request) => request,
        Err(error) => return error.page(),
    };
    let response_type = params.get("response_type").unwrap_or("code");
    if response_type != "code" {
        return error_page(
            "Unsupported response type",
            &format!(
                "The sandbox only imitates the code flow, but the request asked for \
                 response_type \"{response_type}\". Send response_type=code or leave it out."
            ),
        );
    }

    let form_action = format!("{}/confirm", original_uri.path());
    let html = consent_page(&sandbox, &request, &params, &form_action);
    let origin = url::Url::parse(request.redirect_uri)
        .map(|url| url.origin().ascii_serialization())
        .ok()
        .filter(|origin| origin != "null");
    html_response(StatusCode::OK, html, origin.as_deref())
}

/// Handles `POST /{version}/dialog/oauth/confirm`, the form target of Continue and Cancel. It
/// checks the app ID and redirect URI again, because the hidden form fields are client input.
pub(super) async fn confirm(
    State(sandbox): State<Sandbox>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(fault) = sandbox.begin_request(Endpoint::Dialog).await {
        return faults::render(&fault, &super::store::random_alphanumeric(11), &headers);
    }
    if ApiVersion::parse(&version).is_none() {
        return invalid_version_page(&version);
    }

    let params = Params::from_bytes(&body);
    let request = match validate(&sandbox, &params) {
        Ok(request) => request,
        Err(error) => return error.page(),
    };

    let mut pairs: Vec<(&str, String)> = match params.get("choice") {
        Some("continue") => vec![(
            "code",
            sandbox.issue_code(request.redirect_uri, request.scope),
        )],
        Some("cancel") => vec![
            ("error", "access_denied".to_owned()),
            ("error_code", "200".to_owned()),
            ("error_description", "Permissions error".to_owned()),
            ("error_reason", "user_denied".to_owned()),
        ],
        other => {
            return error_page(
                "Invalid choice",
                &format!(
                    "The form sent choice \"{}\", but only \"continue\" and \"cancel\" are \
                     accepted. Open the login dialog again and use its buttons.",
                    other.unwrap_or_default()
                ),
            );
        }
    };
    if let Some(state) = request.state {
        pairs.push(("state", state.to_owned()));
    }

    let location = redirect_location(request.redirect_uri, &pairs);
    let mut response = StatusCode::SEE_OTHER.into_response();
    let response_headers = response.headers_mut();
    insert_header(response_headers, header::LOCATION.as_str(), &location);
    insert_header(response_headers, header::CACHE_CONTROL.as_str(), "no-store");
    insert_header(
        response_headers,
        header::REFERRER_POLICY.as_str(),
        "no-referrer",
    );
    response
}

/// Reason the dialog refuses a request before showing anything.
enum DialogError {
    InvalidAppId,
    UrlBlocked,
}

impl DialogError {
    fn page(self) -> Response {
        match self {
            DialogError::InvalidAppId => error_page(
                "Invalid App ID",
                "The provided app ID does not look like a valid app ID. Check the client_id \
                 parameter against the sandbox app ID.",
            ),
            // Facebook shows this page instead of redirecting, so an unregistered URI never
            // receives anything.
            DialogError::UrlBlocked => error_page(
                "URL Blocked",
                "This redirect failed because the redirect URI is not whitelisted in the app's \
                 Client OAuth Settings. Make sure Client and Web OAuth Login are on and add all \
                 your app domains as Valid OAuth Redirect URIs.",
            ),
        }
    }
}

/// Checks `client_id`, then that `redirect_uri` is byte for byte the registered one.
fn validate<'a>(sandbox: &Sandbox, params: &'a Params) -> Result<DialogRequest<'a>, DialogError> {
    let config = sandbox.config();
    if params.get("client_id") != Some(config.app_id.as_str()) {
        return Err(DialogError::InvalidAppId);
    }

    let redirect_uri = params.get("redirect_uri").unwrap_or_default();
    if redirect_uri != config.redirect_uri {
        return Err(DialogError::UrlBlocked);
    }

    Ok(DialogRequest {
        redirect_uri,
        state: params.get("state"),
        scope: params.get("scope").unwrap_or_default(),
    })
}

fn invalid_version_page(version: &str) -> Response {
    error_page(
        "Sorry, something went wrong",
        &format!(
            "The dialog path names version \"{version}\", which is not a Graph API version. \
             Use the form vNN.N, for example v21.0."
        ),
    )
}

/// Renders the consent page. Every value taken from the request or configuration is escaped.
fn consent_page(
    sandbox: &Sandbox,
    request: &DialogRequest<'_>,
    params: &Params,
    form_action: &str,
) -> String {
    let app_name = escape_html(&sandbox.config().app_name);
    let mut body = String::new();
    let _ = writeln!(body, "<main class=\"card\">");
    let _ = writeln!(
        body,
        "<h1>{app_name} is requesting access to your account</h1>"
    );
    let _ = writeln!(
        body,
        "<div class=\"user\"><div class=\"avatar\">SU</div><div><strong>{USER_NAME}</strong>\
         <div class=\"muted\">Logged in to the Facebook sandbox</div></div></div>"
    );

    let mut permissions = split_scope(request.scope);
    if permissions.is_empty() {
        // Facebook grants the public profile to every login, even with no scope.
        permissions.push("public_profile".to_owned());
    }
    let _ = writeln!(body, "<h2>Permissions requested</h2>\n<ul>");
    for permission in &permissions {
        let _ = writeln!(body, "<li><code>{}</code></li>", escape_html(permission));
    }
    let _ = writeln!(body, "</ul>");

    let page_count = sandbox.page_count();
    let _ = writeln!(body, "<h2>Pages you manage ({page_count})</h2>");
    if page_count == 0 {
        let _ = writeln!(body, "<p class=\"muted\">You do not manage any Pages.</p>");
    } else {
        let _ = writeln!(body, "<ul>");
        for number in 1..=page_count.min(MAX_LISTED_PAGES) {
            let _ = writeln!(body, "<li>Sandbox Page {number}</li>");
        }
        let _ = writeln!(body, "</ul>");
        if page_count > MAX_LISTED_PAGES {
            let more = page_count - MAX_LISTED_PAGES;
            let _ = writeln!(body, "<p class=\"muted\">and {more} more</p>");
        }
    }

    let _ = writeln!(
        body,
        "<form method=\"post\" action=\"{}\">",
        escape_html(form_action)
    );
    let hidden = [
        ("client_id", params.get("client_id")),
        ("redirect_uri", Some(request.redirect_uri)),
        ("state", request.state),
        ("scope", Some(request.scope)),
    ];
    for (name, value) in hidden {
        if let Some(value) = value {
            let _ = writeln!(
                body,
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape_html(value)
            );
        }
    }
    // Continue comes first in the document so that Enter submits it. CSS shows it on the right.
    let _ = writeln!(
        body,
        "<div class=\"actions\">\
         <button type=\"submit\" name=\"choice\" value=\"continue\" class=\"primary\">Continue</button>\
         <button type=\"submit\" name=\"choice\" value=\"cancel\" class=\"secondary\">Cancel</button>\
         </div>\n</form>"
    );
    let _ = writeln!(
        body,
        "<p class=\"muted\">This is a local imitation of Facebook's login dialog for testing. \
         No request leaves this server.</p>\n</main>"
    );

    layout(
        &format!("Log in to {} with Facebook", sandbox.config().app_name),
        &body,
    )
}

/// Appends `pairs` to `redirect_uri`'s query (keeping any query it has) and Facebook's `#_=_`
/// fragment in place of any fragment it had.
fn redirect_location(redirect_uri: &str, pairs: &[(&str, String)]) -> String {
    let without_fragment = redirect_uri.split('#').next().unwrap_or_default();
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    let query = serializer.finish();

    let separator = match without_fragment.find('?') {
        None => "?",
        Some(_) if without_fragment.ends_with(['?', '&']) => "",
        Some(_) => "&",
    };
    format!("{without_fragment}{separator}{query}{FACEBOOK_FRAGMENT}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs() -> Vec<(&'static str, String)> {
        vec![("code", "abc".to_owned()), ("state", "s 1".to_owned())]
    }

    #[test]
    fn redirect_location_without_query() {
        assert_eq!(
            redirect_location("http://127.0.0.1/cb", &pairs()),
            "http://127.0.0.1/cb?code=abc&state=s+1#_=_"
        );
    }

    #[test]
    fn redirect_location_keeps_existing_query() {
        assert_eq!(
            redirect_location("http://127.0.0.1/cb?app=1", &pairs()),
            "http://127.0.0.1/cb?app=1&code=abc&state=s+1#_=_"
        );
        assert_eq!(
            redirect_location("http://127.0.0.1/cb?", &pairs()),
            "http://127.0.0.1/cb?code=abc&state=s+1#_=_"
        );
    }

    #[test]
    fn redirect_location_replaces_fragment() {
        assert_eq!(
            redirect_location("http://127.0.0.1/cb#old", &pairs()),
            "http://127.0.0.1/cb?code=abc&state=s+1#_=_"
        );
    }
}
