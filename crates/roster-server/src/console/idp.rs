//! Per-identity-provider setup steps, taken from `docs/idp/<idp>.md` at compile time (the
//! "Connect … to Roster" section) so the console and the docs never disagree.
//!
//! The docs are written for the people who run Roster; the console shows them to a customer's
//! IT admin too. So each guide is rendered for the tenant it is shown on ([`guide_for`]): the
//! docs' placeholder base URL (`https://scim.example.com/…`, "the `scim_base_url`") becomes the
//! tenant's real one; cross references that only make sense in the docs ("(see the rules
//! below)", links, citations, dialect rule names) are dropped; and "Roster" becomes the
//! product's name as the page says it (the vendor's brand on the IT admin's pages).

use askama::filters::Escaper;

/// Escapes text for HTML element content.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Escaping into a String cannot fail.
    let _ = askama::filters::Html.write_escaped_str(&mut out, s);
    out
}

/// The identity providers the console offers, with display names.
pub const IDPS: [(&str, &str); 7] = [
    ("okta", "Okta"),
    ("entra", "Microsoft Entra ID"),
    ("google", "Google Workspace"),
    ("onelogin", "OneLogin"),
    ("jumpcloud", "JumpCloud"),
    ("ping", "Ping Identity"),
    ("generic", "Other (any SCIM 2.0 client)"),
];

fn doc(idp: &str) -> Option<&'static str> {
    Some(match idp {
        "okta" => include_str!("../../../../docs/idp/okta.md"),
        "entra" => include_str!("../../../../docs/idp/entra.md"),
        "google" => include_str!("../../../../docs/idp/google.md"),
        "onelogin" => include_str!("../../../../docs/idp/onelogin.md"),
        "jumpcloud" => include_str!("../../../../docs/idp/jumpcloud.md"),
        "ping" => include_str!("../../../../docs/idp/ping.md"),
        _ => return None,
    })
}

/// The display name of an IdP id ("your identity provider" for an unknown one).
#[must_use]
pub fn display(idp: &str) -> &'static str {
    IDPS.iter()
        .find(|(id, _)| *id == idp)
        .map_or("your identity provider", |(_, name)| name)
}

/// Inline markdown: escaped text with `**bold**` and `` `code` `` turned into tags.
fn inline(md: &str) -> String {
    let mut out = String::new();
    let mut bold = false;
    let mut code = false;
    let text = esc(md);
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        if !code && rest.starts_with("**") {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = &rest[2..];
        } else if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if code {
        out.push_str("</code>");
    }
    if bold {
        out.push_str("</strong>");
    }
    out
}

/// The numbered steps of the "Connect" section, as list items. The first step of every doc is
/// the CLI command that creates the tenant; in the console that is "Enable SCIM" instead.
fn steps(md: &str) -> Vec<String> {
    let Some(start) = md.find("\n## Connect") else {
        return Vec::new();
    };
    let section = &md[start + 1..];
    let section = section
        .get(3..)
        .and_then(|s| s.find("\n## ").map(|e| &section[..e + 3]))
        .unwrap_or(section);
    let mut items: Vec<String> = Vec::new();
    for line in section.lines().skip(1) {
        let t = line.trim();
        let numbered = t
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if let Some((_, text)) = numbered {
            items.push(text.to_owned());
        } else if !t.is_empty() && line.starts_with(' ') {
            if let Some(last) = items.last_mut() {
                last.push(' ');
                last.push_str(t);
            }
        }
    }
    items.into_iter().skip(1).collect()
}

/// Drops the parenthetical that starts at `open` (`" ("`) when it holds only what `drop`
/// accepts; returns the text after it, or `None` to keep it.
fn skip_paren(rest: &str, drop: impl Fn(&str) -> bool) -> Option<&str> {
    let inner = rest.strip_prefix(" (")?;
    let mut depth = 1usize;
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return drop(&inner[..i]).then(|| &inner[i + 1..]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether `s` is one markdown link and nothing else: `[text](url)`, `[text][ref]`, `[ref]`.
fn only_link(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('[') else {
        return false;
    };
    let Some(close) = rest.find(']') else {
        return false;
    };
    let after = &rest[close + 1..];
    after.is_empty()
        || (after.starts_with('(') && after.ends_with(')') && !after[1..].contains('('))
        || (after.starts_with('[') && after.ends_with(']') && !after[1..].contains('['))
}

/// Whether `s` is a citation the console does not show: a link, a docs placeholder URL, or
/// the name of a dialect rule (`` `string-boolean` ``), or "see below".
fn doc_only(s: &str) -> bool {
    let t = s.trim();
    let rule = t
        .strip_prefix('`')
        .and_then(|x| x.strip_suffix('`'))
        .is_some_and(|x| x.contains('-') && x.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    only_link(t)
        || rule
        || t.starts_with("`https://scim.example.com")
        || t.starts_with("see ")
        || t == "below"
}

/// Markdown links as their text: `[text](url)` and `[text][ref]` → `text`.
fn unlink(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            out.push_str(&rest[open..]);
            return out;
        };
        out.push_str(&after[..close]);
        let tail = &after[close + 1..];
        let skip = match tail.chars().next() {
            Some('(') => tail.find(')').map_or(0, |e| e + 1),
            Some('[') => tail.find(']').map_or(0, |e| e + 1),
            _ => 0,
        };
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// One line of a guide as the console shows it on a tenant's page: the real base URL, the
/// product's name, no doc-only cross references (see the module's comment).
#[must_use]
pub fn localise(md: &str, base_url: &str, product: &str) -> String {
    // Parentheticals that only cite: links, the docs' placeholder URL, rule names, "see below".
    let mut text = String::with_capacity(md.len());
    let mut rest = md;
    while let Some(at) = rest.find(" (") {
        text.push_str(&rest[..at]);
        match skip_paren(&rest[at..], doc_only) {
            Some(after) => rest = after,
            None => {
                text.push_str(" (");
                rest = &rest[at + 2..];
            }
        }
    }
    text.push_str(rest);
    let text = unlink(&text)
        .replace("the `scim_base_url`", &format!("the base URL `{base_url}`"))
        .replace("`scim_base_url`", &format!("base URL `{base_url}`"))
        .replace("https://scim.example.com/scim/v2/contoso", base_url)
        .replace("`Bearer <token>`", "`Bearer ` followed by the token")
        .replace(
            "the template below",
            "the connector's default template (it works as it is)",
        )
        .replace("Roster (SCIM) attribute", "SCIM attribute")
        .replace("Roster `id`", "SCIM `id`")
        .replace("Roster id", "SCIM id");
    // "Roster" as the page names the product; capitalised at the start of a sentence.
    let cap = {
        let mut c = product.chars();
        c.next().map_or_else(String::new, |f| {
            f.to_uppercase().collect::<String>() + c.as_str()
        })
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("Roster") {
        let before = &rest[..at];
        out.push_str(before);
        let start = out.trim_end().is_empty() || out.trim_end().ends_with(['.', ':', '(']);
        out.push_str(if start { cap.as_str() } else { product });
        rest = &rest[at + "Roster".len()..];
    }
    out.push_str(rest);
    out
}

/// One identity provider's setup guide, as the SCIM settings page shows it.
#[derive(Debug, Clone)]
pub struct Guide {
    /// The setting's value (`okta`, ...).
    pub id: &'static str,
    /// The display name.
    pub name: &'static str,
    /// The attribute mappings.
    pub mappings: Table,
}

/// `idp`'s guide as a tenant's page shows it: steps and mappings with the tenant's real SCIM
/// base URL, `product` for "Roster", and no reference to the docs ([`localise`]).
#[must_use]
pub fn guide_for(g: &Guide, base_url: &str, product: &str) -> (String, Table) {
    let list = doc(g.id).map(steps).unwrap_or_default();
    let mut html = String::from(
        "<ol class=\"steps\"><li><strong>Enable SCIM</strong> on this page and copy the token: it is shown only once.</li>",
    );
    if list.is_empty() {
        html.push_str(&format!(
            "<li>In your identity provider, create a SCIM 2.0 provisioning connection.</li>\
<li>Enter the <strong>base URL</strong> <code>{}</code> as the SCIM endpoint and the token as a \
<strong>Bearer token</strong> (HTTP header <code>Authorization: Bearer</code> followed by the \
token).</li>\
<li>Map <code>userName</code> to the user's login (usually the email address), then test the \
connection and start provisioning.</li>",
            esc(base_url)
        ));
    } else {
        for s in list {
            html.push_str("<li>");
            html.push_str(&inline(&localise(&s, base_url, product)));
            html.push_str("</li>");
        }
    }
    html.push_str("</ol>");
    let table = Table {
        headers: g
            .mappings
            .raw_headers
            .iter()
            .map(|c| inline(&localise(c, base_url, product)))
            .collect(),
        rows: g
            .mappings
            .raw_rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| inline(&localise(c, base_url, product)))
                    .collect()
            })
            .collect(),
        ..Table::default()
    };
    (html, table)
}

/// Every provider's guide, built from the docs once.
#[must_use]
pub fn guides() -> &'static [Guide] {
    static G: std::sync::OnceLock<Vec<Guide>> = std::sync::OnceLock::new();
    G.get_or_init(|| {
        IDPS.iter()
            .map(|(id, name)| Guide {
                id,
                name,
                mappings: mapping_table(id),
            })
            .collect()
    })
}

/// A table of the docs, as HTML cells (escaped, with inline code and bold).
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Header cells.
    pub headers: Vec<String>,
    /// Body rows.
    pub rows: Vec<Vec<String>>,
    /// The header cells as the docs have them (markdown).
    pub raw_headers: Vec<String>,
    /// The body rows as the docs have them (markdown).
    pub raw_rows: Vec<Vec<String>>,
}

/// The first table of the "Attribute mappings" section of `idp`'s doc: which of the
/// provider's attributes to map to which SCIM attribute.
#[must_use]
pub fn mapping_table(idp: &str) -> Table {
    let Some(md) = doc(idp) else {
        return Table::default();
    };
    let Some(start) = md.find("\n## Attribute mappings") else {
        return Table::default();
    };
    let section = &md[start + 1..];
    let section = section
        .get(3..)
        .and_then(|s| s.find("\n## ").map(|e| &section[..e + 3]))
        .unwrap_or(section);
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let mut lines = section
        .lines()
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'));
    let Some(head) = lines.next() else {
        return Table::default();
    };
    let raw_headers = cells(head);
    let raw_rows: Vec<Vec<String>> = lines
        .filter(|l| !l.contains("---"))
        .map(|l| {
            let mut r = cells(l);
            r.resize(raw_headers.len(), String::new());
            r
        })
        .collect();
    Table {
        headers: raw_headers.iter().map(|c| inline(c)).collect(),
        rows: raw_rows
            .iter()
            .map(|r| r.iter().map(|c| inline(c)).collect())
            .collect(),
        raw_headers,
        raw_rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_idp_has_steps_from_its_doc() {
        for g in guides() {
            let (html, _) = guide_for(g, "https://x.test/scim/v2/t", "Roster");
            assert!(html.matches("<li>").count() >= 3, "{}: {html}", g.id);
            assert!(!html.contains("roster tenant create"), "{}: {html}", g.id);
        }
        let okta = guides().iter().find(|g| g.id == "okta").unwrap();
        assert!(guide_for(okta, "u", "Roster").0.contains("<strong>"));
    }

    #[test]
    fn mapping_tables_come_from_the_docs() {
        let t = mapping_table("entra");
        assert_eq!(t.headers.len(), 3, "{t:?}");
        assert!(
            t.rows.iter().any(|r| r[0] == "<code>userName</code>"),
            "{t:?}"
        );
        assert!(t.rows.iter().all(|r| r.len() == 3));
        assert!(mapping_table("okta").rows.len() >= 4);
        assert!(mapping_table("generic").rows.is_empty());
    }

    #[test]
    fn guides_show_the_real_base_url_and_no_doc_references() {
        let base = "https://acme.test/scim/v2/globex";
        for g in guides() {
            let (html, table) = guide_for(g, base, "Acme Cloud");
            let all = format!("{html} {:?} {:?}", table.headers, table.rows);
            for bad in [
                "scim.example.com",
                "scim_base_url",
                "see the rules",
                "see below",
                "Roster",
                "roster ",
                "README",
                "docs/",
                ".md",
                "](",
                "][",
                "string-boolean",
                "manager-string",
            ] {
                assert!(!all.contains(bad), "{}: {bad:?} in {all}", g.id);
            }
            if g.id != "generic" {
                assert!(html.contains(base), "{}: {html}", g.id);
            }
        }
        let entra = guides().iter().find(|g| g.id == "entra").unwrap();
        let (html, _) = guide_for(entra, "https://x.test/scim/v2/t", "this service");
        assert!(
            html.contains("<code>https://x.test/scim/v2/t</code>"),
            "{html}"
        );
        assert!(html.contains("This service does not need"), "{html}");
        let google = guides().iter().find(|g| g.id == "google").unwrap();
        let (html, _) = guide_for(google, "https://x.test/scim/v2/t", "this service");
        assert!(html.contains("every few hours.</li>"), "{html}");
        // Escaped, as every value the console shows.
        let (html, _) = guide_for(entra, "https://x.test/<b>", "A&B");
        assert!(!html.contains("<b>") && html.contains("A&#38;B"), "{html}");
    }

    #[test]
    fn citations_and_links_are_dropped() {
        assert_eq!(
            localise(
                "Go on ([authn]). Then ([Guide][g]) or [the help](x.md#a).",
                "u",
                "p"
            ),
            "Go on. Then or the help."
        );
        assert_eq!(
            localise("keep (this one) here", "u", "p"),
            "keep (this one) here"
        );
        assert_eq!(
            localise("Roster may. An address Roster may", "u", "this app"),
            "This app may. An address this app may"
        );
    }

    #[test]
    fn inline_markdown_escapes() {
        assert_eq!(
            inline("**a** `<b>`"),
            "<strong>a</strong> <code>&#60;b&#62;</code>"
        );
    }
}
