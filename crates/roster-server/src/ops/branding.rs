//! The vendor's branding of the IT admin's view: a brand name ("Acme Cloud"), a logo and an
//! accent colour, server-wide, stored in the database (`meta`, keys [`BRAND`] and
//! [`BRAND_LOGO`]) so that every process on it serves the same.
//!
//! The small record (name, accent, the logo's type and digest) is read into this process
//! ([`current`], refreshed by [`load`] on the auth cache's beat and at once after a change made
//! here); the logo's bytes are read from the database only when the logo is fetched, under a
//! `?v=` digest that lets the browser cache them for a year.
//!
//! A logo is PNG, JPEG, GIF, WebP or SVG, recognised by its bytes (never by what the uploader
//! claims), at most [`MAX_LOGO_BYTES`]. An SVG is served with its own
//! `Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'`, so a script in it
//! never runs, even when the logo's address is opened directly.

use std::sync::{Arc, OnceLock, RwLock};

use base64::Engine as _;
use roster_store::{Store, StoreError, StoreResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{audit, FieldError, OpError};

/// The `meta` key of the branding record (JSON: name, accent, logo type and digest).
pub const BRAND: &str = "brand";
/// The `meta` key of the logo's bytes, base64.
pub const BRAND_LOGO: &str = "brand_logo";
/// The largest logo accepted, in bytes (256 KiB).
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// The longest brand name, in characters.
pub const MAX_NAME_CHARS: usize = 80;

/// The branding as stored and as every surface shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    /// The brand name shown to IT admins ("Acme Cloud"); `None`: neutral wording.
    #[serde(default)]
    pub name: Option<String>,
    /// The accent colour, `#rrggbb` (lowercase); `None`: the console's own.
    #[serde(default)]
    pub accent: Option<String>,
    /// The logo, when there is one.
    #[serde(default)]
    pub logo: Option<Logo>,
}

/// What is known of the stored logo without reading its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logo {
    /// Its media type (`image/png`, `image/svg+xml`, ...), from its bytes.
    pub content_type: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// The first 12 hex digits of its SHA-256: the `?v=` of its address.
    pub sha256: String,
}

impl Branding {
    /// Whether nothing is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.accent.is_none() && self.logo.is_none()
    }

    /// A short digest of the whole record, the `?v=` of the brand stylesheet.
    #[must_use]
    pub fn version(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex::encode(&Sha256::digest(text.as_bytes())[..6])
    }

    /// The logo's address in the console (`/console/assets/brand-logo?v=…`), when there is one.
    #[must_use]
    pub fn logo_href(&self) -> Option<String> {
        self.logo
            .as_ref()
            .map(|l| format!("/console/assets/brand-logo?v={}", l.sha256))
    }

    /// The product's name in a sentence an IT admin reads: the brand name, or `neutral`.
    #[must_use]
    pub fn product_or<'a>(&'a self, neutral: &'a str) -> &'a str {
        self.name.as_deref().unwrap_or(neutral)
    }
}

fn cache() -> &'static RwLock<Arc<Branding>> {
    static C: OnceLock<RwLock<Arc<Branding>>> = OnceLock::new();
    C.get_or_init(|| RwLock::new(Arc::new(Branding::default())))
}

/// The branding this process knows (read by [`load`]).
#[must_use]
pub fn current() -> Arc<Branding> {
    cache()
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn set_current(b: Branding) {
    *cache()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(b);
}

/// The stored branding (none set: empty).
///
/// # Errors
/// The store's, or `Backend` when the stored record is not one.
pub async fn stored(store: &dyn Store) -> StoreResult<Branding> {
    match store.meta(BRAND).await? {
        None => Ok(Branding::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Backend(Box::new(e))),
    }
}

/// Reads the branding from the database into this process; returns whether it changed.
///
/// # Errors
/// As [`stored`].
pub async fn load(store: &dyn Store) -> StoreResult<bool> {
    let b = stored(store).await?;
    if *current() == b {
        return Ok(false);
    }
    set_current(b);
    Ok(true)
}

async fn save(store: &dyn Store, b: &Branding) -> Result<(), OpError> {
    let text =
        serde_json::to_string(b).map_err(|e| OpError::Store(StoreError::Backend(Box::new(e))))?;
    store
        .set_meta(BRAND, (!b.is_empty()).then_some(text.as_str()))
        .await?;
    set_current(b.clone());
    Ok(())
}

/// A valid accent colour, lowercase: `#rrggbb` (or `#RRGGBB`).
///
/// # Errors
/// The field's problem, in words.
pub fn parse_accent(s: &str) -> Result<String, FieldError> {
    let t = s.trim();
    let ok = t.len() == 7 && t.starts_with('#') && t.bytes().skip(1).all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(FieldError {
            field: Some("accent".into()),
            message: format!(
                "accent must be a colour written #rrggbb (six hexadecimal digits, like #0b5cad), \
                 not {s:?}"
            ),
        })
    }
}

/// A valid brand name, trimmed.
///
/// # Errors
/// The field's problem, in words.
pub fn parse_name(s: &str) -> Result<String, FieldError> {
    let t = s.trim();
    let problem = if t.is_empty() {
        Some("name must not be empty (leave it out to show no brand name)".to_owned())
    } else if t.chars().count() > MAX_NAME_CHARS {
        Some(format!(
            "name must have at most {MAX_NAME_CHARS} characters, not {}",
            t.chars().count()
        ))
    } else if t.chars().any(char::is_control) {
        Some("name must not contain control characters (line breaks, tabs)".to_owned())
    } else {
        None
    };
    match problem {
        None => Ok(t.to_owned()),
        Some(message) => Err(FieldError {
            field: Some("name".into()),
            message,
        }),
    }
}

/// Replaces the brand name and the accent colour (`None` removes either); the logo stays.
/// Every problem is reported at once.
///
/// # Errors
/// [`OpError::Invalid`] naming each bad field; [`OpError::Store`].
pub async fn set(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
    name: Option<&str>,
    accent: Option<&str>,
) -> Result<Branding, OpError> {
    let mut errors = Vec::new();
    let name = name.map(parse_name).transpose().unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let accent = accent.map(parse_accent).transpose().unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if !errors.is_empty() {
        return Err(OpError::Invalid { errors });
    }
    let mut b = stored(store).await?;
    b.name = name;
    b.accent = accent;
    save(store, &b).await?;
    audit(
        store,
        now,
        actor,
        "branding.set",
        None,
        None,
        json!({"name": b.name, "accent": b.accent}),
    )
    .await;
    Ok(b)
}

/// The media type of an image, from its bytes: PNG, JPEG, GIF, WebP or SVG.
#[must_use]
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some("image/gif");
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Some("image/webp");
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let t = text.trim_start_matches('\u{feff}').trim_start();
    let looks_xml = t.starts_with("<?xml") || t.starts_with("<svg") || t.starts_with("<!--");
    (looks_xml && t.contains("<svg")).then_some("image/svg+xml")
}

/// Replaces the logo with `bytes`.
///
/// # Errors
/// [`OpError::Invalid`] (field `logo`) when it is empty, larger than [`MAX_LOGO_BYTES`] or
/// not a PNG, JPEG, GIF, WebP or SVG image; [`OpError::Store`].
pub async fn set_logo(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
    bytes: &[u8],
) -> Result<Branding, OpError> {
    let refuse = |m: String| OpError::invalid_field("logo", m);
    if bytes.is_empty() {
        return Err(refuse(
            "logo must not be empty: send the image's bytes".into(),
        ));
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(refuse(format!(
            "logo must be at most 256 KiB ({MAX_LOGO_BYTES} bytes), not {} bytes",
            bytes.len()
        )));
    }
    let Some(content_type) = sniff(bytes) else {
        return Err(refuse(
            "logo must be a PNG, JPEG, GIF, WebP or SVG image; these bytes are none of them".into(),
        ));
    };
    let sha256 = hex::encode(&Sha256::digest(bytes)[..6]);
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    // The bytes first: a record never names a logo that is not stored.
    store.set_meta(BRAND_LOGO, Some(&data)).await?;
    let mut b = stored(store).await?;
    b.logo = Some(Logo {
        content_type: content_type.to_owned(),
        bytes: bytes.len(),
        sha256,
    });
    save(store, &b).await?;
    audit(
        store,
        now,
        actor,
        "branding.logo",
        None,
        None,
        json!({"logo": b.logo}),
    )
    .await;
    Ok(b)
}

/// Removes the logo.
///
/// # Errors
/// [`OpError::Store`].
pub async fn clear_logo(
    store: &dyn Store,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Branding, OpError> {
    let mut b = stored(store).await?;
    b.logo = None;
    save(store, &b).await?;
    store.set_meta(BRAND_LOGO, None).await?;
    audit(
        store,
        now,
        actor,
        "branding.logo.delete",
        None,
        None,
        json!({}),
    )
    .await;
    Ok(b)
}

/// Removes all branding: name, accent and logo.
///
/// # Errors
/// [`OpError::Store`].
pub async fn clear(store: &dyn Store, now: OffsetDateTime, actor: &str) -> Result<(), OpError> {
    save(store, &Branding::default()).await?;
    store.set_meta(BRAND_LOGO, None).await?;
    audit(store, now, actor, "branding.clear", None, None, json!({})).await;
    Ok(())
}

/// The stored logo: its media type (from its bytes) and bytes; `None` when there is none.
///
/// # Errors
/// [`OpError::Store`], also when the stored value is not base64.
pub async fn logo(store: &dyn Store) -> Result<Option<(&'static str, Vec<u8>)>, OpError> {
    let Some(data) = store.meta(BRAND_LOGO).await? else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| OpError::Store(StoreError::Backend(Box::new(e))))?;
    Ok(sniff(&bytes).map(|t| (t, bytes)))
}

/// The relative luminance of `#rrggbb` (WCAG 2.x).
fn luminance(hex: &str) -> Option<f64> {
    let channel = |i: usize| -> Option<f64> {
        let v = u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?;
        let c = f64::from(v) / 255.0;
        Some(if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        })
    };
    Some(0.2126 * channel(1)? + 0.7152 * channel(3)? + 0.0722 * channel(5)?)
}

/// The WCAG contrast ratio of two luminances.
fn contrast(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    (hi + 0.05) / (lo + 0.05)
}

/// The text colour on an accent background: black or white, whichever contrasts more (at
/// least 4.5:1 for every colour, WCAG AA).
#[must_use]
pub fn text_on(accent: &str) -> &'static str {
    let Some(l) = luminance(accent) else {
        return "#ffffff";
    };
    if contrast(l, 0.0) >= contrast(l, 1.0) {
        "#000000"
    } else {
        "#ffffff"
    }
}

/// The brand stylesheet (`/console/assets/brand.css`): the accent colour on the header, the
/// primary buttons and the current tab, with black or white text by contrast. Links keep the
/// console's own colour unless the accent has AA contrast (4.5:1) on white. Empty without an
/// accent.
#[must_use]
pub fn stylesheet(b: &Branding) -> String {
    let Some(accent) = b.accent.as_deref().and_then(|a| parse_accent(a).ok()) else {
        return String::from("/* no brand accent */\n");
    };
    let fg = text_on(&accent);
    let mut css = format!(
        "/* brand accent */\n\
         header.top {{ background: {accent}; color: {fg}; }}\n\
         header.top a, header.top button.link, header.top .brand-sub {{ color: {fg}; }}\n\
         button.primary, button.primary:hover {{ background: {accent}; border-color: {accent}; color: {fg}; }}\n\
         nav.tabs a[aria-current=\"page\"] {{ border-bottom-color: {accent}; }}\n\
         section.card.highlight {{ border-color: {accent}; }}\n"
    );
    if luminance(&accent).is_some_and(|l| contrast(l, 1.0) >= 4.5) {
        css.push_str(&format!(
            ":root {{ --accent: {accent}; --focus: {accent}; }}\n"
        ));
    }
    css
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_are_checked_and_lowercased() {
        assert_eq!(parse_accent("#0B5CAD").unwrap(), "#0b5cad");
        assert_eq!(parse_accent(" #ffcc00 ").unwrap(), "#ffcc00");
        for bad in [
            "",
            "red",
            "#fff",
            "#12345g",
            "0b5cad",
            "#0b5cad0",
            "#0b5cad;}",
        ] {
            let e = parse_accent(bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("accent"), "{bad}");
            assert!(e.message.contains("#rrggbb"), "{bad}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(parse_name("  Acme Cloud ").unwrap(), "Acme Cloud");
        assert!(parse_name("   ").is_err());
        assert!(parse_name("a\nb").is_err());
        assert!(parse_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(parse_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
    }

    #[test]
    fn text_on_the_accent_keeps_aa_contrast() {
        assert_eq!(text_on("#0b5cad"), "#ffffff");
        assert_eq!(text_on("#ffcc00"), "#000000");
        assert_eq!(text_on("#ffffff"), "#000000");
        assert_eq!(text_on("#000000"), "#ffffff");
        // Every grey gets the text with the better contrast, never below 4.5:1.
        for v in 0..=255u8 {
            let c = format!("#{v:02x}{v:02x}{v:02x}");
            let l = luminance(&c).unwrap();
            let t = if text_on(&c) == "#000000" { 0.0 } else { 1.0 };
            assert!(contrast(l, t) >= 4.5, "{c}");
        }
    }

    #[test]
    fn the_stylesheet_uses_the_accent_only() {
        let none = stylesheet(&Branding::default());
        assert!(!none.contains('{'));
        let dark = stylesheet(&Branding {
            accent: Some("#5b2a86".into()),
            ..Branding::default()
        });
        assert!(dark.contains("background: #5b2a86; color: #ffffff"));
        assert!(dark.contains("--accent: #5b2a86"));
        // A light accent is not used for link text on white.
        let light = stylesheet(&Branding {
            accent: Some("#ffcc00".into()),
            ..Branding::default()
        });
        assert!(light.contains("color: #000000"));
        assert!(!light.contains("--accent"));
    }

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Some("image/svg+xml")
        );
        assert_eq!(sniff(b"<svg></svg>"), Some("image/svg+xml"));
        assert_eq!(sniff(b"<html><svg></svg></html>"), None);
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn the_version_follows_the_record() {
        let a = Branding::default();
        let b = Branding {
            name: Some("Acme".into()),
            ..Branding::default()
        };
        assert_ne!(a.version(), b.version());
        assert_eq!(b.version(), b.clone().version());
        assert_eq!(b.product_or("this service"), "Acme");
        assert_eq!(a.product_or("this service"), "this service");
    }
}
