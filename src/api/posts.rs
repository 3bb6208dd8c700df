//! The blog: posts CRUD, and generated posts for load tests.
//!
//! Reads are public; writing needs a session, and changing or deleting a post needs to be its
//! author (401 without a session, 403 for someone else's post, 404 for no such post).

use serde::Deserialize;
use serde_json::json;

use crate::http::request::Request;
use crate::http::response::{IntoResponse, Response};
use crate::http::status::StatusCode;
use crate::json::{HttpError, Json, json_response, read_json};
use crate::store::{self, Store, User};

use super::auth::authenticate;
use super::{Answer, Api, char_len, count_param, length_error, limit_param};

const MAX_TITLE_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 100_000;

#[derive(Deserialize)]
struct PostInput {
    title: String,
    body: String,
}

impl PostInput {
    fn validate(self) -> Result<PostInput, HttpError> {
        if !(1..=MAX_TITLE_CHARS).contains(&char_len(&self.title)) {
            return Err(length_error("title", 1, MAX_TITLE_CHARS));
        }
        if char_len(&self.body) > MAX_BODY_CHARS {
            return Err(length_error("body", 0, MAX_BODY_CHARS));
        }
        Ok(self)
    }
}

/// GET /api/posts?limit=&offset= → {"posts": [...], "total": n}, newest first.
pub fn list(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let limit = limit_param(request)?;
    let offset = count_param(request, "offset", 0)?;
    let (posts, total) = api.db.read(|store| store.list_posts(limit, offset))?;
    Ok(Answer::respond(Json(
        json!({ "posts": posts, "total": total }),
    )))
}

/// GET /api/posts/:id
pub fn show(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let id = post_id(request)?;
    // Encoded straight from the row: the body is the request's one allocation.
    let mut body = None;
    api.db.read(|store| {
        store.read_post(id, &mut |post| {
            let mut json = Vec::with_capacity(post.title.len() + post.body.len() + 192);
            body = Some(serde_json::to_writer(&mut json, post).map(|()| json));
        })
    })?;
    match body {
        Some(Ok(body)) => Ok(Answer::respond(json_response(StatusCode::OK, body))),
        Some(Err(_)) => Err(super::internal_error()),
        None => Err(HttpError::not_found()),
    }
}

/// POST /api/posts {"title","body"} → 201 Post with Location.
pub fn create(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let user = authenticate(api, request)?;
    let input = read_json::<PostInput>(request, api.settings.max_json_body)?.validate()?;
    Ok(Answer::write(move |store| {
        let post = store.create_post(user.id, &input.title, &input.body)?;
        let location = format!("/api/posts/{}", post.id);
        Ok((StatusCode::CREATED, Json(post))
            .into_response()
            .with_header("Location", location))
    }))
}

/// PUT /api/posts/:id {"title","body"} → 200 Post (a full replace, by the author only).
pub fn update(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let user = authenticate(api, request)?;
    let id = post_id(request)?;
    api.db.read(|store| Ok(check_author(store, id, &user)))??;
    let input = read_json::<PostInput>(request, api.settings.max_json_body)?.validate()?;
    Ok(Answer::write(move |store| {
        // Again in the transaction: the post may have gone (or changed hands) meanwhile.
        check_author(store, id, &user)?;
        let post = store
            .update_post(id, &input.title, &input.body)?
            .ok_or_else(HttpError::not_found)?;
        Ok(Json(post).into_response())
    }))
}

/// DELETE /api/posts/:id → 204 (by the author only).
pub fn delete(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let user = authenticate(api, request)?;
    let id = post_id(request)?;
    Ok(Answer::write(move |store| {
        check_author(store, id, &user)?;
        store.delete_post(id)?;
        Ok(Response::empty(StatusCode::NO_CONTENT))
    }))
}

/// Inserts `count` generated posts by the user `seed`, in one transaction.
///
/// The text is deterministic and shaped like prose for search: most words come from a few
/// thousand made-up words with a skewed frequency, and one title word plus about one body word
/// per post from a short list of real terms, so a search for a term matches a few percent of
/// the posts, not all of them.
pub fn seed(store: &mut dyn Store, count: u64) -> Result<(), store::Error> {
    const TERMS: &[&str] = &[
        "loop",
        "socket",
        "epoll",
        "buffer",
        "request",
        "response",
        "keepalive",
        "pipeline",
        "chunked",
        "header",
        "latency",
        "throughput",
        "slab",
        "token",
        "timer",
        "deadline",
        "parser",
        "sqlite",
        "search",
        "session",
        "cookie",
        "static",
        "cache",
        "kernel",
    ];
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "da", "pe", "qui", "zo", "bar", "fen",
        "gli", "hom",
    ];
    // xorshift64: reproducible filler, not security.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    let made_up_word = |next: &mut dyn FnMut(u64) -> u64| {
        // Skewed: low numbers (short, common words) come up far more often.
        let n = next(4096).min(next(4096));
        let syllable = |k: u64| SYLLABLES[(k % SYLLABLES.len() as u64) as usize];
        format!("{}{}{}", syllable(n), syllable(n / 16), syllable(n / 256))
    };
    let term = |n: u64| TERMS[(n % TERMS.len() as u64) as usize];
    let author = store.system_user("seed")?;
    let posts: Vec<(String, String)> = (1..=count)
        .map(|n| {
            let title = format!(
                "Post {n}: {} {}",
                made_up_word(&mut next),
                term(next(u64::MAX))
            );
            let body = (0..40)
                .map(|_| match next(40) {
                    0 => term(next(u64::MAX)).to_owned(),
                    _ => made_up_word(&mut next),
                })
                .collect::<Vec<_>>()
                .join(" ");
            (title, body)
        })
        .collect();
    store.insert_posts(
        author.id,
        &posts
            .iter()
            .map(|(t, b)| (t.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
    )
}

/// The `:id` parameter; anything that is not a post id cannot name a post (404).
fn post_id(request: &Request<'_>) -> Result<i64, HttpError> {
    request
        .param("id")
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|id| id.parse().ok())
        .ok_or_else(HttpError::not_found)
}

fn check_author(store: &mut dyn Store, id: i64, user: &User) -> Result<(), HttpError> {
    match store.post_author(id)? {
        None => Err(HttpError::not_found()),
        Some(author) if author != user.id => Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "only the author may change this post",
        )),
        Some(_) => Ok(()),
    }
}
