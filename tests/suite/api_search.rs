//! Full-text search: `GET /api/search?q=&limit=` and `POST /api/search
//! {"q"}` → `{"query": q, "results": [{"id","title","snippet"}]}` over post
//! titles and bodies (SQLite FTS5). Matching posts are returned and others
//! not (ranking order is deliberately not asserted), updates and deletes
//! show up in the index, snippets are plain text, limit defaults to 20 and
//! is clamped at 100, missing/empty q → 400, and SQL or FTS5 query syntax
//! (quotes, `*`, `-`, `:`, parentheses, AND/OR/NOT/NEAR) never causes a 500.

use std::collections::BTreeSet;

use crate::support::*;

/// The corpus. No post contains the words (or substrings) `or`, `and`,
/// `not`, `near`, `drop`, `table`, `posts`, `title` or any digit, so the
/// SQL/FTS-syntax queries below can only match by accident of injection.
struct Corpus {
    server: Server,
    token: String,
    borrow: Post,  // "borrow" in the title
    cooking: Post, // "borrow" once, deep in a long body
    garden: Post,
    cafe: Post,
}

fn corpus() -> Corpus {
    let server = Server::start(&[]);
    let token = user_token(&server, "searcher");
    let borrow = create_post(
        &server,
        &token,
        "Taming the borrow checker",
        "Lifetimes explained with examples, plus some ownership puzzles.",
    );
    let long_body = format!(
        "A long tale of fresh pasta. {}At the very end we borrow a pan.",
        "Semolina flour, eggs, patience, salt, water. ".repeat(60)
    );
    let cooking = create_post(&server, &token, "Weekend cooking", &long_body);
    let garden = create_post(
        &server,
        &token,
        "Gardening journal",
        "Tomatoes need sun, water, patience.",
    );
    let cafe = create_post(
        &server,
        &token,
        "Crème brûlée café",
        "Dessert with caramelised sugar 😀.",
    );
    Corpus {
        server,
        token,
        borrow,
        cooking,
        garden,
        cafe,
    }
}

/// One search result after its shape was checked.
#[derive(Debug, Clone, PartialEq)]
struct Hit {
    id: i64,
    title: String,
    snippet: String,
}

/// Checks the response shape (`query` echoed, results well-formed) and
/// returns the hits.
fn hits(x: &Exchange, q: &str) -> Vec<Hit> {
    let j = x.expect(200);
    j.assert_keys(&["query", "results"]);
    assert_eq!(
        j.field("query").str(),
        q,
        "query must be echoed\n{}",
        x.show()
    );
    j.field("results")
        .arr()
        .iter()
        .map(|r| {
            r.assert_keys(&["id", "snippet", "title"]);
            Hit {
                id: r.field("id").int(),
                title: r.field("title").str().to_string(),
                snippet: r.field("snippet").str().to_string(),
            }
        })
        .collect()
}

fn get_search(server: &Server, q: &str) -> Exchange {
    Req::get(&format!("/api/search?q={}", pct(q))).send(server)
}

fn post_search(server: &Server, q: &str) -> Exchange {
    Req::post("/api/search")
        .json(json_obj(&[("q", &js(q))]))
        .send(server)
}

/// GET search → the set of ids found.
fn search_ids(server: &Server, q: &str) -> BTreeSet<i64> {
    let x = get_search(server, q);
    let h = hits(&x, q);
    let ids: BTreeSet<i64> = h.iter().map(|h| h.id).collect();
    assert_eq!(ids.len(), h.len(), "duplicate results\n{}", x.show());
    ids
}

fn ids(posts: &[&Post]) -> BTreeSet<i64> {
    posts.iter().map(|p| p.id).collect()
}

// ---------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------

#[test]
fn search_returns_matching_posts_from_titles_and_bodies() {
    // Contract: results over post titles and bodies; matching posts are
    // returned, non-matching ones are not.
    let c = corpus();
    let s = &c.server;
    assert_eq!(search_ids(s, "borrow"), ids(&[&c.borrow, &c.cooking]));
    assert_eq!(search_ids(s, "tomatoes"), ids(&[&c.garden]), "body match");
    assert_eq!(search_ids(s, "gardening"), ids(&[&c.garden]), "title match");
    assert_eq!(search_ids(s, "semolina"), ids(&[&c.cooking]));
    assert_eq!(search_ids(s, "patience"), ids(&[&c.cooking, &c.garden]));
    assert!(search_ids(s, "borrow checker").contains(&c.borrow.id));
    assert_eq!(search_ids(s, "café"), ids(&[&c.cafe]), "non-ASCII words");
    assert_eq!(search_ids(s, "zyzzyva"), BTreeSet::new());

    // Each result's title is the post's title.
    let x = get_search(s, "borrow");
    for h in hits(&x, "borrow") {
        let p = fetch_post(s, h.id).expect("result points to a post");
        assert_eq!(h.title, p.title, "{}", x.show());
    }
}

#[test]
fn snippets_are_plain_text_from_the_post() {
    // Decision: the snippet is plain text (no highlight markup).
    let c = corpus();
    let x = get_search(&c.server, "borrow");
    let h = hits(&x, "borrow");
    for hit in &h {
        for marker in ["<b>", "</b>", "<mark>", "</mark>", "<em>", "<", ">"] {
            assert!(
                !hit.snippet.contains(marker),
                "snippet contains {marker:?}\n{}",
                x.show()
            );
        }
    }
    // The match sits ~2700 characters into the body: the snippet shows it.
    let cooking = h
        .iter()
        .find(|hit| hit.id == c.cooking.id)
        .expect("cooking post found");
    assert!(
        cooking.snippet.to_lowercase().contains("borrow"),
        "snippet should show the matched word\n{}",
        x.show()
    );
}

#[test]
fn query_is_echoed_exactly() {
    // Contract: {"query": q, ...} — q as sent (percent-decoded for GET).
    let c = corpus();
    for q in [
        "borrow checker",
        "Crème brûlée",
        "😀",
        "a&b=c",
        "100%",
        "x+y",
        "  padded  ",
    ] {
        hits(&get_search(&c.server, q), q);
        hits(&post_search(&c.server, q), q);
    }
}

#[test]
fn search_follows_updates_and_deletes() {
    // Decision: deleting/updating a post updates search results.
    let c = corpus();
    let s = &c.server;
    let p = create_post(s, &c.token, "Xylophone lessons", "mallets");
    assert_eq!(search_ids(s, "xylophone"), ids(&[&p]));
    let path = format!("/api/posts/{}", p.id);
    Req::put(&path)
        .bearer(&c.token)
        .json(post_body("Marimba lessons", "vibraphone too"))
        .send(s)
        .expect(200);
    assert_eq!(
        search_ids(s, "xylophone"),
        BTreeSet::new(),
        "old title still indexed"
    );
    assert_eq!(
        search_ids(s, "mallets"),
        BTreeSet::new(),
        "old body still indexed"
    );
    assert_eq!(search_ids(s, "marimba"), ids(&[&p]));
    assert_eq!(search_ids(s, "vibraphone"), ids(&[&p]));
    let x = get_search(s, "marimba");
    assert_eq!(
        hits(&x, "marimba")[0].title,
        "Marimba lessons",
        "{}",
        x.show()
    );
    Req::delete(&path).bearer(&c.token).send(s).expect_204();
    assert_eq!(
        search_ids(s, "marimba"),
        BTreeSet::new(),
        "deleted post still found"
    );
    assert_eq!(search_ids(s, "vibraphone"), BTreeSet::new());
    // The rest of the index is intact.
    assert_eq!(search_ids(s, "borrow"), ids(&[&c.borrow, &c.cooking]));
}

#[test]
fn search_is_public() {
    // Search needs no session (GET and POST).
    let c = corpus();
    hits(&Req::get("/api/search?q=borrow").send(&c.server), "borrow");
    let x = Req::post("/api/search")
        .json(json_obj(&[("q", &js("borrow"))]))
        .send(&c.server);
    hits(&x, "borrow");
}

// ---------------------------------------------------------------------------
// Hostile queries
// ---------------------------------------------------------------------------

/// Queries made only of SQL/FTS5 syntax and words absent from the corpus.
const SYNTAX_ONLY: &[&str] = &[
    "' OR 1=1 --",
    "\"); DROP TABLE posts; --",
    "'; DROP TABLE users; --",
    "' UNION SELECT id, title, body FROM posts --",
    "NEAR(",
    "NEAR()",
    "\"",
    "\"\"",
    "\"***\"",
    "***",
    "*",
    "-",
    "--",
    ":",
    "(",
    ")",
    "()",
    "((((",
    "AND OR NOT",
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "title:x",
    "{title body}: x",
    "^",
    "+",
    "/* */",
    ";",
    "\\",
    "%",
    "_",
    "'",
    "`",
    "[",
    "]",
    "{",
    "}",
    "@",
    "|",
    "&",
    "=",
    ",",
    ".",
    "?",
    "!",
    "#",
    "$",
];

#[test]
fn syntax_in_q_never_causes_a_500() {
    // Contract: query syntax characters in q never cause a 500. Decision:
    // punctuation-only q → 200 with empty results. None of these words
    // occur in the corpus, so anything found would be injection.
    let c = corpus();
    for q in SYNTAX_ONLY {
        for x in [get_search(&c.server, q), post_search(&c.server, q)] {
            let h = hits(&x, q);
            assert!(h.is_empty(), "{q:?} must not match anything\n{}", x.show());
        }
    }
    // Long runs of syntax.
    for q in [
        "NEAR(".repeat(300),
        "\"".repeat(2000),
        "(".repeat(1000),
        "* ".repeat(500),
    ] {
        let h = hits(&get_search(&c.server, &q), &q);
        assert!(h.is_empty());
        hits(&post_search(&c.server, &q), &q);
    }
    // Syntax mixed with real words: 200 (what matches is up to the server).
    for q in [
        "-borrow",
        "borrow NOT checker",
        "borrow OR tomatoes",
        "borrow AND checker",
        "NEAR(borrow checker, 2)",
        "title:borrow",
        "body:borrow",
        "^borrow",
        "borrow + checker",
        "*borrow",
        "borrow**",
        "'borrow'",
    ] {
        let h = hits(&get_search(&c.server, q), q);
        let all = ids(&[&c.borrow, &c.cooking, &c.garden, &c.cafe]);
        assert!(h.iter().all(|h| all.contains(&h.id)));
        hits(&post_search(&c.server, q), q);
    }
    // Posts and index intact.
    assert_eq!(list_posts(&c.server, "").1, 4);
    assert_eq!(
        search_ids(&c.server, "borrow"),
        ids(&[&c.borrow, &c.cooking])
    );
}

#[test]
fn syntax_characters_around_a_word_still_find_it() {
    // A word wrapped in query syntax is still that word: the search for it
    // succeeds and finds the post (quotes, prefix star, parentheses, a
    // trailing colon are not allowed to turn into a syntax error that is
    // swallowed as "no results").
    let c = corpus();
    for q in [
        "\"borrow\"",
        "borrow\"",
        "\"borrow",
        "(borrow)",
        "borrow)",
        "((borrow",
        "borrow*",
        "borrow:",
        "borrow checker\"",
    ] {
        let found = search_ids(&c.server, q);
        assert!(
            found.contains(&c.borrow.id),
            "q={q:?} should find the borrow-checker post, got {found:?}"
        );
    }
}

#[test]
fn non_utf8_and_control_characters_in_q_are_not_a_500() {
    // A percent-encoded q that is not UTF-8 (or holds NUL) is refused with
    // 400 or searched; never a 500.
    let c = corpus();
    for raw in [
        "%FF",
        "borrow%FF",
        "%C0%AF",
        "%ED%A0%80",
        "%00",
        "borrow%00",
    ] {
        let x = Req::get(&format!("/api/search?q={raw}")).send(&c.server);
        match x.status {
            200 => {
                x.expect(200);
            }
            _ => {
                x.expect_error(400);
            }
        }
    }
    // Non-UTF-8 in a POST body is malformed JSON.
    Req::post("/api/search")
        .json(b"{\"q\":\"borrow\xff\"}".as_slice())
        .send(&c.server)
        .expect_error(400);
    // NUL via a JSON escape is a valid string: no 500.
    let x = post_search(&c.server, "bor\u{0}row");
    assert!(matches!(x.status, 200 | 400), "{}", x.show());
}

#[test]
fn hostile_text_in_posts_is_indexed_and_found() {
    // Posts whose text is SQL/FTS syntax are indexed like any text.
    let server = Server::start(&[]);
    let token = user_token(&server, "bobby");
    let p = create_post(
        &server,
        &token,
        "Robert'); DROP TABLE students;--",
        "NEAR( \"unbalanced * quotes: (and) OR",
    );
    assert_eq!(search_ids(&server, "students"), ids(&[&p]));
    assert_eq!(search_ids(&server, "unbalanced"), ids(&[&p]));
    assert_eq!(
        search_ids(&server, "Robert'); DROP TABLE students;--").len(),
        1
    );
    assert_eq!(list_posts(&server, "").1, 1);
}

// ---------------------------------------------------------------------------
// q and limit validation
// ---------------------------------------------------------------------------

#[test]
fn missing_or_empty_q_is_400() {
    // Contract: missing or empty q → 400.
    let server = Server::start(&["--seed-posts", "3"]);
    for target in [
        "/api/search",
        "/api/search?",
        "/api/search?q=",
        "/api/search?q",
        "/api/search?limit=5",
        "/api/search?query=borrow",
        "/api/search?q=&limit=5",
    ] {
        Req::get(target).send(&server).expect_error(400);
    }
    // Whitespace only: refused or simply nothing found.
    for target in ["/api/search?q=%20", "/api/search?q=%20%20%09"] {
        let x = Req::get(target).send(&server);
        if x.status == 400 {
            x.expect_error(400);
        } else {
            assert!(
                x.expect(200).field("results").arr().is_empty(),
                "{}",
                x.show()
            );
        }
    }
}

#[test]
fn post_search_matches_get() {
    // Contract: POST /api/search {"q": <text>} → the same as GET.
    let c = corpus();
    for q in [
        "borrow",
        "patience",
        "café",
        "zyzzyva",
        "' OR 1=1 --",
        "NEAR(",
    ] {
        let g = get_search(&c.server, q);
        let p = post_search(&c.server, q);
        assert_eq!(
            hits(&g, q),
            hits(&p, q),
            "GET vs POST for {q:?}\n{}\n{}",
            g.show(),
            p.show()
        );
    }
    // Extra fields are ignored.
    let x = Req::post("/api/search")
        .json(json_obj(&[("q", &js("borrow")), ("extra", "[1,2]")]))
        .send(&c.server);
    assert_eq!(
        hits(&x, "borrow")
            .iter()
            .map(|h| h.id)
            .collect::<BTreeSet<_>>(),
        ids(&[&c.borrow, &c.cooking])
    );
}

#[test]
fn post_search_q_validation() {
    // Decision: missing/empty q → 400; q of a wrong type → 422.
    let server = Server::start(&["--seed-posts", "3"]);
    let send = |body: &str| Req::post("/api/search").json(body).send(&server);
    for body in ["{}", "{\"q\":\"\"}", "{\"query\":\"borrow\"}"] {
        send(body).expect_error(400);
    }
    for body in [
        "{\"q\":42}",
        "{\"q\":1.5}",
        "{\"q\":true}",
        "{\"q\":[\"borrow\"]}",
        "{\"q\":[]}",
        "{\"q\":{\"a\":\"b\"}}",
    ] {
        send(body).expect_error(422);
    }
    // null is "missing" or "wrong type"; a body that is not an object has
    // no q at all. Either reading is fine, never a 500.
    for body in ["{\"q\":null}", "[]", "\"borrow\"", "42", "null"] {
        send(body).expect_error_in(&[400, 422]);
    }
    for body in ["{\"q\":", "{q:\"borrow\"}", "borrow", ""] {
        send(body).expect_error(400);
    }
}

#[test]
fn search_limit_defaults_to_20_and_is_clamped_to_100() {
    // Decision: limit default 20, at most 100 (clamped), invalid → 400
    // like posts.
    let server = Server::start(&[]);
    let token = user_token(&server, "zookeeper");
    let mut c = server.connect();
    for i in 0..105 {
        Req::post("/api/posts")
            .bearer(&token)
            .json(post_body(
                &format!("zebra sighting {i}"),
                "stripes everywhere",
            ))
            .send_on(&mut c)
            .expect(201);
    }
    let count = |target: &str| {
        let x = Req::get(target).send(&server);
        hits(&x, "zebra").len()
    };
    assert_eq!(count("/api/search?q=zebra"), 20);
    assert_eq!(count("/api/search?q=zebra&limit=5"), 5);
    assert_eq!(count("/api/search?limit=7&q=zebra"), 7);
    assert_eq!(count("/api/search?q=zebra&limit=100"), 100);
    assert_eq!(count("/api/search?q=zebra&limit=101"), 100);
    assert_eq!(count("/api/search?q=zebra&limit=100000"), 100);
    for limit in ["", "abc", "-1", "1.5", "-0.5", "1e2", "%20", "'%20OR%201=1"] {
        Req::get(&format!("/api/search?q=zebra&limit={limit}"))
            .send(&server)
            .expect_error(400);
    }
    // Distinct results, all zebras.
    let x = Req::get("/api/search?q=zebra&limit=100").send(&server);
    let h = hits(&x, "zebra");
    let unique: BTreeSet<i64> = h.iter().map(|h| h.id).collect();
    assert_eq!(unique.len(), 100);
    assert!(h.iter().all(|h| h.title.starts_with("zebra sighting ")));
}
