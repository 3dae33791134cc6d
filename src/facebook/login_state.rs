//! The login state: the CSRF defence of the OAuth flow, kept in signed cookies.
//!
//! `/facebook/login` sends Facebook a random `state` (128 bits) and sets a
//! cookie named after a hash of it. The cookie contains the start time and an
//! HMAC that binds the state to that time, keyed by a key derived from the app
//! secret. `/facebook/callback` accepts the state only if this browser has a
//! valid, unexpired cookie for it. Nothing is stored on the server, so any
//! instance that shares the app secret can finish a login that another
//! instance started.
//!
//! Each login has its own cookie, so a user can finish logins from several
//! tabs in any order. A finished login's cookie is replaced by a signed
//! "finished" marker, so a refreshed callback page gets a clear error instead
//! of a second code exchange.
//!
//! NOTE: being stateless, the marker only works once the browser has stored
//! it. Two requests with the same live cookie at the same moment (a refresh
//! while the first callback still waits on Facebook) both pass the check;
//! Facebook's single-use codes then reject the second with `code_used`.
//! A sibling subdomain that can set cookies for this host could also plant a
//! login of its own. The `__Host-` cookie prefix would prevent that, but it
//! requires `Path=/` and https.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::error::AppError;

/// How long a login may take, from the redirect to Facebook to the callback.
/// RFC 6749, section 4.1.2, recommends at most 10 minutes for a code's life;
/// Facebook does not document its own limit.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);

/// The maximum number of login cookies one browser keeps. Starting another
/// login drops the oldest. Five cookies of about 80 bytes stay far below the 4 KB per cookie
/// and 8 KB per `Cookie` header that browsers and proxies commonly accept.
pub const MAX_LOGINS_PER_BROWSER: usize = 5;

/// Every login cookie's name starts with this.
pub const COOKIE_PREFIX: &str = "fb_login_";

/// How far in the future a cookie's start time may be, in milliseconds, for
/// clock skew between instances.
const CLOCK_SKEW_MILLIS: u64 = 60_000;

const FINISHED_MARKER: &str = "done";

/// Signs and checks login cookies.
#[derive(Clone)]
pub struct LoginSigner {
    /// HMAC keyed once with the derived key; cloned per signature, which
    /// saves hashing the key twice on every login and callback.
    keyed_mac: Hmac<Sha256>,
    cookie_path: String,
    secure: bool,
}

impl std::fmt::Debug for LoginSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LoginSigner")
            .field("keyed_mac", &"[redacted]")
            .field("cookie_path", &self.cookie_path)
            .field("secure", &self.secure)
            .finish()
    }
}

/// A new login: the state for Facebook and the `Set-Cookie` values to send.
#[derive(Debug)]
pub struct StartedLogin {
    pub state: String,
    pub set_cookies: Vec<String>,
}

/// The outcome of checking a callback, with the `Set-Cookie` values to send
/// whatever the outcome.
#[derive(Debug)]
pub struct CheckedCallback {
    pub result: Result<(), AppError>,
    pub set_cookies: Vec<String>,
    /// The `Set-Cookie` value that marks the login finished, when the state
    /// is valid. The caller sends it once the code is used or the login
    /// ends, and withholds it when the callback may be retried as it is.
    pub finished_marker: Option<String>,
}

/// The content of a login cookie, once its signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieState {
    Live { started_at: u64 },
    Finished { started_at: u64 },
}

impl LoginSigner {
    /// Derives the signing key from the app secret, so the secret itself
    /// never signs anything but Graph calls.
    ///
    /// `cookie_path` is the folder of the redirect URI's path (for
    /// `/facebook/callback`, `/facebook`), so the cookie reaches both the login
    /// and the callback routes even behind a proxy that adds a path prefix.
    pub fn new(app_secret: &Secret, redirect_uri: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.expose().as_bytes())
            .expect("HMAC accepts a key of any length");
        mac.update(b"facebook-oauth login state key v1");
        let key = mac.finalize().into_bytes();
        let keyed_mac =
            Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts a key of any length");

        let (secure, cookie_path) = match url::Url::parse(redirect_uri) {
            Ok(url) => {
                let path = url.path();
                let folder = &path[..path.rfind('/').unwrap_or(0)];
                let folder = if folder.is_empty() { "/" } else { folder };
                (url.scheme() == "https", folder.to_owned())
            }
            Err(_) => (true, "/".to_owned()),
        };
        Self {
            keyed_mac,
            cookie_path,
            secure,
        }
    }

    /// Starts a login at `now` (Unix milliseconds). `cookies` are the browser's
    /// cookies, used to drop expired, invalid and surplus login cookies.
    pub fn start(&self, cookies: &[(&str, &str)], now: u64) -> StartedLogin {
        let mut random = [0u8; 16];
        rand::rng().fill_bytes(&mut random);
        let state = URL_SAFE_NO_PAD.encode(random);

        let mut kept: Vec<(u64, &str)> = Vec::new();
        let mut set_cookies = Vec::new();
        for (name, value) in login_cookies(cookies) {
            match self.read_cookie_value(value, now) {
                Some(CookieState::Live { started_at } | CookieState::Finished { started_at }) => {
                    kept.push((started_at, name))
                }
                None => set_cookies.push(self.clear_cookie(name)),
            }
        }
        kept.sort_unstable();
        let surplus = (kept.len() + 1).saturating_sub(MAX_LOGINS_PER_BROWSER);
        for (_, name) in kept.iter().take(surplus) {
            set_cookies.push(self.clear_cookie(name));
        }
        // A new login is always younger than this browser's others, even
        // within one millisecond, so "oldest" stays well defined.
        let newest = kept.last().map_or(0, |(started_at, _)| *started_at);
        let now = now.max(newest + 1);

        let name = cookie_name(&state);
        let value = format!("{now}.{}", self.sign("live", &state, now));
        set_cookies.push(self.set_cookie(&name, &value, LOGIN_TTL));
        StartedLogin { state, set_cookies }
    }

    /// Checks the callback's `state` against this browser's login cookies at
    /// `now` (Unix milliseconds).
    pub fn check(
        &self,
        state: Option<&str>,
        cookies: &[(&str, &str)],
        now: u64,
    ) -> CheckedCallback {
        let mut set_cookies = Vec::new();
        let state = state.filter(|state| !state.is_empty());
        let name = state.map(cookie_name);
        let ours: Vec<(&str, &str)> = login_cookies(cookies).collect();

        // Other cookies that can never succeed are dropped on every callback;
        // the one named for this state is handled below.
        for (cookie, value) in &ours {
            if name.as_deref() != Some(*cookie) && self.read_cookie_value(value, now).is_none() {
                set_cookies.push(self.clear_cookie(cookie));
            }
        }

        let (Some(state), Some(name)) = (state, name) else {
            return CheckedCallback {
                result: Err(AppError::StateMissing),
                set_cookies,
                finished_marker: None,
            };
        };

        let Some((_, value)) = ours.iter().find(|(cookie, _)| *cookie == name) else {
            let error = if ours.is_empty() {
                AppError::StateCookieMissing
            } else {
                AppError::StateMismatch
            };
            return CheckedCallback {
                result: Err(error),
                set_cookies,
                finished_marker: None,
            };
        };

        let mut finished_marker = None;
        let result = match self.verify_cookie_value(state, value) {
            Some(CookieState::Finished { .. }) => Err(AppError::LoginAlreadyFinished),
            Some(CookieState::Live { started_at }) if is_expired(started_at, now) => {
                set_cookies.push(self.clear_cookie(&name));
                Err(AppError::StateExpired)
            }
            Some(CookieState::Live { started_at }) => {
                let marker = format!(
                    "{FINISHED_MARKER}.{started_at}.{}",
                    self.sign(FINISHED_MARKER, state, started_at)
                );
                finished_marker = Some(self.set_cookie(&name, &marker, LOGIN_TTL));
                Ok(())
            }
            None => {
                set_cookies.push(self.clear_cookie(&name));
                Err(AppError::StateCookieInvalid)
            }
        };
        CheckedCallback {
            result,
            set_cookies,
            finished_marker,
        }
    }

    /// Builds a login cookie value for `state` started at `started_at`, as
    /// `start` does. Lets tests make cookies of any age.
    pub fn sign_cookie_value(&self, state: &str, started_at: u64) -> String {
        format!("{started_at}.{}", self.sign("live", state, started_at))
    }

    /// Reads a cookie's state when its format is valid and it has not expired.
    /// The signature covers the state, which only the callback carries, so it
    /// is checked there.
    fn read_cookie_value(&self, value: &str, now: u64) -> Option<CookieState> {
        let state = parse_cookie_value(value)?;
        let started_at = match state {
            CookieState::Live { started_at } | CookieState::Finished { started_at } => started_at,
        };
        if is_expired(started_at, now) || started_at > now + CLOCK_SKEW_MILLIS {
            return None;
        }
        Some(state)
    }

    /// Returns the cookie's state when its signature matches `state`.
    fn verify_cookie_value(&self, state: &str, value: &str) -> Option<CookieState> {
        let parsed = parse_cookie_value(value)?;
        let (purpose, started_at) = match parsed {
            CookieState::Live { started_at } => ("live", started_at),
            CookieState::Finished { started_at } => (FINISHED_MARKER, started_at),
        };
        let signature = URL_SAFE_NO_PAD.decode(value.rsplit('.').next()?).ok()?;
        // verify_slice compares in constant time.
        self.mac(purpose, state, started_at)
            .verify_slice(&signature)
            .ok()?;
        Some(parsed)
    }

    fn mac(&self, purpose: &str, state: &str, started_at: u64) -> Hmac<Sha256> {
        let mut mac = self.keyed_mac.clone();
        mac.update(format!("{purpose}|{state}|{started_at}").as_bytes());
        mac
    }

    fn sign(&self, purpose: &str, state: &str, started_at: u64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, state, started_at).finalize().into_bytes())
    }

    fn set_cookie(&self, name: &str, value: &str, max_age: Duration) -> String {
        // SameSite=Lax, not Strict: the callback is a top-level navigation from
        // facebook.com, on which browsers drop Strict cookies.
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{name}={value}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.cookie_path,
            max_age.as_secs()
        )
    }

    fn clear_cookie(&self, name: &str) -> String {
        self.set_cookie(name, "", Duration::ZERO)
    }
}

/// Names a login cookie after the first 64 bits of the state's SHA-256, so a
/// callback finds its own cookie among several without storing the state.
pub fn cookie_name(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    format!("{COOKIE_PREFIX}{}", hex::encode(&digest[..8]))
}

/// Returns the current time in Unix milliseconds.
pub fn unix_now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

fn is_expired(started_at: u64, now: u64) -> bool {
    now.saturating_sub(started_at) > LOGIN_TTL.as_millis() as u64
}

fn login_cookies<'a>(
    cookies: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    cookies
        .iter()
        .copied()
        .filter(|(name, _)| name.starts_with(COOKIE_PREFIX))
}

/// Parses `STARTED.SIGNATURE` or `done.STARTED.SIGNATURE`, without checking the signature.
fn parse_cookie_value(value: &str) -> Option<CookieState> {
    let mut parts = value.split('.');
    let first = parts.next()?;
    let (state, signature) = if first == FINISHED_MARKER {
        let started_at = parts.next()?.parse().ok()?;
        (CookieState::Finished { started_at }, parts.next()?)
    } else {
        let started_at = first.parse().ok()?;
        (CookieState::Live { started_at }, parts.next()?)
    };
    // An HMAC-SHA256 is 43 characters in unpadded base64url.
    if parts.next().is_some() || signature.len() != 43 {
        return None;
    }
    Some(state)
}

/// Splits `Cookie` header values into name and value pairs. Malformed pairs are skipped.
pub fn parse_cookie_headers<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<(&'a str, &'a str)> {
    headers
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some((name.trim(), value.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn signer() -> LoginSigner {
        LoginSigner::new(
            &Secret::new("app-secret"),
            "https://auth.example.com/facebook/callback",
        )
    }

    /// Returns the `name=value` part of a `Set-Cookie` value.
    fn cookie_pair(set_cookie: &str) -> (String, String) {
        let pair = set_cookie.split(';').next().expect("a pair");
        let (name, value) = pair.split_once('=').expect("name=value");
        (name.to_owned(), value.to_owned())
    }

    fn start(signer: &LoginSigner, cookies: &[(&str, &str)]) -> (String, (String, String)) {
        let login = signer.start(cookies, NOW);
        let cookie = cookie_pair(login.set_cookies.last().expect("a login cookie"));
        (login.state, cookie)
    }

    #[test]
    fn state_has_128_random_bits() {
        let (first, _) = start(&signer(), &[]);
        let (second, _) = start(&signer(), &[]);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&first).expect("base64url").len(),
            16,
            "16 bytes"
        );
        assert_ne!(first, second, "two logins get different states");
    }

    #[test]
    fn cookie_attributes_follow_redirect_uri() {
        let login = signer().start(&[], NOW);
        let cookie = login.set_cookies.last().expect("a login cookie");
        for attribute in [
            "Path=/facebook",
            "Max-Age=600",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
        ] {
            assert!(
                cookie.contains(attribute),
                "cookie lacks {attribute}: {cookie}"
            );
        }
        let plain = LoginSigner::new(
            &Secret::new("s"),
            "http://localhost:5000/auth/facebook/callback",
        );
        let cookie = plain
            .start(&[], NOW)
            .set_cookies
            .pop()
            .expect("a login cookie");
        assert!(
            !cookie.contains("Secure"),
            "http redirect URI gets no Secure: {cookie}"
        );
        assert!(
            cookie.contains("Path=/auth/facebook;"),
            "path follows the redirect URI: {cookie}"
        );
    }

    #[test]
    fn valid_cookie_accepted_once() {
        let signer = signer();
        let (state, (name, value)) = start(&signer, &[]);
        let checked = signer.check(Some(&state), &[(&name, &value)], NOW + 5);
        assert!(
            checked.result.is_ok(),
            "valid login rejected: {:?}",
            checked.result
        );

        let marker_cookie = checked
            .finished_marker
            .as_deref()
            .expect("a finished marker");
        let (_, marker) = cookie_pair(marker_cookie);
        let replay = signer.check(Some(&state), &[(&name, &marker)], NOW + 10);
        assert!(
            matches!(replay.result, Err(AppError::LoginAlreadyFinished)),
            "replay: {:?}",
            replay.result
        );
    }

    #[test]
    fn bad_callbacks_rejected() {
        let signer = signer();
        let (state, (name, value)) = start(&signer, &[]);
        let (other_state, _) = start(&signer, &[]);
        let forged = format!("{NOW}.{}", "A".repeat(43));
        let other_key = LoginSigner::new(&Secret::new("other"), "https://a.example.com/cb");
        let foreign = other_key.sign_cookie_value(&state, NOW);

        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Vec<(&'a str, &'a str)>,
            u64,
            &'a str,
        );
        let cases: [Case; 6] = [
            (
                "no state",
                None,
                vec![(&name, &value)],
                NOW,
                "state_missing",
            ),
            (
                "no cookie",
                Some(&state),
                vec![],
                NOW,
                "state_cookie_missing",
            ),
            (
                "forged signature",
                Some(&state),
                vec![(&name, &forged)],
                NOW,
                "state_cookie_invalid",
            ),
            (
                "other secret",
                Some(&state),
                vec![(&name, &foreign)],
                NOW,
                "state_cookie_invalid",
            ),
            (
                "other login",
                Some(&other_state),
                vec![(&name, &value)],
                NOW,
                "state_mismatch",
            ),
            (
                "expired",
                Some(&state),
                vec![(&name, &value)],
                NOW + 601_000,
                "state_expired",
            ),
        ];
        for (case, state, cookies, now, expected) in cases {
            let checked = signer.check(state, &cookies, now);
            let code = checked.result.as_ref().map_err(AppError::code).err();
            assert_eq!(code, Some(expected), "case {case}");
        }
    }

    #[test]
    fn surplus_logins_drop_oldest() {
        let signer = signer();
        let mut jar: Vec<(String, String)> = Vec::new();
        for offset in 0..MAX_LOGINS_PER_BROWSER as u64 {
            let state = format!("state-{offset}");
            jar.push((
                cookie_name(&state),
                signer.sign_cookie_value(&state, NOW + offset),
            ));
        }
        let cookies: Vec<(&str, &str)> = jar
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let login = signer.start(&cookies, NOW + 10);
        let cleared: Vec<&String> = login
            .set_cookies
            .iter()
            .filter(|cookie| cookie.contains("Max-Age=0"))
            .collect();
        assert_eq!(cleared.len(), 1, "one cookie dropped: {cleared:?}");
        assert!(
            cleared[0].starts_with(&jar[0].0),
            "the oldest is dropped: {cleared:?}"
        );
    }

    #[test]
    fn cookie_headers_parsed() {
        let pairs = parse_cookie_headers(["a=1; b=2", "c=3;broken"].into_iter());
        assert_eq!(pairs, [("a", "1"), ("b", "2"), ("c", "3")], "pairs");
    }
}
