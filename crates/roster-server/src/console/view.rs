//! What every page shares: the layout's data ([`Chrome`]), options of a `<select>`, pagers,
//! time formatting, and rendering a template into a response.
//!
//! Pages are askama templates (`templates/console/*.html`) compiled into the binary; askama
//! escapes every value it interpolates, so page code never builds HTML from strings (the one
//! exception, the identity-provider steps, is built from our own docs by [`super::idp`]).

use std::collections::BTreeMap;

use askama::Template;
use axum::response::Html;
use time::OffsetDateTime;

use super::{ConsoleError, Session};
use crate::ops::FieldError;
use roster_store::Tenant;

/// The layout's data: title, who is signed in, the tenant's tabs, notices.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The page title (before "· Roster console").
    pub title: String,
    /// Who is signed in, for the header; `None` on the sign-in pages.
    pub who: Option<String>,
    /// The session's CSRF token, for the sign-out form and every other form.
    pub csrf: String,
    /// Whether the session is an operator's (shows "All tenants").
    pub operator: bool,
    /// The tenant the page is about, with its tabs.
    pub tenant: Option<TenantNav>,
    /// Messages shown above the content.
    pub notices: Vec<Notice>,
    /// Cache-busting version of the CSS and JS.
    pub asset_version: &'static str,
    /// The vendor's branding, on the IT admin's pages (setup-link sessions and the setup
    /// landing page); `None` on operators' pages, which say "Roster".
    pub brand: Option<BrandChrome>,
}

/// The vendor's branding as the layout shows it ([`crate::ops::branding`]).
#[derive(Debug, Clone, Default)]
pub struct BrandChrome {
    /// The brand name, when one is set.
    pub name: Option<String>,
    /// The logo's address, when there is one.
    pub logo_href: Option<String>,
    /// The brand stylesheet's address, when an accent colour is set.
    pub css_href: Option<String>,
}

impl BrandChrome {
    /// The branding this process knows.
    #[must_use]
    pub fn current() -> Self {
        let b = crate::ops::branding::current();
        Self {
            name: b.name.clone(),
            logo_href: b.logo_href(),
            css_href: b
                .accent
                .as_ref()
                .map(|_| format!("/console/assets/brand.css?v={}", b.version())),
        }
    }
}

/// A tenant's name and tabs.
#[derive(Debug, Clone)]
pub struct TenantNav {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The tabs.
    pub tabs: Vec<Tab>,
}

/// One tab of a tenant's pages.
#[derive(Debug, Clone)]
pub struct Tab {
    /// Link.
    pub href: String,
    /// Label.
    pub label: &'static str,
    /// Whether it is the current page.
    pub current: bool,
}

/// Which of a tenant's tabs a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabId {
    /// SCIM settings.
    Scim,
    /// Users.
    Users,
    /// Groups.
    Groups,
    /// Provisioning log.
    Log,
}

/// A message above the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `ok`, `error` or `info` (a CSS class; `error` is announced as an alert).
    pub kind: &'static str,
    /// The text.
    pub text: String,
}

impl Notice {
    /// A success message.
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            kind: "ok",
            text: text.into(),
        }
    }

    /// An error message.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
}

impl Chrome {
    /// The chrome of a page outside any session (sign-in, setup link, errors).
    #[must_use]
    pub fn anonymous(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            asset_version: super::asset_version(),
            ..Self::default()
        }
    }

    /// The chrome of a signed-in page: an IT admin's (setup-link session) carries the
    /// vendor's branding.
    #[must_use]
    pub fn signed_in(session: &Session, title: impl Into<String>) -> Self {
        let operator = session.is_operator();
        Self {
            title: title.into(),
            who: Some(session.label()),
            csrf: session.csrf.clone(),
            operator,
            asset_version: super::asset_version(),
            brand: (!operator).then(BrandChrome::current),
            ..Self::default()
        }
    }

    /// The same chrome with the vendor's branding (the IT admin's pages before a session).
    #[must_use]
    pub fn branded(mut self) -> Self {
        self.brand = Some(BrandChrome::current());
        self
    }

    /// The product's name in a sentence, mid-sentence: "Roster" on operators' pages; on the
    /// IT admin's, the brand name or "this service".
    #[must_use]
    pub fn product(&self) -> String {
        match &self.brand {
            None => "Roster".to_owned(),
            Some(b) => b.name.clone().unwrap_or_else(|| "this service".to_owned()),
        }
    }

    /// [`Chrome::product`] at the start of a sentence.
    #[must_use]
    pub fn product_cap(&self) -> String {
        let p = self.product();
        let mut c = p.chars();
        c.next().map_or_else(String::new, |f| {
            f.to_uppercase().collect::<String>() + c.as_str()
        })
    }

    /// The site's name, after the page title and in the header: "Roster console" for
    /// operators; on the IT admin's pages, the brand name's "… setup" or "SCIM setup".
    #[must_use]
    pub fn site(&self) -> String {
        match &self.brand {
            None => "Roster console".to_owned(),
            Some(BrandChrome { name: Some(n), .. }) => format!("{n} setup"),
            Some(_) => "SCIM setup".to_owned(),
        }
    }

    /// The chrome of one of a tenant's pages.
    #[must_use]
    pub fn tenant(session: &Session, t: &Tenant, tab: TabId, title: &str) -> Self {
        let base = tenant_href(&t.id);
        let tabs = [
            (TabId::Scim, "", "SCIM settings"),
            (TabId::Users, "/users", "Users"),
            (TabId::Groups, "/groups", "Groups"),
            (TabId::Log, "/log", "Provisioning log"),
        ]
        .into_iter()
        .map(|(id, suffix, label)| Tab {
            href: format!("{base}{suffix}"),
            label,
            current: id == tab,
        })
        .collect();
        Self {
            tenant: Some(TenantNav {
                id: t.id.clone(),
                name: t.name.clone(),
                tabs,
            }),
            ..Self::signed_in(session, format!("{title} · {}", t.name))
        }
    }

    /// Adds a notice.
    #[must_use]
    pub fn with(mut self, notice: Option<Notice>) -> Self {
        self.notices.extend(notice);
        self
    }
}

/// A form as it is shown again after a refusal: what was typed, and every problem, each next
/// to its field. The pattern of every console form: the handler collects all the problems it
/// can find (its own parsing and the operation's [`crate::ops::OpError::Invalid`]), answers the
/// page again (400) with this, and the template shows a summary at the top of the form's
/// section (each item a link to its field), the message under each field with
/// `aria-invalid` and `aria-describedby`, and every field as typed. Nothing was saved, so
/// reloading that answer is a new POST the browser asks about, never a silent one; a GET of the
/// form's address is sent back to the form (see `navigation` in the console's router).
#[derive(Debug, Clone, Default)]
pub struct FormState {
    /// The prefix of the form's element ids (`new-` for `new-roles`), so that two forms of one
    /// page keep their ids apart.
    pub prefix: &'static str,
    /// The fields as typed; empty when the form is shown fresh.
    pub values: BTreeMap<String, String>,
    /// Every problem, with its form field (`None`: about the whole form).
    pub errors: Vec<FieldError>,
    /// The summary's first words ("Nothing was saved"; a filter form says otherwise).
    pub lead: &'static str,
}

impl FormState {
    /// A fresh form whose elements' ids start with `prefix`.
    #[must_use]
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            ..Self::default()
        }
    }

    /// The form refused: `values` as typed, and `errors`.
    #[must_use]
    pub fn refused<'a>(
        prefix: &'static str,
        values: impl IntoIterator<Item = (&'a str, &'a str)>,
        errors: Vec<FieldError>,
    ) -> Self {
        Self {
            prefix,
            values: values
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            errors,
            lead: "Nothing was saved",
        }
    }

    /// The same form, its summary starting with `lead`.
    #[must_use]
    pub fn with_lead(mut self, lead: &'static str) -> Self {
        self.lead = lead;
        self
    }

    /// Adds an operation's refusals, in the form's words: each `(op field, form field, label)`
    /// names where an operation's field is shown, and its message's leading field name (the
    /// operation names it for the admin API and the command line) becomes the form's label
    /// (`settings.token_ttl_days must be …` → `The token lifetime must be …`). A field not
    /// listed stays about the whole form.
    #[must_use]
    pub fn with_op_errors(
        mut self,
        errors: Vec<FieldError>,
        fields: &[(&str, &str, &str)],
    ) -> Self {
        for e in errors {
            let known = fields.iter().find(|(op, _, _)| {
                e.field.as_deref() == Some(*op)
                    || (e.field.is_none() && e.message.starts_with(&format!("{op} ")))
            });
            self.errors.push(match known {
                Some((op, form, label)) => FieldError {
                    field: Some((*form).to_owned()),
                    message: e
                        .message
                        .strip_prefix(op)
                        .map_or_else(|| e.message.clone(), |rest| format!("{label}{rest}")),
                },
                None => e,
            });
        }
        self
    }

    /// Whether the form was refused.
    #[must_use]
    pub fn is_refused(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The message(s) about `field`.
    #[must_use]
    pub fn error(&self, field: &str) -> Option<String> {
        let all: Vec<&str> = self
            .errors
            .iter()
            .filter(|e| e.field.as_deref() == Some(field))
            .map(|e| e.message.as_str())
            .collect();
        (!all.is_empty()).then(|| all.join(" "))
    }

    /// The element id of `field`.
    #[must_use]
    pub fn id(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// The id of `field`'s error message (its `aria-describedby`).
    #[must_use]
    pub fn error_id(&self, field: &str) -> String {
        format!("{}{field}-error", self.prefix)
    }

    /// What `field` shows: as typed when the form was refused, otherwise `stored`.
    #[must_use]
    pub fn value(&self, field: &str, stored: &str) -> String {
        if self.is_refused() {
            self.values.get(field).cloned().unwrap_or_default()
        } else {
            stored.to_owned()
        }
    }

    /// Whether checkbox `field` is ticked: as sent when the form was refused (an unticked box
    /// is not sent), otherwise `stored`.
    #[must_use]
    pub fn checked(&self, field: &str, stored: bool) -> bool {
        if self.is_refused() {
            self.values.contains_key(field)
        } else {
            stored
        }
    }

    /// The summary's items: the message, and the id of its field to link to (empty when the
    /// problem is about the whole form).
    #[must_use]
    pub fn summary(&self) -> Vec<(String, &str)> {
        self.errors
            .iter()
            .map(|e| {
                let href = e.field.as_deref().map(|f| self.id(f)).unwrap_or_default();
                (href, e.message.as_str())
            })
            .collect()
    }

    /// "1 problem", "3 problems".
    #[must_use]
    pub fn count(&self) -> String {
        let n = self.errors.len();
        format!("{n} problem{}", if n == 1 { "" } else { "s" })
    }
}

/// `/console/t/{tenant}`.
#[must_use]
pub fn tenant_href(tenant: &str) -> String {
    format!("/console/t/{}", url_enc(tenant))
}

/// One `<option>`.
#[derive(Debug, Clone)]
pub struct Opt {
    /// Its value.
    pub value: String,
    /// Its label.
    pub label: String,
    /// Whether it is selected.
    pub selected: bool,
}

/// Options from `(value, label)` pairs, `current` selected.
#[must_use]
pub fn options(pairs: &[(&str, &str)], current: &str) -> Vec<Opt> {
    pairs
        .iter()
        .map(|(v, l)| Opt {
            value: (*v).to_owned(),
            label: (*l).to_owned(),
            selected: *v == current,
        })
        .collect()
}

/// Links to other pages of a list.
#[derive(Debug, Clone, Default)]
pub struct Pager {
    /// The first page, when this is not it.
    pub first: Option<String>,
    /// The previous page.
    pub prev: Option<String>,
    /// The next page.
    pub next: Option<String>,
    /// The next link's label.
    pub next_label: &'static str,
    /// "Page 2 of 5", "25 shown", ...
    pub summary: String,
}

impl Pager {
    /// The pager of a keyset-paged list: "First page" on a later page, the next page when
    /// there is one. `link(None)` is the first page, `link(Some(c))` the page after cursor `c`.
    pub fn keyset(
        link: impl Fn(Option<&str>) -> String,
        cursor: Option<&str>,
        next: Option<&str>,
        next_label: &'static str,
        summary: String,
    ) -> Self {
        Self {
            first: cursor.map(|_| link(None)),
            prev: None,
            next: next.map(|c| link(Some(c))),
            next_label,
            summary,
        }
    }
}

/// "1 user shown", "25 users shown".
#[must_use]
pub fn shown(n: usize, noun: &str) -> String {
    format!("{n} {noun}{} shown", if n == 1 { "" } else { "s" })
}

/// Renders a template; a rendering failure is logged and shown as a 500.
///
/// # Errors
/// [`ConsoleError::Internal`].
pub fn render<T: Template>(t: &T) -> Result<Html<String>, ConsoleError> {
    t.render().map(Html).map_err(|e| {
        tracing::error!(error = %e, "console: template failed");
        ConsoleError::Internal
    })
}

/// Percent-encodes a value for a URL query or path segment.
#[must_use]
pub fn url_enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from `(key, value)` pairs, skipping empty values: `a=1&b=x%20y`.
#[must_use]
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `2026-11-22 08:43 UTC`.
#[must_use]
pub fn fmt_when(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A wait in words: `45 seconds`, `1 minute`, `3 minutes`.
#[must_use]
pub fn fmt_wait(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} second{}", if secs == 1 { "" } else { "s" }),
        _ => {
            let m = secs.div_ceil(60);
            format!("{m} minute{}", if m == 1 { "" } else { "s" })
        }
    }
}

/// `2026-11-22`.
#[must_use]
pub fn fmt_date(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn plural(n: i64, unit: &str) -> String {
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// "2 minutes ago", "just now", "3 days ago".
#[must_use]
pub fn fmt_ago(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let s = (now - t).whole_seconds().max(0);
    match s {
        0..=59 => "just now".to_owned(),
        60..=3599 => format!("{} ago", plural(s / 60, "minute")),
        3600..=86_399 => format!("{} ago", plural(s / 3600, "hour")),
        _ => format!("{} ago", plural(s / 86_400, "day")),
    }
}

/// "in 364 days", "in 3 hours", "expired".
#[must_use]
pub fn fmt_in(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let s = (t - now).whole_seconds();
    match s {
        i64::MIN..=0 => "expired".to_owned(),
        1..=3599 => format!("in {}", plural((s / 60).max(1), "minute")),
        3600..=86_399 => format!("in {}", plural(s / 3600, "hour")),
        _ => format!("in {}", plural(s / 86_400, "day")),
    }
}

/// Splits a comma-separated list, trimming and dropping empty items.
#[must_use]
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn relative_times() {
        let t = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(fmt_ago(t, t + Duration::seconds(5)), "just now");
        assert_eq!(fmt_ago(t, t + Duration::minutes(2)), "2 minutes ago");
        assert_eq!(fmt_ago(t, t + Duration::hours(1)), "1 hour ago");
        assert_eq!(fmt_ago(t + Duration::hours(1), t), "just now", "clock skew");
        assert_eq!(fmt_in(t + Duration::days(364), t), "in 364 days");
        assert_eq!(fmt_in(t + Duration::seconds(30), t), "in 1 minute");
        assert_eq!(fmt_in(t, t + Duration::seconds(1)), "expired");
        assert_eq!(fmt_when(t), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn a_refused_form_keeps_what_was_typed_and_places_each_error() {
        let fresh = FormState::new("new-");
        assert_eq!(fresh.value("roles", "editor"), "editor");
        assert!(fresh.checked("x", true));
        let f = FormState::refused(
            "new-",
            [("value", " Eng "), ("roles", "")],
            vec![FieldError {
                field: None,
                message: "a mapping exists already".into(),
            }],
        )
        .with_op_errors(
            vec![FieldError {
                field: Some("group.value".into()),
                message: "group.value must have 1 to 1024 characters".into(),
            }],
            &[("group.value", "value", "The group")],
        );
        assert_eq!(f.value("value", "stored"), " Eng ");
        assert!(!f.checked("x", true), "an unticked box is not sent");
        assert_eq!(
            f.error("value").as_deref(),
            Some("The group must have 1 to 1024 characters")
        );
        assert_eq!(f.error("roles"), None);
        assert_eq!(f.error_id("value"), "new-value-error");
        let s = f.summary();
        assert_eq!(s[0].0, "");
        assert_eq!(s[1].0, "new-value");
        assert_eq!(f.count(), "2 problems");
        // A refusal naming its field only in its words lands at that field too.
        let g = FormState::refused("", [], vec![]).with_op_errors(
            vec![FieldError {
                field: None,
                message: "settings.token_ttl_days must be 1–3650, not 0".into(),
            }],
            &[(
                "settings.token_ttl_days",
                "token_ttl_days",
                "The token lifetime",
            )],
        );
        assert_eq!(
            g.error("token_ttl_days").as_deref(),
            Some("The token lifetime must be 1–3650, not 0")
        );
    }

    #[test]
    fn urls_and_lists() {
        assert_eq!(url_enc("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(
            query(&[("q", "x&y"), ("status", ""), ("n", "1")]),
            "q=x%26y&n=1"
        );
        assert_eq!(split_list(" a, ,b ,"), ["a", "b"]);
        let o = options(&[("a", "A"), ("b", "B")], "b");
        assert!(!o[0].selected && o[1].selected);
    }
}
