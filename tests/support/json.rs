//! A small, strict JSON (RFC 8259) parser and encoder for the API tests.
//!
//! Deliberately independent of the server's own JSON library: responses are
//! parsed here with the RFC 8259 grammar (no trailing commas, no comments, no
//! trailing bytes, valid UTF-8, no lone surrogates, no duplicate object
//! member names), so a server that emits invalid JSON fails the test instead
//! of being accepted by a lenient parser.

use std::fmt::Write as _;

/// A parsed JSON value. Numbers keep their source text (so `1` and `1.0`
/// stay distinguishable: ids and totals must be integers); objects keep
/// member order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

/// Nesting depth at which our own parser gives up (responses never nest
/// deeply; this only protects the test process).
const MAX_DEPTH: usize = 256;

impl Json {
    pub fn parse(bytes: &[u8]) -> Result<Json, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| format!("JSON text is not UTF-8 (RFC 8259 §8.1): {e}"))?;
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        p.ws();
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!(
                "trailing bytes after the JSON value at offset {}",
                p.i
            ));
        }
        Ok(v)
    }

    /// Short type name for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Num(_) => "number",
            Json::Str(_) => "string",
            Json::Arr(_) => "array",
            Json::Obj(_) => "object",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The member `key` of an object; panics (with the whole value) if
    /// `self` is not an object or has no such member.
    pub fn field(&self, key: &str) -> &Json {
        self.get(key)
            .unwrap_or_else(|| panic!("JSON has no member {key:?}: {self}"))
    }

    /// Member names of an object, sorted.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(members) => {
                let mut k: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
                k.sort_unstable();
                k
            }
            _ => panic!("expected a JSON object, got {self}"),
        }
    }

    /// Asserts `self` is an object with exactly these member names.
    pub fn assert_keys(&self, expected: &[&str]) {
        let mut want = expected.to_vec();
        want.sort_unstable();
        assert_eq!(self.keys(), want, "member names of {self}");
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string value; panics otherwise.
    pub fn str(&self) -> &str {
        self.as_str()
            .unwrap_or_else(|| panic!("expected a JSON string, got {} {self}", self.kind()))
    }

    /// An integer number (no fraction, no exponent); panics otherwise.
    pub fn int(&self) -> i64 {
        match self {
            Json::Num(n) if !n.contains(['.', 'e', 'E']) => n
                .parse()
                .unwrap_or_else(|_| panic!("integer out of range: {n}")),
            _ => panic!("expected a JSON integer, got {} {self}", self.kind()),
        }
    }

    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(items) => items,
            _ => panic!("expected a JSON array, got {} {self}", self.kind()),
        }
    }
}

/// Serializes compactly (used in failure messages and to build bodies).
impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Num(n) => f.write_str(n),
            Json::Str(s) => f.write_str(&js(s)),
            Json::Arr(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Json::Obj(members) => {
                f.write_str("{")?;
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{v}", js(k))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// `s` as a JSON string literal (RFC 8259 §7), quotes included. Control
/// characters are escaped; everything else (including emoji) is sent as
/// raw UTF-8.
pub fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object from (name, raw JSON text) pairs, in order:
/// `json_obj(&[("title", &js("hi")), ("body", "42")])`.
pub fn json_obj(members: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&js(k));
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err<T>(&self, what: &str) -> Result<T, String> {
        let end = (self.i + 40).min(self.s.len());
        Err(format!(
            "invalid JSON at offset {}: {what} (near {:?})",
            self.i,
            String::from_utf8_lossy(&self.s[self.i.min(end)..end])
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            self.err("bad literal")
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek() {
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.err("unexpected character"),
            None => self.err("unexpected end"),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Json, String>) -> Result<Json, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<Json, String> {
        self.i += 1; // {
        let mut members: Vec<(String, Json)> = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Obj(members));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return self.err("expected a member name");
            }
            let k = self.string()?;
            if members.iter().any(|(m, _)| *m == k) {
                return self.err(&format!("duplicate member name {k:?}"));
            }
            self.ws();
            if self.peek() != Some(b':') {
                return self.err("expected ':'");
            }
            self.i += 1;
            self.ws();
            let v = self.value()?;
            members.push((k, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Obj(members));
                }
                _ => return self.err("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.i += 1; // [
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                _ => return self.err("expected ',' or ']'"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return self.err("short \\u escape");
        };
        let h = std::str::from_utf8(h).map_err(|_| "bad \\u escape".to_string())?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.err("bad \\u escape");
        }
        self.i += 4;
        Ok(u32::from_str_radix(h, 16).unwrap())
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // "
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // The input is valid UTF-8 and we stopped at an ASCII byte.
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).unwrap());
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let e = self.peek();
                    self.i += 1;
                    match e {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return self.err("lone high surrogate");
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return self.err("bad low surrogate");
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return self.err("lone low surrogate");
                            } else {
                                hi
                            };
                            out.push(char::from_u32(cp).unwrap());
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                Some(_) => return self.err("unescaped control character in string"),
                None => return self.err("unterminated string"),
            }
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return self.err("bad number"),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.err("bad fraction");
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.err("bad exponent");
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        Ok(Json::Num(
            std::str::from_utf8(&self.s[start..self.i])
                .unwrap()
                .to_string(),
        ))
    }
}

#[test]
fn json_helper_parses_and_rejects_strictly() {
    let v = Json::parse(br#" {"a": [1, -2.5e3, "x\u00e9\ud83d\ude00\n", true, null], "b": {}} "#)
        .unwrap();
    assert_eq!(v.field("a").arr()[0].int(), 1);
    assert_eq!(v.field("a").arr()[2].str(), "x\u{e9}\u{1F600}\n");
    assert_eq!(v.keys(), ["a", "b"]);
    for bad in [
        &b"{"[..],
        b"{\"a\":1,}",
        b"[1,]",
        b"{'a':1}",
        b"01",
        b"1.",
        b"\"\\ud800\"",
        b"\"a\x01\"",
        b"{\"a\":1,\"a\":2}",
        b"{} x",
        b"\"\xff\"",
        b"",
    ] {
        assert!(
            Json::parse(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let s = "q\"\\\n\u{1}\u{1F600}";
    assert_eq!(Json::parse(js(s).as_bytes()).unwrap().str(), s);
}
