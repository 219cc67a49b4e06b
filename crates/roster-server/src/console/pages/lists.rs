//! What the console's lists share: the sort select, totals ("1,234 users"), the pager with
//! Previous and Next (keyset cursors both ways: `?cursor=` is after a row, `?before=` before
//! one), and the streamed CSV export (`…/users.csv`, `…/groups.csv`, `…/log.csv`) with
//! spreadsheet formula injection neutralised.

use std::future::Future;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use roster_store::app::AppSort;

use super::super::view::{self, Opt, Pager};
use super::{param, Params};

/// The sort select's options: `(value, label)`; the empty value is name A–Z.
pub const SORTS: [(&str, &str); 6] = [
    ("", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("-modified", "Last changed first"),
    ("modified", "Last changed last"),
];

/// A list's order from its `sort` parameter: the order, descending, and the value to keep in
/// links (empty for the default, name A–Z).
pub fn sort_of(p: &Params) -> (AppSort, bool, &'static str) {
    let s = param(p, "sort").unwrap_or("");
    let (value, _) = SORTS
        .iter()
        .find(|(v, _)| *v == s)
        .copied()
        .unwrap_or(SORTS[0]);
    let desc = value.starts_with('-');
    let sort = match value.trim_start_matches('-') {
        "created" => AppSort::Created,
        "modified" => AppSort::LastModified,
        _ => AppSort::Name,
    };
    (sort, desc, value)
}

/// The sort select's options, `current` selected.
#[must_use]
pub fn sort_options(current: &str) -> Vec<Opt> {
    view::options(&SORTS, current)
}

/// `1,234` (thousands separated by commas).
#[must_use]
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "1 user", "1,234 users".
#[must_use]
pub fn total(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// The pager of a list read with keyset cursors both ways. `link(&[(k, v)])` is the list's
/// address with its filters and these extra pairs.
pub fn pager(
    link: impl Fn(&[(&str, &str)]) -> String,
    at_start: bool,
    prev: Option<&str>,
    next: Option<&str>,
    summary: String,
) -> Pager {
    Pager {
        first: (!at_start).then(|| link(&[])),
        prev: prev.map(|c| link(&[("before", c)])),
        next: next.map(|c| link(&[("cursor", c)])),
        next_label: "Next page",
        summary,
    }
}

/// A CSV cell: a text a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return) gets a leading `'`; a cell with a comma, quote or line
/// break is quoted, its quotes doubled.
#[must_use]
pub fn csv_cell(s: &str) -> String {
    let neutral = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// One CSV line (CRLF-terminated, as RFC 4180 writes them).
#[must_use]
pub fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// Rows fetched per store call while a CSV export streams.
pub const EXPORT_BATCH: u64 = 500;

/// A streamed CSV download named `filename`: the header line, then the lines of each batch
/// `fetch(cursor)` answers (`(lines, next cursor)`), fetched only as the client reads. A
/// store failure mid-way ends the body with an error (the client sees a broken download,
/// never a truncated file that looks complete).
pub fn csv_response<F, Fut>(filename: &str, header_line: String, fetch: F) -> Response
where
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Vec<String>, Option<String>), String>> + Send + 'static,
{
    enum State {
        Header(String),
        More(Option<String>),
        Done,
    }
    let stream = futures::stream::unfold(
        (State::Header(header_line), fetch),
        |(state, fetch)| async move {
            match state {
                State::Header(h) => {
                    Some((Ok::<String, std::io::Error>(h), (State::More(None), fetch)))
                }
                State::More(cursor) => match fetch(cursor).await {
                    Ok((lines, next)) => {
                        let state = match next {
                            Some(c) => State::More(Some(c)),
                            None => State::Done,
                        };
                        Some((Ok(lines.concat()), (state, fetch)))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "console: CSV export failed");
                        Some((Err(std::io::Error::other(e)), (State::Done, fetch)))
                    }
                },
                State::Done => None,
            }
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("ann"), "ann");
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=a,b"), "\"'=a,b\"");
        assert_eq!(csv_line(&["a", "b c"]), "a,b c\r\n");
    }

    #[test]
    fn totals_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(total(1, "user"), "1 user");
        assert_eq!(total(1234, "user"), "1,234 users");
    }
}
