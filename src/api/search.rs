//! Full-text search over posts (SQLite FTS5, ranked by bm25, titles weighted double).
//!
//! The user's text is never handed to FTS5 as query syntax: it is cut into words, each word is
//! quoted as a literal phrase, and the phrases are ANDed. Quotes, `*`, `-`, `:`, parentheses and
//! the words AND/OR/NOT/NEAR therefore match as text (or not at all) and cannot cause an error.

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
    let results = match match_expression(query) {
        Some(expression) => api.db.read(|store| store.search(&expression, limit))?,
        None => Vec::new(),
    };
    Ok(Answer::respond(Json(
        json!({ "query": query, "results": results }),
    )))
}

/// `hello "world"` → `"hello" "world"`; `None` when the text has no words at all.
fn match_expression(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(|word| format!("\"{word}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_syntax_becomes_quoted_words() {
        assert_eq!(
            match_expression("event loop").as_deref(),
            Some("\"event\" \"loop\"")
        );
        assert_eq!(
            match_expression("NEAR(a b) OR \"c\" -d* title:e").as_deref(),
            Some("\"NEAR\" \"a\" \"b\" \"OR\" \"c\" \"d\" \"title\" \"e\"")
        );
        assert_eq!(match_expression("\"*-:()\""), None);
        assert_eq!(
            match_expression("naïve café").as_deref(),
            Some("\"naïve\" \"café\"")
        );
    }
}
