//! Per-identity-provider setup steps, taken from `docs/idp/<idp>.md` at compile time (the
//! "Connect … to Roster" section) so the console and the docs never disagree.

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
    items
        .into_iter()
        .skip(1)
        .map(|s| {
            s.replace("the `scim_base_url`", "the base URL above")
                .replace("`scim_base_url`", "base URL above")
                .replace(" (see below)", "")
        })
        .collect()
}

/// An ordered list of setup steps for `idp`.
#[must_use]
pub fn instructions(idp: &str) -> String {
    let mut html = String::from(
        "<ol class=\"steps\"><li><strong>Enable SCIM</strong> on this page and copy the token: it is shown only once.</li>",
    );
    let list = doc(idp).map(steps).unwrap_or_default();
    if list.is_empty() {
        html.push_str(
            "<li>In your identity provider, create a SCIM 2.0 provisioning connection.</li>\
<li>Enter the <strong>base URL</strong> above as the SCIM endpoint and the token as a \
<strong>Bearer token</strong> (HTTP header <code>Authorization: Bearer …</code>).</li>\
<li>Map <code>userName</code> to the user's login (usually the email address), then test the \
connection and start provisioning.</li>",
        );
    } else {
        for s in list {
            html.push_str("<li>");
            html.push_str(&inline(&s));
            html.push_str("</li>");
        }
    }
    html.push_str("</ol>");
    html
}

/// One identity provider's setup guide, as the SCIM settings page shows it.
#[derive(Debug, Clone)]
pub struct Guide {
    /// The setting's value (`okta`, ...).
    pub id: &'static str,
    /// The display name.
    pub name: &'static str,
    /// The numbered steps, as HTML.
    pub steps_html: String,
    /// The attribute mappings.
    pub mappings: Table,
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
                steps_html: instructions(id),
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
            .map(|c| inline(c.trim()))
            .collect()
    };
    let mut lines = section
        .lines()
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'));
    let Some(head) = lines.next() else {
        return Table::default();
    };
    let headers = cells(head);
    let rows = lines
        .filter(|l| !l.contains("---"))
        .map(|l| {
            let mut r = cells(l);
            r.resize(headers.len(), String::new());
            r
        })
        .collect();
    Table { headers, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_idp_has_steps_from_its_doc() {
        for (id, _) in IDPS {
            let html = instructions(id);
            assert!(html.matches("<li>").count() >= 3, "{id}: {html}");
            assert!(!html.contains("roster tenant create"), "{id}: {html}");
        }
        assert!(instructions("okta").contains("<strong>"));
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
    fn inline_markdown_escapes() {
        assert_eq!(
            inline("**a** `<b>`"),
            "<strong>a</strong> <code>&#60;b&#62;</code>"
        );
    }
}
