//! Content codings for static files (RFC 9110 §8.4, §12.5.3): which codings the client accepts,
//! in our order of preference, and compressing a file's bytes once when `--compress` is on.
//!
//! Pre-compressed sidecars (`file.br`, `file.gz` next to `file`) need no work here beyond the
//! name: the server prefers them to compressing itself.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use smallvec::SmallVec;

use super::cache::is_textual;
use crate::http::accept;

/// The codings we serve, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    pub const ALL: [Coding; 2] = [Coding::Brotli, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The sidecar file's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gz",
        }
    }

    /// The coding's place in [`Coding::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Compresses `data` (quality chosen for text assets compressed once and served often).
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Coding::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                // Writing into a Vec cannot fail.
                let _ = encoder.write_all(data);
                encoder.finish().unwrap_or_default()
            }
            Coding::Brotli => {
                let mut out = Vec::new();
                {
                    let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 6, 22);
                    let _ = writer.write_all(data);
                }
                out
            }
        }
    }
}

/// The compressed copies of one file's bytes, one per coding, each made once on first demand
/// (on a helper thread: compressing 200 KB with brotli takes milliseconds) and then shared by
/// every response.
#[derive(Debug, Default)]
pub struct Compressed([OnceLock<Arc<[u8]>>; 2]);

impl Compressed {
    /// The copy for `coding`, if it was made.
    pub fn get(&self, coding: Coding) -> Option<&Arc<[u8]>> {
        self.0[coding.index()].get()
    }

    /// Makes the copy for `coding` from `bytes`, unless it exists; a second caller at the same
    /// time waits for the first one's copy instead of compressing again.
    pub fn make(&self, coding: Coding, bytes: &[u8]) -> &Arc<[u8]> {
        self.0[coding.index()].get_or_init(|| coding.compress(bytes).into())
    }
}

/// Codings in a client's order of preference: at most the ones we serve, held inline (a
/// browser's request for a cached file allocates nothing for them).
pub type Codings = SmallVec<[Coding; Coding::ALL.len()]>;

/// The codings `Accept-Encoding` allows (q > 0), most wanted first; ties go to our order.
/// No header means no coding (identity), which is always acceptable for us.
pub fn accepted(accept_encoding: Option<&[u8]>) -> Codings {
    let Some(value) = accept_encoding else {
        return Codings::new();
    };
    let mut wildcard = None;
    let mut explicit = [None; 2];
    for preference in accept::preferences(value) {
        // A malformed weight: ignore the element rather than guess whether it allows a coding.
        let Some(q) = preference.quality else {
            continue;
        };
        let name = preference.name;
        if name == b"*" {
            wildcard = Some(q);
        }
        for coding in Coding::ALL {
            let alias = coding == Coding::Gzip && name.eq_ignore_ascii_case(b"x-gzip");
            if name.eq_ignore_ascii_case(coding.token().as_bytes()) || alias {
                explicit[coding.index()] = Some(q);
            }
        }
    }
    let mut wanted: SmallVec<[(u16, Coding); Coding::ALL.len()]> = Coding::ALL
        .iter()
        .filter_map(|&coding| {
            let q = explicit[coding.index()].or(wildcard)?;
            (q > 0).then_some((q, coding))
        })
        .collect();
    // Stable: among equal weights our preference order (br, gzip) stays.
    wanted.sort_by_key(|&(q, _)| std::cmp::Reverse(q));
    wanted.into_iter().map(|(_, coding)| coding).collect()
}

/// Whether a file of this media type is worth compressing on the fly.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    // Text compresses well; so does WebAssembly, which is not text.
    is_textual(essence) || essence == "application/wasm"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn accept_encoding_weights_and_wildcards() {
        use Coding::{Brotli, Gzip};
        let cases: &[(&str, &[Coding])] = &[
            ("gzip, deflate, br", &[Brotli, Gzip]),
            ("gzip", &[Gzip]),
            ("br;q=0.5, gzip", &[Gzip, Brotli]),
            ("*", &[Brotli, Gzip]),
            ("*;q=0.1, gzip;q=0", &[Brotli]),
            ("br;q=0, gzip;q=0", &[]),
            ("identity", &[]),
            ("gzip;q=1.5, br", &[Brotli]),
            ("x-gzip", &[Gzip]),
            ("", &[]),
            // Names and the `q` key are case-insensitive; whitespace around elements is not
            // significant.
            ("GZIP, Br", &[Brotli, Gzip]),
            ("gzip;Q=0.5, br;q=0.4", &[Gzip, Brotli]),
            ("gzip ; q=0.5 , br ; q=0.9", &[Brotli, Gzip]),
            ("br;q= 0.1, gzip;q=0.5", &[Gzip, Brotli]),
            ("X-GZIP;q=0.5, br;q=0.4", &[Gzip, Brotli]),
            // Empty elements and unknown codings are skipped.
            (" , ,gzip,", &[Gzip]),
            ("deflate, compress", &[]),
            (";q=0.5", &[]),
            ("identity;q=0, gzip", &[Gzip]),
            // Other parameters are not weights; the first `q` parameter is the weight.
            ("br;level=1;q=0.2, gzip;q=0.3", &[Gzip, Brotli]),
            ("gzip;foo", &[Gzip]),
            ("br;q =0.1, gzip;q=0.5", &[Brotli, Gzip]),
            ("br;q=0;q=0.9, gzip", &[Gzip]),
            // A malformed weight drops its element, even if a later `q` would be valid.
            ("br;q=abc, gzip", &[Gzip]),
            ("br;q=, gzip", &[Gzip]),
            ("br;q=.5, gzip", &[Gzip]),
            ("br;q=0.5001, gzip", &[Gzip]),
            ("br;q=1.001, gzip", &[Gzip]),
            ("br;q=x;q=0.9, gzip", &[Gzip]),
            // Edges of the qvalue grammar.
            ("br;q=1., gzip;q=0.999", &[Brotli, Gzip]),
            ("br;q=1.000, gzip;q=0.", &[Brotli]),
            ("br;q=0.001", &[Brotli]),
            // The last explicit weight for a coding wins; explicit beats the wildcard.
            ("gzip;q=0.5, gzip", &[Gzip]),
            ("gzip, gzip;q=0", &[]),
            ("gzip, *;q=0", &[Gzip]),
            ("*;q=0.5, br", &[Brotli, Gzip]),
            ("*;q=0.5, *;q=0", &[]),
        ];
        for (header, want) in cases {
            assert_eq!(
                accepted(Some(header.as_bytes())).as_slice(),
                *want,
                "{header}"
            );
        }
        assert!(accepted(None).is_empty());
    }

    #[test]
    fn compressible_media_types() {
        let cases: &[(&str, bool)] = &[
            ("text/html; charset=utf-8", true),
            ("text/css", true),
            ("text/javascript; charset=utf-8", true),
            ("text/csv", true),
            (" text/plain ; charset=utf-8", true),
            ("application/javascript", true),
            ("application/json", true),
            ("application/xml", true),
            ("image/svg+xml; charset=utf-8", true),
            ("application/wasm", true),
            ("image/png", false),
            ("application/octet-stream", false),
            ("application/pdf", false),
            ("font/woff2", false),
        ];
        for (content_type, want) in cases {
            assert_eq!(is_compressible(content_type), *want, "{content_type}");
        }
    }

    #[test]
    fn compressed_bytes_decompress_to_the_original() {
        let text = "looplight ".repeat(200);
        let gz = Coding::Gzip.compress(text.as_bytes());
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        let br = Coding::Brotli.compress(text.as_bytes());
        let mut out = String::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        assert!(br.len() < text.len() / 10);
    }

    #[test]
    fn each_copy_is_made_once() {
        let compressed = Compressed::default();
        assert!(compressed.get(Coding::Gzip).is_none());
        let first = Arc::clone(compressed.make(Coding::Gzip, b"abcabcabc"));
        let again = compressed.make(Coding::Gzip, b"other bytes are ignored now");
        assert!(Arc::ptr_eq(&first, again));
        assert!(compressed.get(Coding::Brotli).is_none());
    }
}
