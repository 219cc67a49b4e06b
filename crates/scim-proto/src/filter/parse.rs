//! Lexer and recursive-descent parser for filters and PATCH paths.
//!
//! Positions are 0-based character offsets. The lexer works on a vector of `(byte, char)`
//! pairs and only ever slices the input at byte offsets it got from `char_indices`, through
//! `str::get`, so no input can make it panic.

use std::fmt;

use super::{
    AttrPath, CompValue, CompareOp, Filter, PatchPath, SCIM_FILTER_MAX_DEPTH, SCIM_FILTER_MAX_LEN,
    SCIM_FILTER_MAX_TERMS,
};
use crate::error::ScimError;

/// The longest excerpt of the input quoted in an error detail, in characters.
const MAX_EXCERPT: usize = 40;

const OPERATORS_HINT: &str = "an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)";

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A decoded string literal.
    Str(String),
    /// A maximal run of characters other than whitespace, `()[]` and `"`: an attribute path,
    /// keyword, operator, number, `true`, `false` or `null`.
    Word,
    Eof,
    /// A lexical error; always the last token, so the parser reports errors left to right.
    Bad(String),
}

#[derive(Debug, Clone)]
struct Token<'a> {
    tok: Tok,
    /// 0-based character offset.
    pos: usize,
    /// The source text of the token.
    text: &'a str,
}

impl Token<'_> {
    fn word(&self) -> Option<&str> {
        (self.tok == Tok::Word).then_some(self.text)
    }

    fn is_keyword(&self, kw: &str) -> bool {
        self.word().is_some_and(|w| w.eq_ignore_ascii_case(kw))
    }
}

/// How a token is named in "found ..." parts of error details.
struct Found<'t, 'a>(&'t Token<'a>);

impl fmt::Display for Found<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.tok {
            Tok::Eof => f.write_str("end of input"),
            // A string literal already carries its quotes.
            Tok::Str(_) => f.write_str(&excerpt(self.0.text)),
            _ => write!(f, "\"{}\"", excerpt(self.0.text)),
        }
    }
}

fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_EXCERPT).collect();
    if s.chars().nth(MAX_EXCERPT).is_some() {
        out.push('…');
    }
    out
}

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            src,
            chars: src.char_indices().collect(),
            i: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|&(_, c)| c)
    }

    /// Byte offset of character `i` (the input length at the end).
    fn byte(&self, i: usize) -> usize {
        self.chars.get(i).map_or(self.src.len(), |&(b, _)| b)
    }

    fn text(&self, from: usize, to: usize) -> &'a str {
        self.src.get(self.byte(from)..self.byte(to)).unwrap_or("")
    }

    fn tokens(mut self) -> Vec<Token<'a>> {
        let mut out = Vec::new();
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.i += 1;
            }
            let start = self.i;
            let Some(c) = self.peek() else {
                out.push(Token {
                    tok: Tok::Eof,
                    pos: start,
                    text: "",
                });
                return out;
            };
            let tok = match c {
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                '"' => match self.string() {
                    Ok(s) => Tok::Str(s),
                    Err((pos, detail)) => {
                        out.push(Token {
                            tok: Tok::Bad(detail),
                            pos,
                            text: self.text(start, self.i),
                        });
                        return out;
                    }
                },
                _ => {
                    while self
                        .peek()
                        .is_some_and(|c| !c.is_whitespace() && !"()[]\"".contains(c))
                    {
                        self.i += 1;
                    }
                    Tok::Word
                }
            };
            if matches!(
                tok,
                Tok::LParen | Tok::RParen | Tok::LBracket | Tok::RBracket
            ) {
                self.i += 1;
            }
            out.push(Token {
                tok,
                pos: start,
                text: self.text(start, self.i),
            });
        }
    }

    /// Reads a JSON string literal starting at the opening quote; on error returns the position
    /// of the problem and a description.
    fn string(&mut self) -> Result<String, (usize, String)> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let at = self.i;
            let Some(c) = self.peek() else {
                return Err((
                    start,
                    "unterminated string: expected a closing '\"'".to_owned(),
                ));
            };
            self.i += 1;
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err((
                            start,
                            "unterminated string: expected a closing '\"'".to_owned(),
                        ));
                    };
                    self.i += 1;
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => out.push(self.unicode_escape(at)?),
                        other => {
                            return Err((
                                at,
                                format!(
                                    "invalid escape \"\\{other}\" in string; \
                                     valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX"
                                ),
                            ))
                        }
                    }
                }
                c if u32::from(c) < 0x20 => {
                    return Err((
                        at,
                        format!(
                            "control character U+{:04X} in string must be escaped",
                            u32::from(c)
                        ),
                    ))
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self, esc_at: usize) -> Result<u32, (usize, String)> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self.peek().and_then(|c| c.to_digit(16)).ok_or_else(|| {
                (
                    esc_at,
                    format!(
                        "invalid unicode escape \"{}\": expected four hex digits after \\u",
                        excerpt(self.text(esc_at, (esc_at + 6).min(self.chars.len())))
                    ),
                )
            })?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }

    /// Decodes the `XXXX` of `\uXXXX` (the `\u` already consumed), joining surrogate pairs.
    fn unicode_escape(&mut self, esc_at: usize) -> Result<char, (usize, String)> {
        let hi = self.hex4(esc_at)?;
        let lone = || {
            (
                esc_at,
                format!("invalid unicode escape: lone surrogate \\u{hi:04x}"),
            )
        };
        if (0xDC00..0xE000).contains(&hi) {
            return Err(lone());
        }
        if (0xD800..0xDC00).contains(&hi) {
            if self.peek() != Some('\\') || self.chars.get(self.i + 1).map(|&(_, c)| c) != Some('u')
            {
                return Err(lone());
            }
            let lo_at = self.i;
            self.i += 2;
            let lo = self.hex4(lo_at)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(lone());
            }
            let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return char::from_u32(code).ok_or_else(lone);
        }
        char::from_u32(hi).ok_or_else(lone)
    }
}

/// Which error kind and wording the parser reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Filter,
    Path,
}

static EOF: Token<'static> = Token {
    tok: Tok::Eof,
    pos: 0,
    text: "",
};

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    i: usize,
    mode: Mode,
    depth: usize,
    terms: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str, mode: Mode) -> Result<Self, ScimError> {
        let p = Self {
            toks: Vec::new(),
            i: 0,
            mode,
            depth: 0,
            terms: 0,
        };
        if input.len() > SCIM_FILTER_MAX_LEN {
            return Err(p.error(
                0,
                format_args!(
                    "input is {} bytes long; at most {SCIM_FILTER_MAX_LEN} are accepted",
                    input.len()
                ),
            ));
        }
        Ok(Self {
            toks: Lexer::new(input).tokens(),
            ..p
        })
    }

    fn error(&self, pos: usize, msg: impl fmt::Display) -> ScimError {
        match self.mode {
            Mode::Filter => {
                ScimError::invalid_filter(format!("invalid filter at character {pos}: {msg}"))
            }
            Mode::Path => {
                ScimError::invalid_path(format!("invalid path at character {pos}: {msg}"))
            }
        }
    }

    /// The current token; a lexical error surfaces here, when the parser reaches it.
    fn peek(&self) -> Result<&Token<'a>, ScimError> {
        let t = self.toks.get(self.i).unwrap_or(&EOF);
        match &t.tok {
            Tok::Bad(detail) => Err(self.error(t.pos, detail)),
            _ => Ok(t),
        }
    }

    fn bump(&mut self) {
        self.i += 1;
    }

    fn enter(&mut self, pos: usize) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > SCIM_FILTER_MAX_DEPTH {
            return Err(self.error(
                pos,
                format_args!(
                    "nested too deeply: at most {SCIM_FILTER_MAX_DEPTH} levels of parentheses, \
                     \"not\" and \"[…]\" are allowed"
                ),
            ));
        }
        Ok(())
    }

    /// `filter = term *("or" term)`
    fn or_expr(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        let mut left = self.and_expr(in_brackets)?;
        while self.peek()?.is_keyword("or") {
            self.bump();
            let right = self.and_expr(in_brackets)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `term = factor *("and" factor)`
    fn and_expr(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        let mut left = self.factor(in_brackets)?;
        while self.peek()?.is_keyword("and") {
            self.bump();
            let right = self.factor(in_brackets)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `factor = "not" "(" filter ")" / "(" filter ")" / attrExp / valuePath`
    fn factor(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        let t = self.peek()?.clone();
        match &t.tok {
            Tok::LParen => {
                self.enter(t.pos)?;
                self.bump();
                let inner = self.or_expr(in_brackets)?;
                self.close(&t, Tok::RParen, ")")?;
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Word if t.is_keyword("not") => {
                self.bump();
                let open = self.peek()?.clone();
                if open.tok != Tok::LParen {
                    return Err(self.error(
                        open.pos,
                        format_args!(
                            "expected \"(\" after \"not\" (write not (filter)), found {}",
                            Found(&open)
                        ),
                    ));
                }
                self.enter(open.pos)?;
                self.bump();
                let inner = self.or_expr(in_brackets)?;
                self.close(&open, Tok::RParen, ")")?;
                self.depth -= 1;
                Ok(Filter::Not(Box::new(inner)))
            }
            Tok::Word => self.attr_exp(&t, in_brackets),
            _ => Err(self.error(
                t.pos,
                format_args!(
                    "expected an attribute path, \"(\" or \"not\", found {}",
                    Found(&t)
                ),
            )),
        }
    }

    /// Expects the token closing `open`.
    fn close(&mut self, open: &Token<'a>, want: Tok, text: &str) -> Result<(), ScimError> {
        let t = self.peek()?;
        if t.tok == want {
            self.bump();
            return Ok(());
        }
        Err(self.error(
            t.pos,
            format_args!(
                "expected \"and\", \"or\" or \"{text}\" to close the \"{}\" at character {}, \
                 found {}",
                open.text,
                open.pos,
                Found(t)
            ),
        ))
    }

    fn path(&self, t: &Token<'a>) -> Result<AttrPath, ScimError> {
        parse_attr_path(t.text).map_err(|m| self.error(t.pos, m))
    }

    /// `attrPath "pr" / attrPath compareOp compValue / attrPath "[" valFilter "]"`
    fn attr_exp(&mut self, t: &Token<'a>, in_brackets: bool) -> Result<Filter, ScimError> {
        let path = self.path(t)?;
        self.terms += 1;
        if self.terms > SCIM_FILTER_MAX_TERMS {
            return Err(self.error(
                t.pos,
                format_args!(
                    "too many expressions: at most {SCIM_FILTER_MAX_TERMS} comparisons are allowed"
                ),
            ));
        }
        self.bump();
        let op = self.peek()?.clone();
        match &op.tok {
            Tok::LBracket => {
                if in_brackets {
                    return Err(self.error(
                        op.pos,
                        "value filters cannot be nested: \"[\" inside \"[…]\"",
                    ));
                }
                self.check_value_path_attr(&path, &op)?;
                self.enter(op.pos)?;
                self.bump();
                let inner = self.or_expr(true)?;
                self.close(&op, Tok::RBracket, "]")?;
                self.depth -= 1;
                Ok(Filter::ValuePath(path, Box::new(inner)))
            }
            Tok::Word if op.is_keyword("pr") => {
                self.bump();
                let next = self.peek()?;
                if is_value_token(next) {
                    return Err(self.error(
                        next.pos,
                        format_args!(
                            "unexpected value {} after \"{}\": pr takes no value",
                            Found(next),
                            op.text
                        ),
                    ));
                }
                Ok(Filter::Present(path))
            }
            Tok::Word => match CompareOp::from_keyword(op.text) {
                Some(cop) => {
                    self.bump();
                    let value = self.value(&op)?;
                    Ok(Filter::Compare(path, cop, value))
                }
                None => Err(self.expected_operator(t, &op)),
            },
            _ => Err(self.expected_operator(t, &op)),
        }
    }

    fn expected_operator(&self, attr: &Token<'a>, found: &Token<'a>) -> ScimError {
        self.error(
            found.pos,
            format_args!(
                "expected {OPERATORS_HINT} after \"{}\", found {}",
                excerpt(attr.text),
                Found(found)
            ),
        )
    }

    fn check_value_path_attr(&self, path: &AttrPath, bracket: &Token<'a>) -> Result<(), ScimError> {
        if path.sub_attr.is_some() {
            return Err(self.error(
                bracket.pos,
                format_args!(
                    "a value filter \"[…]\" must follow a complex attribute, not the \
                     sub-attribute path \"{path}\""
                ),
            ));
        }
        Ok(())
    }

    /// `compValue = false / null / true / number / string`
    fn value(&mut self, op: &Token<'a>) -> Result<CompValue, ScimError> {
        let t = self.peek()?.clone();
        let v = match &t.tok {
            Tok::Str(s) => CompValue::Str(s.clone()),
            Tok::Word if t.is_keyword("true") => CompValue::Bool(true),
            Tok::Word if t.is_keyword("false") => CompValue::Bool(false),
            Tok::Word if t.is_keyword("null") => CompValue::Null,
            Tok::Word if looks_numeric(t.text) => {
                CompValue::Number(parse_number(t.text).map_err(|m| self.error(t.pos, m))?)
            }
            Tok::Word => {
                return Err(self.error(
                    t.pos,
                    format_args!(
                        "expected a value (a \"quoted string\", number, true, false or null) \
                         after \"{}\", found {}; strings must be in double quotes",
                        op.text,
                        Found(&t)
                    ),
                ))
            }
            _ => {
                return Err(self.error(
                    t.pos,
                    format_args!(
                        "expected a value (a \"quoted string\", number, true, false or null) \
                         after \"{}\", found {}",
                        op.text,
                        Found(&t)
                    ),
                ))
            }
        };
        self.bump();
        Ok(v)
    }

    /// Reports whatever follows a complete expression at the top level.
    fn expect_end(&self, what: &str) -> Result<(), ScimError> {
        let t = self.peek()?;
        match t.tok {
            Tok::Eof => Ok(()),
            Tok::RParen => {
                Err(self.error(t.pos, "unbalanced parentheses: \")\" has no matching \"(\""))
            }
            Tok::RBracket => {
                Err(self.error(t.pos, "unbalanced brackets: \"]\" has no matching \"[\""))
            }
            _ => Err(self.error(
                t.pos,
                format_args!("expected {what} or end of input, found {}", Found(t)),
            )),
        }
    }
}

/// Whether `t` looks like a comparison value (used to explain `title pr "x"`).
fn is_value_token(t: &Token<'_>) -> bool {
    match t.tok {
        Tok::Str(_) => true,
        Tok::Word => {
            ["true", "false", "null"]
                .iter()
                .any(|k| t.text.eq_ignore_ascii_case(k))
                || looks_numeric(t.text)
        }
        _ => false,
    }
}

/// Whether a word is meant as a number (and so is reported as an invalid one if it is not).
fn looks_numeric(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'))
}

/// Parses a JSON number (RFC 8259 §6 grammar). Integers that fit `i64`/`u64` stay integers;
/// everything else becomes an `f64`, parsed by the standard library so that the value is
/// correctly rounded and `Display` round-trips it.
fn parse_number(s: &str) -> Result<serde_json::Number, String> {
    let bad = || {
        format!(
            "invalid number \"{}\": expected a JSON number such as 42, -7 or 1.5e3",
            excerpt(s)
        )
    };
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && b.get(int_start) == Some(&b'0')) {
        return Err(bad());
    }
    let mut integer = true;
    if b.get(i) == Some(&b'.') {
        i += 1;
        integer = false;
        if digits(&mut i) == 0 {
            return Err(bad());
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        integer = false;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return Err(bad());
        }
    }
    if i != b.len() {
        return Err(bad());
    }
    if integer {
        if let Ok(v) = s.parse::<u64>() {
            return Ok(v.into());
        }
        if let Ok(v) = s.parse::<i64>() {
            return Ok(v.into());
        }
    }
    s.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .ok_or_else(|| format!("number \"{}\" is out of range", excerpt(s)))
}

/// `ATTRNAME = ALPHA *(nameChar)`, plus `$ref` (RFC 7643 §2.1 names sub-attributes `$ref`).
fn is_attr_name(s: &str) -> bool {
    if s.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic())
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_name(name: &str, path: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!(
            "invalid attribute path \"{}\": expected {what}",
            excerpt(path)
        ));
    }
    if !is_attr_name(name) {
        return Err(format!(
            "invalid attribute path \"{}\": \"{}\" is not a valid attribute name (a letter \
             followed by letters, digits, \"-\" or \"_\")",
            excerpt(path),
            excerpt(name)
        ));
    }
    Ok(())
}

/// `attrPath = [URI ":"] ATTRNAME ["." subAttr]`. The URN is everything before the last `:`
/// because URNs contain both `:` and `.` (`urn:…:enterprise:2.0:User:manager.value`).
pub(super) fn parse_attr_path(word: &str) -> Result<AttrPath, String> {
    let is_urn = word
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    let (urn, rest) = if is_urn {
        match word.rsplit_once(':') {
            Some((urn, rest)) if urn.len() > 4 && urn.chars().all(|c| c.is_ascii_graphic()) => {
                (Some(urn), rest)
            }
            _ => {
                return Err(format!(
                    "invalid attribute path \"{}\": expected a schema URN followed by \
                     \":\" and an attribute name",
                    excerpt(word)
                ))
            }
        }
    } else if word.contains(':') {
        return Err(format!(
            "invalid attribute path \"{}\": a schema prefix must be a URN starting with \
             \"urn:\"",
            excerpt(word)
        ));
    } else {
        (None, word)
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    check_name(attr, word, "an attribute name")?;
    if let Some(sub) = sub {
        if sub.contains('.') {
            return Err(format!(
                "invalid attribute path \"{}\": at most one sub-attribute may follow the \
                 attribute name",
                excerpt(word)
            ));
        }
        check_name(sub, word, "a sub-attribute name after \".\"")?;
    }
    Ok(AttrPath {
        urn: urn.map(str::to_owned),
        attr: attr.to_owned(),
        sub_attr: sub.map(str::to_owned),
    })
}

pub(super) fn parse_filter(input: &str) -> Result<Filter, ScimError> {
    let mut p = Parser::new(input, Mode::Filter)?;
    let first = p.peek()?;
    if first.tok == Tok::Eof {
        return Err(p.error(
            first.pos,
            "empty filter: expected an expression such as userName eq \"bjensen\"",
        ));
    }
    let f = p.or_expr(false)?;
    p.expect_end("\"and\", \"or\"")?;
    Ok(f)
}

pub(super) fn parse_path(input: &str) -> Result<PatchPath, ScimError> {
    let mut p = Parser::new(input, Mode::Path)?;
    let first = p.peek()?.clone();
    let attr = match first.tok {
        Tok::Eof => {
            return Err(p.error(
                first.pos,
                "empty path: expected an attribute path such as name.givenName or \
                 emails[type eq \"work\"].value",
            ))
        }
        Tok::Word => p.path(&first)?,
        _ => {
            return Err(p.error(
                first.pos,
                format_args!("expected an attribute path, found {}", Found(&first)),
            ))
        }
    };
    p.bump();
    let open = p.peek()?.clone();
    if open.tok != Tok::LBracket {
        if open.tok == Tok::Eof {
            return Ok(PatchPath {
                attr,
                filter: None,
                sub_attr: None,
            });
        }
        return Err(p.error(
            open.pos,
            format_args!(
                "expected \"[\" or end of input after \"{}\", found {}",
                excerpt(first.text),
                Found(&open)
            ),
        ));
    }
    p.check_value_path_attr(&attr, &open)?;
    p.enter(open.pos)?;
    p.bump();
    let filter = p.or_expr(true)?;
    let close = p.peek()?.clone();
    p.close(&open, Tok::RBracket, "]")?;
    let next = p.peek()?.clone();
    let sub_attr = match next.tok {
        Tok::Eof => None,
        // `.value` must follow `]` directly: the lexer reads it as one word.
        Tok::Word if next.text.starts_with('.') && next.pos == close.pos + 1 => {
            let sub = next.text.get(1..).unwrap_or("");
            if sub.contains('.') {
                return Err(p.error(next.pos, "at most one sub-attribute may follow \"]\""));
            }
            check_name(sub, next.text, "a sub-attribute name after \".\"")
                .map_err(|m| p.error(next.pos, m))?;
            p.bump();
            let end = p.peek()?;
            if end.tok != Tok::Eof {
                return Err(p.error(
                    end.pos,
                    format_args!(
                        "expected end of input after \"{}\", found {}",
                        excerpt(next.text),
                        Found(end)
                    ),
                ));
            }
            Some(sub.to_owned())
        }
        Tok::Word if next.text.starts_with('.') => {
            return Err(p.error(
                next.pos,
                format_args!(
                    "no space is allowed between \"]\" and \"{}\"",
                    excerpt(next.text)
                ),
            ))
        }
        _ => {
            return Err(p.error(
                next.pos,
                format_args!(
                    "expected \".\" and a sub-attribute name, or end of input, after \"]\", \
                     found {}",
                    Found(&next)
                ),
            ))
        }
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub_attr,
    })
}
