//! Weighted preference lists: the elements of `Accept` (RFC 9110 §12.5.1) and
//! `Accept-Encoding` (§12.5.3), each with its quality value (§12.4.2). This module only reads
//! the list; what to serve from it is the caller's decision.
//!
//! Reading a field value:
//! 1. Elements are separated by `,`; empty ones are skipped (§5.6.1).
//! 2. An element is a name (a media range, a content coding, `*`) followed by parameters, each
//!    after a `;`; whitespace around the name and each parameter is not significant.
//! 3. The weight is the first parameter named `q`, in any case (§12.4.2:
//!    `weight = OWS ";" OWS "q=" qvalue`); `q =` with a space is not a weight. An element
//!    without a weight weighs 1; a weight that is not a qvalue is reported as malformed, never
//!    guessed at.

/// `q=1`, the most an element can weigh and what it weighs without a `q`, in thousandths.
pub const FULL_QUALITY: u16 = 1000;

/// One element of a weighted list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preference<'a> {
    /// What the element names (`gzip`, `text/html`, `*/*`), trimmed and as sent: compare it
    /// ignoring ASCII case.
    pub name: &'a [u8],
    /// The weight in thousandths ([`FULL_QUALITY`] without a `q`), or `None` when the `q`
    /// parameter is not a qvalue.
    pub quality: Option<u16>,
}

/// The elements of a weighted list field value, in the order sent.
pub fn preferences(value: &[u8]) -> impl Iterator<Item = Preference<'_>> {
    value.split(|&b| b == b',').filter_map(|element| {
        let mut parts = element.split(|&b| b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        if name.is_empty() {
            return None;
        }
        let quality = parts.find_map(weight).unwrap_or(Some(FULL_QUALITY));
        Some(Preference { name, quality })
    })
}

/// `Some(qvalue)` when `parameter` is a weight (`q=…`), with `None` inside if the value is
/// not a qvalue; `None` for any other parameter.
fn weight(parameter: &[u8]) -> Option<Option<u16>> {
    let parameter = parameter.trim_ascii();
    let equals = parameter.iter().position(|&b| b == b'=')?;
    let (key, value) = (&parameter[..equals], &parameter[equals + 1..]);
    key.eq_ignore_ascii_case(b"q").then(|| qvalue(value))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (§12.4.2), in thousandths;
/// whitespace around it is allowed.
fn qvalue(value: &[u8]) -> Option<u16> {
    let value = value.trim_ascii();
    let (whole, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, &b""[..]),
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for position in 0..3 {
        thousandths = thousandths * 10 + fraction.get(position).map_or(0, |d| u16::from(d - b'0'));
    }
    match whole {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(FULL_QUALITY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field value and the elements read from it: (name, quality).
    type Case = (&'static str, &'static [(&'static str, Option<u16>)]);

    #[test]
    fn elements_with_their_weights() {
        let cases: &[Case] = &[
            ("gzip", &[("gzip", Some(1000))]),
            (
                "gzip, deflate;q=0.5, br;q=0",
                &[
                    ("gzip", Some(1000)),
                    ("deflate", Some(500)),
                    ("br", Some(0)),
                ],
            ),
            (
                "text/html,application/xhtml+xml,*/*;q=0.8",
                &[
                    ("text/html", Some(1000)),
                    ("application/xhtml+xml", Some(1000)),
                    ("*/*", Some(800)),
                ],
            ),
            // Whitespace around names and parameters; the key's case.
            (
                " gzip ; q=0.5 ,br",
                &[("gzip", Some(500)), ("br", Some(1000))],
            ),
            ("gzip;Q=0.25", &[("gzip", Some(250))]),
            ("gzip;q= 0.25 ", &[("gzip", Some(250))]),
            // Names are kept as sent.
            ("GZip", &[("GZip", Some(1000))]),
            // Empty elements are skipped, and so is an element with no name.
            ("", &[]),
            (" , ,gzip,", &[("gzip", Some(1000))]),
            (";q=0.5, br", &[("br", Some(1000))]),
            // Only `q` is a weight; `q =` is not; the first `q` decides.
            ("text/html;level=1;q=0.3", &[("text/html", Some(300))]),
            ("gzip;foo", &[("gzip", Some(1000))]),
            ("gzip;q =0.1", &[("gzip", Some(1000))]),
            ("gzip;q=0;q=0.9", &[("gzip", Some(0))]),
            // A malformed weight is reported, even if a later `q` is valid.
            ("gzip;q=abc", &[("gzip", None)]),
            ("gzip;q=", &[("gzip", None)]),
            ("gzip;q=x;q=0.9", &[("gzip", None)]),
            ("gzip;q=2, br", &[("gzip", None), ("br", Some(1000))]),
        ];
        for (value, want) in cases {
            let got: Vec<(&[u8], Option<u16>)> = preferences(value.as_bytes())
                .map(|preference| (preference.name, preference.quality))
                .collect();
            let want: Vec<(&[u8], Option<u16>)> = want
                .iter()
                .map(|&(name, quality)| (name.as_bytes(), quality))
                .collect();
            assert_eq!(got, want, "{value:?}");
        }
    }

    #[test]
    fn qvalues_in_thousandths() {
        let cases: &[(&str, Option<u16>)] = &[
            ("0", Some(0)),
            ("1", Some(1000)),
            ("0.5", Some(500)),
            ("0.05", Some(50)),
            ("0.123", Some(123)),
            ("0.", Some(0)),
            ("1.", Some(1000)),
            ("1.0", Some(1000)),
            ("1.000", Some(1000)),
            (" 0.5 ", Some(500)),
            ("0.1234", None),
            ("1.001", None),
            ("1.5", None),
            ("2", None),
            ("", None),
            (".", None),
            (".5", None),
            ("00.5", None),
            ("-0", None),
            ("+1", None),
            ("0.5x", None),
            ("0.-1", None),
            ("0.0.1", None),
        ];
        for (value, want) in cases {
            assert_eq!(qvalue(value.as_bytes()), *want, "{value:?}");
        }
    }
}
