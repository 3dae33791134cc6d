//! `oauth/access_token`: exchanges an authorization code for a user access token.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::graph::{ApiVersion, GraphContext, GraphError, no_store, unknown_path_error};
use super::params::Params;
use super::store::{TokenGrant, new_access_token};
use super::{CODE_LIFETIME, Endpoint, Sandbox, TOKEN_LIFETIME_SECS, faults, lock};

/// Handles `GET` (query) and `POST` (form body, query as fallback) token exchanges.
///
/// Checks run in Facebook's order: app ID, redirect URI form, app secret, `code_verifier`, the
/// code itself, then the redirect URI match. Every error is HTTP 400 with `no-store` headers.
pub(super) async fn exchange(
    State(sandbox): State<Sandbox>,
    Path(version): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let parsed_version = ApiVersion::parse(&version);
    let context = GraphContext::new(parsed_version);

    if let Some(fault) = sandbox.begin_request(Endpoint::TokenExchange).await {
        return context.finish(faults::render(&fault, &context.trace_id, &headers));
    }
    if parsed_version.is_none() {
        let path = format!("/{version}/oauth/access_token");
        return no_store(context.error(unknown_path_error(&path)));
    }

    let query = Params::from_query(query.as_deref());
    let params = if method == Method::POST {
        Params::from_bytes(&body).chain(query)
    } else {
        query
    };

    let response = match check_and_issue(&sandbox, &params) {
        Ok(token) => context.json(&json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": TOKEN_LIFETIME_SECS,
        })),
        Err(error) => context.error(error),
    };
    no_store(response)
}

fn check_and_issue(sandbox: &Sandbox, params: &Params) -> Result<String, GraphError> {
    let config = sandbox.config();

    if params.get("client_id") != Some(config.app_id.as_str()) {
        return Err(invalid_code(
            101,
            "Error validating application. Invalid application ID.",
        ));
    }

    let Some(redirect_uri) = params.get("redirect_uri").filter(|uri| is_absolute(uri)) else {
        let error = GraphError::oauth(191, "redirect_uri isn't an absolute URI. Check RFC 3986.");
        return Err(error.with_www_authenticate("invalid_request"));
    };

    let secret = params.get("client_secret").unwrap_or_default();
    if !bool::from(secret.as_bytes().ct_eq(config.app_secret.as_bytes())) {
        return Err(invalid_code(1, "Error validating client secret."));
    }

    if params.get("code_verifier").is_some() {
        return Err(invalid_code(
            1,
            "code_verifier param is provided without a code_challenge in authorization request.",
        ));
    }

    let code = params.get("code").unwrap_or_default();
    let scopes = {
        let mut codes = lock(&sandbox.inner.codes);
        let Some((grant, age)) = codes.get_mut(code) else {
            return Err(invalid_code(100, "Invalid verification code format."));
        };
        if age >= CODE_LIFETIME {
            return Err(
                invalid_code(100, "This authorization code has expired.").with_subcode(36007)
            );
        }
        if grant.used {
            return Err(
                invalid_code(100, "This authorization code has been used.").with_subcode(36009)
            );
        }
        grant.used = true;
        if grant.redirect_uri != redirect_uri {
            return Err(invalid_code(
                100,
                "Error validating verification code. Please make sure your redirect_uri is \
                 identical to the one you used in the OAuth dialog request",
            ));
        }
        grant.scopes.clone()
    };

    let token = new_access_token();
    lock(&sandbox.inner.tokens).insert(token.clone(), TokenGrant { scopes });
    Ok(token)
}

fn invalid_code(code: i64, message: &str) -> GraphError {
    GraphError::oauth(code, message).with_www_authenticate("invalid_code")
}

/// Returns whether `uri` is an absolute URI with a host. Error 191 rejects anything else.
fn is_absolute(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|parsed| parsed.has_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_absolute_requires_scheme_and_host() {
        assert!(
            is_absolute("http://127.0.0.1:8080/callback"),
            "loopback URL"
        );
        assert!(!is_absolute("/callback"), "path only");
        assert!(!is_absolute("callback"), "bare word");
        assert!(!is_absolute("mailto:someone@example.com"), "no host");
    }
}
