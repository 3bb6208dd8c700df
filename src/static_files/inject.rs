//! Putting a snippet into HTML pages (`--watch`: live reload's script tag).
//!
//! The file cache does it once, when it reads a page (`cache`), so every response is simply
//! the page with the snippet: Content-Length, ETag, ranges and compressed copies are all those
//! of the bytes sent, by construction.
//!
//! Where: before the page's last `</body` (in any case), so the script runs once the document
//! is parsed; a page without one gets it at the end, where a browser still runs it (HTML
//! §13.2.6.4.21-23: content after `</body>` and `</html>` is parsed into the body).

/// Whether a response of this media type is an HTML page (`text/html`, with or without
/// parameters).
pub fn is_html(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/html")
}

/// `page` with `snippet` before its last `</body>` end tag, or at its end if it has none.
pub fn inject(page: &[u8], snippet: &[u8]) -> Vec<u8> {
    let at = last_body_end_tag(page).unwrap_or(page.len());
    let mut out = Vec::with_capacity(page.len() + snippet.len());
    out.extend_from_slice(&page[..at]);
    out.extend_from_slice(snippet);
    out.extend_from_slice(&page[at..]);
    out
}

/// Where the last `</body` end tag starts: the name in any case, then `>`, `/`, white space or
/// the end (HTML §13.2.5.8, tag name state), so `</bodyguard>` is not one.
fn last_body_end_tag(page: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"</body";
    memchr::memrchr_iter(b'<', page).find(|&at| {
        let rest = &page[at..];
        rest.len() >= TAG.len()
            && rest[..TAG.len()].eq_ignore_ascii_case(TAG)
            && rest.get(TAG.len()).is_none_or(|&next| {
                matches!(next, b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNIPPET: &[u8] = b"<script src=\"/x.js\"></script>";

    #[test]
    fn the_snippet_goes_before_the_last_body_end_tag_or_at_the_end() {
        // (page, the page with the snippet marked as `@`)
        let cases: &[(&str, &str)] = &[
            ("<p>hi</p></body></html>", "<p>hi</p>@</body></html>"),
            (
                "<p>hi</p></BODY>\n</html>\n",
                "<p>hi</p>@</BODY>\n</html>\n",
            ),
            ("<p>a</p></Body >", "<p>a</p>@</Body >"),
            ("<p>a</p></body\n>", "<p>a</p>@</body\n>"),
            ("<p>a</p></body", "<p>a</p>@</body"),
            // The last one: an earlier `</body>` may be text in a script or a comment.
            (
                "<script>'</body>'</script></body>",
                "<script>'</body>'</script>@</body>",
            ),
            // No end tag (it is optional): at the end.
            (
                "<!doctype html><title>t</title><p>x",
                "<!doctype html><title>t</title><p>x@",
            ),
            ("<p>a</p></html>", "<p>a</p></html>@"),
            ("<p>a</p></bodyguard>", "<p>a</p></bodyguard>@"),
            ("<p>a</p></bod", "<p>a</p></bod@"),
            ("", "@"),
        ];
        for (page, expected) in cases {
            let injected = inject(page.as_bytes(), SNIPPET);
            let expected = expected.replace('@', std::str::from_utf8(SNIPPET).unwrap());
            assert_eq!(String::from_utf8(injected).unwrap(), expected, "{page:?}");
        }
    }

    #[test]
    fn the_page_grows_by_exactly_the_snippet_and_keeps_every_byte() {
        let page = "<!doctype html>\n<p>café ☕</p>\n</body>\n</html>\n".as_bytes();
        let injected = inject(page, SNIPPET);
        assert_eq!(injected.len(), page.len() + SNIPPET.len());
        let at = injected
            .windows(SNIPPET.len())
            .position(|window| window == SNIPPET)
            .unwrap();
        let mut without = injected.clone();
        without.drain(at..at + SNIPPET.len());
        assert_eq!(without, page, "the page around the snippet is unchanged");
    }

    #[test]
    fn html_is_text_html_in_any_case_with_any_parameters() {
        for html in [
            "text/html",
            "text/html; charset=utf-8",
            "Text/HTML;charset=x",
        ] {
            assert!(is_html(html), "{html}");
        }
        for other in ["text/plain", "application/xhtml+xml", "text/htmlx", ""] {
            assert!(!is_html(other), "{other}");
        }
    }
}
