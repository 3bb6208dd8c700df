//! Accounts and sessions: register, login, logout, me.
//!
//! - Passwords are hashed with argon2id (the crate's defaults, OWASP's minimum: 19 MiB, 2
//!   passes, 1 lane) on the helper pool, never on the loop; login verifies on the pool too,
//!   against a dummy hash for unknown users so that both failures cost the same time and say
//!   the same thing. (The 19 MiB go back to the system after each hash: see `main.rs`.)
//! - A session token is 32 random bytes in hex, handed to the client once; the store keeps only
//!   its SHA-256, so a leaked database holds no usable token.
//! - Failed logins are counted per username: the sixth within a minute is a 429 with
//!   Retry-After, whatever the password.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::http::request::Request;
use crate::http::response::{IntoResponse, Response};
use crate::http::status::StatusCode;
use crate::json::{HttpError, Json, read_json};
use crate::store::User;

use super::{Answer, Api, char_len, length_error};

const COOKIE_NAME: &str = "session";
const BAD_CREDENTIALS: &str = "invalid username or password";

#[derive(Deserialize)]
struct CredentialsInput {
    username: String,
    password: String,
}

/// POST /api/auth/register {"username","password"} → 201 {"username"}; 409 taken; 422 invalid.
pub fn register(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let input: CredentialsInput = read_json(request, api.settings.max_json_body)?;
    let valid_name = (3..=32).contains(&input.username.len())
        && input
            .username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_name {
        return Err(HttpError::unprocessable(
            "`username` must be 3 to 32 characters of A-Z, a-z, 0-9 and _",
        ));
    }
    if !(8..=128).contains(&char_len(&input.password)) {
        return Err(length_error("password", 8, 128));
    }
    // Checked here to spare the hashing; the unique index decides races.
    if api
        .db
        .read(|store| store.username_exists(&input.username))?
    {
        return Err(username_taken());
    }
    let hash = hash_password(&input.password)?;
    Ok(Answer::write(move |store| {
        match store.create_user(&input.username, &hash)? {
            Ok(user) => Ok((
                StatusCode::CREATED,
                Json(json!({ "username": user.username })),
            )
                .into_response()),
            Err(_taken) => Err(username_taken()),
        }
    }))
}

/// POST /api/auth/login {"username","password"} → 200 {"username","token"} and the cookie.
pub fn login(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let input: CredentialsInput = read_json(request, api.settings.max_json_body)?;
    let limiter_key = input.username.to_ascii_lowercase();
    if let Err(retry_after) = api.db.login_allowed(&limiter_key)? {
        let response = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins; try again later",
        )
        .into_response()
        .with_header("Retry-After", retry_after.as_secs().max(1).to_string());
        return Ok(Answer::respond(response));
    }
    let credentials = api.db.read(|store| store.credentials(&input.username))?;
    let verified = match &credentials {
        Some(found) => verify_password(&input.password, &found.password_hash),
        None => verify_password(&input.password, dummy_hash()),
    };
    let Some(found) = credentials.filter(|_| verified) else {
        api.db.login_failed(&limiter_key)?;
        return Err(HttpError::new(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS));
    };
    api.db.login_succeeded(&limiter_key)?;
    let token = new_token()?;
    let ttl = api.settings.session_ttl_secs;
    let cookie = session_cookie(&token, ttl, request.is_secure());
    Ok(Answer::write(move |store| {
        store.create_session(found.user.id, &token_hash(&token), ttl)?;
        let body = json!({ "username": found.user.username, "token": token });
        Ok(Json(body).into_response().with_header("Set-Cookie", cookie))
    }))
}

/// POST /api/auth/logout → 204, the session deleted and the cookie cleared.
pub fn logout(_api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let token = session_token(request).ok_or_else(unauthorized)?;
    let hash = token_hash(token);
    let cleared = session_cookie("", 0, request.is_secure());
    Ok(Answer::write(move |store| {
        if store.session_user(&hash)?.is_none() {
            return Err(unauthorized());
        }
        store.delete_session(&hash)?;
        Ok(Response::empty(StatusCode::NO_CONTENT).with_header("Set-Cookie", cleared))
    }))
}

/// The session cookie's Set-Cookie value (an empty token with Max-Age 0 clears it): `Path=/`,
/// `HttpOnly`, `SameSite=Lax` and `Max-Age` (RFC 6265 §4.1), in the order the `cookie` crate
/// writes them. Over HTTPS it is `Secure`, so the browser never sends it back over plain HTTP.
fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    // Like the store's expiry, a TTL beyond i64 seconds is as good as forever.
    let max_age = cookie::time::Duration::seconds(i64::try_from(max_age_secs).unwrap_or(i64::MAX));
    Cookie::build((COOKIE_NAME, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .secure(secure)
        .to_string()
}

/// GET /api/auth/me → 200 {"username"} or 401.
pub fn me(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let user = authenticate(api, request)?;
    Ok(Answer::respond(Json(json!({ "username": user.username }))))
}

/// The user of the request's session (bearer token first, then the cookie), or a 401.
pub fn authenticate(api: &Api, request: &Request<'_>) -> Result<User, HttpError> {
    let token = session_token(request).ok_or_else(unauthorized)?;
    let hash = token_hash(token);
    api.db
        .read(|store| store.session_user(&hash))?
        .ok_or_else(unauthorized)
}

fn unauthorized() -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, "authentication required")
}

fn username_taken() -> HttpError {
    HttpError::new(StatusCode::CONFLICT, "that username is taken")
}

/// `Authorization: Bearer <token>`, else the `session` cookie.
fn session_token<'r>(request: &Request<'r>) -> Option<&'r str> {
    let bearer = request
        .header("authorization")
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    bearer
        .or_else(|| session_cookie_value(request.headers_named("cookie")))
        .filter(|token| !token.is_empty())
}

/// The value of the first `session` cookie in the `Cookie` fields (RFC 6265 §5.4: `name=value`
/// pairs separated by `;`, whitespace around names and values ignored as in §5.2); other
/// cookies, pairs without a name or `=`, and fields that are not UTF-8 are passed over. The
/// value is taken as sent: no percent-decoding, quotes kept.
fn session_cookie_value<'h>(cookie_fields: impl Iterator<Item = &'h [u8]>) -> Option<&'h str> {
    cookie_fields
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE_NAME)
        .and_then(|cookie| cookie.value_raw())
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// 32 bytes from the OS's CSPRNG, as 64 lowercase hex digits.
fn new_token() -> Result<String, HttpError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "no randomness available")
    })?;
    Ok(hex::encode(bytes))
}

fn hash_password(password: &str) -> Result<String, HttpError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|_| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "password hashing failed"))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A real argon2 hash of a random password, verified against for unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let password = new_token().unwrap_or_default();
        hash_password(&password).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let cases: &[(&[&[u8]], Option<&str>)] = &[
            (&[b"session=abc"], Some("abc")),
            (&[b"a=1; session=abc; b=2"], Some("abc")),
            (&[b"a=1;session=abc"], Some("abc")),
            (&[b"  session=abc  "], Some("abc")),
            (&[b"a=1", b"session=abc"], Some("abc")),
            (&[b"session=abc; session=def"], Some("abc")),
            (&[b"a=1;; session=abc"], Some("abc")),
            (&[b"flag; session=abc"], Some("abc")),
            (&[b"session=a=b"], Some("a=b")),
            (&[b"session=\"abc\""], Some("\"abc\"")),
            (&[b"\xff", b"session=abc"], Some("abc")),
            (&[b"session="], Some("")),
            // Whitespace around the name and the value is not part of them (RFC 6265 §5.2).
            (&[b"session = abc"], Some("abc")),
            (&[b"session= abc"], Some("abc")),
            (&[b"session=\xff"], None),
            (&[b"session"], None),
            (&[b"sessionx=abc"], None),
            (&[b"xsession=abc"], None),
            (&[b"Session=abc"], None),
            (&[b"=abc"], None),
            (&[b""], None),
            (&[], None),
        ];
        for (fields, want) in cases {
            let got = session_cookie_value(fields.iter().copied());
            assert_eq!(got, *want, "{fields:?}");
        }
    }

    #[test]
    fn set_cookie_names_every_attribute_of_the_contract() {
        let cases: &[(&str, u64, bool, &str)] = &[
            (
                "abc",
                3600,
                false,
                "session=abc; HttpOnly; SameSite=Lax; Path=/; Max-Age=3600",
            ),
            (
                "abc",
                604_800,
                true,
                "session=abc; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=604800",
            ),
            (
                "",
                0,
                false,
                "session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0",
            ),
            (
                "",
                0,
                true,
                "session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0",
            ),
            (
                "abc",
                u64::MAX,
                false,
                "session=abc; HttpOnly; SameSite=Lax; Path=/; Max-Age=9223372036854775807",
            ),
        ];
        for &(token, max_age, secure, want) in cases {
            assert_eq!(session_cookie(token, max_age, secure), want);
        }
    }

    #[test]
    fn hashes_verify_and_tokens_are_64_hex_digits() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("x", "!"));
        let token = new_token().unwrap();
        assert_eq!(token.len(), 64);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
