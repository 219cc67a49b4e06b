//! Filter rule [`super::FILTER_VALUE_PATH_SUBATTR`], applied to the filter's text because the
//! strict grammar (RFC 7644 §3.4.2.2) cannot even parse the deviation: a value path may not be
//! followed by anything but `and`, `or`, `)` or the end.
//!
//! - `emails[type eq "work"].value eq "x"` → `emails[type eq "work" and value eq "x"]`
//!   (Entra's lookup when the matching attribute is the work email; also what Microsoft's
//!   SCIM validator sends).
//! - `emails[type eq "work"] eq "x"` → `emails[type eq "work" and value eq "x"]` (the form in
//!   Microsoft's own tutorial): a comparison on a complex attribute compares its `value`.
//!
//! Both mean "some element satisfies the bracket and the comparison", which is exactly the
//! rewritten value path. An inner filter containing `or` is parenthesised so that `and` still
//! applies to all of it. The scan honours string literals, so a `]` inside `"..."` is text.

/// The comparison operators of RFC 7644 §3.4.2.2, plus `pr`.
const OPS: [&str; 10] = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"];

/// Rewrites every `attr[f].sub op value` / `attr[f] op value` in `text`; `None` when there is
/// none. The caller checks that the result parses.
pub(super) fn rewrite_value_path_subattr(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut copied = 0;
    let mut open: Option<usize> = None;
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'"') => i = skip_string(bytes, i),
            Some(b'[') => {
                open = Some(i);
                i += 1;
            }
            Some(b']') => {
                let Some(start) = open.take() else {
                    i += 1;
                    continue;
                };
                match trailing_comparison(text, i + 1) {
                    Some((sub, op, value, end)) => {
                        let inner = text.get(start + 1..i).unwrap_or("");
                        out.push_str(text.get(copied..=start).unwrap_or(""));
                        if has_top_level_or(inner) {
                            out.push('(');
                            out.push_str(inner.trim());
                            out.push(')');
                        } else {
                            out.push_str(inner.trim());
                        }
                        out.push_str(" and ");
                        out.push_str(sub);
                        out.push(' ');
                        out.push_str(op);
                        if let Some(v) = value {
                            out.push(' ');
                            out.push_str(v);
                        }
                        out.push(']');
                        copied = end;
                        changed = true;
                        i = end;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    if !changed {
        return None;
    }
    out.push_str(text.get(copied..).unwrap_or(""));
    Some(out)
}

/// The index just past the string literal starting at `start` (a `"`), honouring `\`
/// escapes; the end of the text when it is unterminated.
pub(super) fn skip_string(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'$'
}

/// After a `]` at `pos`: `.sub op value`, `.sub pr`, ` op value` or ` pr`. Returns the
/// sub-attribute (`value` when none is named), the operator, the value text, and the index
/// just past what was consumed.
fn trailing_comparison(text: &str, pos: usize) -> Option<(&str, &str, Option<&str>, usize)> {
    let bytes = text.as_bytes();
    let mut i = pos;
    let sub = if bytes.get(i) == Some(&b'.') {
        let s = i + 1;
        i = s;
        while bytes.get(i).copied().is_some_and(is_name_byte) {
            i += 1;
        }
        if i == s {
            return None;
        }
        text.get(s..i)?
    } else {
        "value"
    };
    let ws = i;
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if i == ws {
        return None;
    }
    let op_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_alphabetic) {
        i += 1;
    }
    let op = text.get(op_start..i)?;
    if !OPS.iter().any(|o| o.eq_ignore_ascii_case(op)) {
        return None;
    }
    if op.eq_ignore_ascii_case("pr") {
        return Some((sub, op, None, i));
    }
    let ws = i;
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if i == ws {
        return None;
    }
    let v_start = i;
    if bytes.get(i) == Some(&b'"') {
        i = skip_string(bytes, i);
    } else {
        while bytes
            .get(i)
            .is_some_and(|b| !b.is_ascii_whitespace() && *b != b')' && *b != b']')
        {
            i += 1;
        }
    }
    if i == v_start {
        return None;
    }
    Some((sub, op, Some(text.get(v_start..i)?), i))
}

/// Whether `inner` has an `or` outside string literals (at any parenthesis depth: wrapping
/// a filter that is already parenthesised is harmless).
fn has_top_level_or(inner: &str) -> bool {
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'"') => i = skip_string(bytes, i),
            Some(b) if b.is_ascii_alphabetic() => {
                let s = i;
                while bytes.get(i).copied().is_some_and(is_name_byte) {
                    i += 1;
                }
                if inner
                    .get(s..i)
                    .is_some_and(|w| w.eq_ignore_ascii_case("or"))
                {
                    return true;
                }
            }
            _ => i += 1,
        }
    }
    false
}
