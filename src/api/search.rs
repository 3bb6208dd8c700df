//! Full-text search over posts: the store's own (SQLite FTS5 ranked by bm25, or PostgreSQL's
//! tsvector ranked by ts_rank), titles weighted above bodies.
//!
//! The user's text is never handed to the database as query syntax: it is cut into words (runs
//! of letters and digits), and the store matches posts containing all of them. Quotes, `*`,
//! `-`, `:`, parentheses and the words AND/OR/NOT/NEAR therefore separate words or match as
//! text, and cannot cause an error.

use serde::Deserialize;
use serde_json::json;

use crate::http::request::Request;
use crate::json::{HttpError, Json, read_json};

use super::{Answer, Api, DEFAULT_LIMIT, clamp_limit, limit_param};

/// More words than this in a query are ignored.
const MAX_QUERY_WORDS: usize = 32;

/// GET /api/search?q=&limit=
pub fn get(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    let limit = limit_param(request)?;
    let query = request.query_param("q").unwrap_or_default();
    search(api, &query, limit)
}

/// POST /api/search {"q": text, "limit"?: n} — the same as GET.
pub fn post(api: &Api, request: &Request<'_>) -> Result<Answer, HttpError> {
    #[derive(Deserialize)]
    struct SearchInput {
        #[serde(default)]
        q: Option<String>,
        #[serde(default)]
        limit: Option<u64>,
    }
    let input: SearchInput = read_json(request, api.settings.max_json_body)?;
    let limit = clamp_limit(input.limit.unwrap_or(DEFAULT_LIMIT.into()));
    search(api, input.q.as_deref().unwrap_or_default(), limit)
}

fn search(api: &Api, query: &str, limit: u32) -> Result<Answer, HttpError> {
    if query.trim().is_empty() {
        return Err(HttpError::bad_request("`q` must not be empty"));
    }
    let words = words(query);
    let results = match words.is_empty() {
        true => Vec::new(),
        false => api.db.read(|store| store.search(&words, limit))?,
    };
    Ok(Answer::respond(Json(
        json!({ "query": query, "results": results }),
    )))
}

/// The words of `query`: runs of letters and digits, at most [`MAX_QUERY_WORDS`]. Everything
/// else (quotes, `*`, `-`, `:`, parentheses) separates words and is never query syntax.
fn words(query: &str) -> Vec<&str> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_QUERY_WORDS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_syntax_becomes_plain_words() {
        assert_eq!(words("event loop"), ["event", "loop"]);
        assert_eq!(
            words("NEAR(a b) OR \"c\" -d* title:e"),
            ["NEAR", "a", "b", "OR", "c", "d", "title", "e"]
        );
        assert!(words("\"*-:()\"").is_empty());
        assert_eq!(words("naïve café"), ["naïve", "café"]);
        assert_eq!(words(&"w ".repeat(40)).len(), MAX_QUERY_WORDS);
    }
}
