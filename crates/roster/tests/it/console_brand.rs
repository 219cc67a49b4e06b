//! Branding, guides, labels and the IT admin's wording (issue 14, points 5 and 6): the vendor's
//! brand set through the admin API and the CLI reaches the setup landing page and the IT
//! admin's pages; the accent stylesheet and the logo are served safely; the guides show the
//! tenant's real base URL; the IT admin's log has no command to run; the user page labels its
//! attributes for people.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

#[allow(clippy::wildcard_imports)]
use crate::browser::*;
use crate::console::{
    csrf_of, get, http, operator, set_cookie, setup_link, sign_in_key, use_setup_link,
};
use crate::harness::{full_user, TestServer, ENTERPRISE_URN};

/// A 4×4 PNG in the accent colour.
const PNG: [u8; 75] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x06, 0x00, 0x00, 0x00, 0xa9, 0xf1, 0x9e,
    0x7e, 0x00, 0x00, 0x00, 0x12, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x88, 0xd6, 0x6a, 0xfb,
    0x8f, 0x8c, 0x19, 0x48, 0x17, 0x00, 0x00, 0x43, 0x80, 0x20, 0xa1, 0xfb, 0x58, 0xb8, 0x34, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// An SVG logo that would run a script if anything let it.
const SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"96\" height=\"28\" \
    viewBox=\"0 0 96 28\"><script>alert(1)</script><rect width=\"28\" height=\"28\" rx=\"6\" \
    fill=\"#ffffff\"/><text x=\"36\" y=\"20\" font-family=\"sans-serif\" font-size=\"16\" \
    fill=\"#ffffff\">ACME</text></svg>";

/// The value of the first `attr="…"` after `marker` in `html`.
fn attr_after(html: &str, marker: &str, attr: &str) -> String {
    html.split(marker)
        .nth(1)
        .and_then(|s| s.split(&format!("{attr}=\"")).nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {attr} after {marker} in {html}"))
        .replace("&#38;", "&")
}

/// The page's text a person reads: the markup without its tags, scripts and attributes.
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut tag = false;
    for c in html.chars() {
        match c {
            '<' => tag = true,
            '>' => {
                tag = false;
                out.push(' ');
            }
            c if !tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Polls the page at `path` until it contains `want` (another process's change reaches the
/// server within its sync interval).
async fn page_with(o: &str, path: &str, jar: &str, want: &str) -> String {
    let start = Instant::now();
    loop {
        let page = get(o, path, jar).await.text().await.unwrap();
        if page.contains(want) {
            return page;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{want:?} never appeared in {path}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: set, refuse, show, change from the CLI
async fn branding_reaches_the_setup_page_and_the_it_admin_view() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();

    let r = s.admin(&key, Method::GET, "/branding", None).await;
    r.expect(200);
    assert_eq!(r.json, json!({"name": null, "accent": null, "logo": null}));

    // Every bad field at once, each named.
    let r = s
        .admin(
            &key,
            Method::PUT,
            "/branding",
            Some(json!({"name": "  ", "accent": "red"})),
        )
        .await;
    r.expect(400);
    let fields: Vec<&str> = r.json["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "accent"], "{}", r.text);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("#rrggbb"));

    let r = s
        .admin(
            &key,
            Method::PUT,
            "/branding",
            Some(json!({"name": "Acme Cloud", "accent": "#5B2A86"})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["name"], "Acme Cloud");
    assert_eq!(r.json["accent"], "#5b2a86");

    // The logo: an image's bytes, at most 256 KiB.
    let put_logo = |body: Vec<u8>| {
        s.client
            .put(format!("{o}/api/v1/branding/logo"))
            .bearer_auth(&key)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let r = put_logo(b"hello".to_vec()).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["details"]["errors"][0]["field"], "logo");
    let mut big = PNG.to_vec();
    big.resize(300 * 1024, 0);
    let r = put_logo(big).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("256 KiB"),
        "{v}"
    );
    let r = put_logo(PNG.to_vec()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["logo"]["content_type"], "image/png");
    assert_eq!(v["logo"]["bytes"], 75);
    let logo_url = v["logo"]["url"].as_str().unwrap().to_owned();

    // The setup landing page names the vendor and the organisation, before the link is used.
    let globex = s.create_tenant("Globex");
    let gid = globex["tenant"].as_str().unwrap().to_owned();
    let link = setup_link(&s, &gid);
    let page = http()
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(
            "Acme Cloud invites you, the IT admin of <strong>Globex</strong>, to connect your \
             identity provider to Acme Cloud"
        ),
        "{page}"
    );
    assert!(page.contains(&format!("src=\"{logo_url}\"")), "{page}");
    assert!(!visible(&page).contains("Roster"), "{page}");
    assert!(page.contains("<title>Set up provisioning · Acme Cloud setup</title>"));

    // The IT admin's pages: the brand in the header, its stylesheet, the real base URL.
    let jar = set_cookie(&use_setup_link(&o, &link).await).unwrap();
    let scim = get(&o, &format!("/console/t/{gid}/settings/connection"), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(scim.contains("id=\"brand-logo\""), "{scim}");
    assert!(
        scim.contains("Acme Cloud <span class=\"brand-sub\">"),
        "{scim}"
    );
    let shown = visible(&scim);
    assert!(!shown.contains("Roster"), "{shown}");
    assert!(!scim.contains("scim.example.com"), "{scim}");
    assert!(!scim.contains("see the rules below"), "{scim}");
    let base = format!("{o}/scim/v2/{gid}");
    assert!(scim.contains(&format!("<code>{base}</code>")), "{scim}");

    let css_href = attr_after(&scim, "console.js", "href");
    assert!(
        css_href.starts_with("/console/assets/brand.css?v="),
        "{css_href}"
    );
    let r = http().get(format!("{o}{css_href}")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let css = r.text().await.unwrap();
    assert!(
        css.contains("header.top { background: #5b2a86; color: #ffffff; }"),
        "{css}"
    );
    assert_eq!(css.matches('{').count(), css.matches('}').count(), "{css}");

    let r = http().get(format!("{o}{logo_url}")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG.as_slice());

    // The CLI: the same operations; another process's change reaches the server.
    let svg = s.dir.path().join("logo.svg");
    std::fs::write(&svg, SVG).unwrap();
    s.cli_ok(&["branding", "logo", svg.to_str().unwrap()]);
    s.cli_ok(&[
        "branding", "set", "--name", "Initech", "--accent", "#ffcc00",
    ]);
    let out = s.cli(&["branding", "set", "--accent", "yellow"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("#rrggbb"));
    let shown: Value =
        serde_json::from_str(s.cli_ok(&["branding", "show", "--json"]).trim()).unwrap();
    assert_eq!(shown["name"], "Initech");
    assert_eq!(shown["accent"], "#ffcc00");
    assert_eq!(shown["logo"]["content_type"], "image/svg+xml");

    let scim = page_with(&o, &format!("/console/t/{gid}"), &jar, "Initech").await;
    let css_href = attr_after(&scim, "console.js", "href");
    let css = http()
        .get(format!("{o}{css_href}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Black text on a light accent, and links keep the console's own colour.
    assert!(css.contains("color: #000000"), "{css}");
    assert!(!css.contains("--accent"), "{css}");
    // An SVG logo is served with a policy under which its script never runs.
    let logo = attr_after(&scim, "class=\"brand\"", "src");
    let r = http().get(format!("{o}{logo}")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    // Operators keep Roster's own header.
    let ops = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let page = get(&o, &format!("/console/t/{gid}"), &ops)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Roster <span class=\"brand-sub\">SCIM console</span>"));
    assert!(!page.contains("brand.css"));

    // Removing it all: the IT admin's view goes neutral, and still says no "Roster".
    s.admin(&key, Method::DELETE, "/branding", None)
        .await
        .expect(200);
    let r = http().get(format!("{o}{logo}")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let scim = get(&o, &format!("/console/t/{gid}"), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(scim.contains(">SCIM setup</a>"), "{scim}");
    assert!(!visible(&scim).contains("Roster"), "{scim}");
    assert!(!scim.contains("brand.css"));
}

#[tokio::test]
async fn the_it_admin_reads_plain_hints_and_labelled_attributes() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    // A refused token (a hint that names the CLI for operators), and a user of the
    // enterprise extension whose manager does not exist.
    let r = s
        .client
        .get(format!("{}/Users", s.base))
        .bearer_auth("rst_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let u = s
        .create_user(&full_user("bjensen", Some("no-such-user")))
        .await;
    let id = u["id"].as_str().unwrap().to_owned();

    let admin = set_cookie(&use_setup_link(&o, &setup_link(&s, "acme")).await).unwrap();
    let log = page_with(&o, "/console/t/acme/log", &admin, "What to do").await;
    assert!(log.contains("choose Regenerate token"), "{log}");
    for bad in ["roster ", "`", "TENANT", "--reads"] {
        assert!(!visible(&log).contains(bad), "{bad:?} in {log}");
    }
    let ops = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let log = page_with(&o, "/console/t/acme/log", &ops, "What to do").await;
    assert!(log.contains("roster token rotate TENANT"), "{log}");

    let page = get(&o, &format!("/console/t/acme/users/{id}"), &admin)
        .await
        .text()
        .await
        .unwrap();
    let attrs = page.split("id=\"h-roles\"").next().unwrap();
    for (label, path) in [
        ("Email", "emails[0].value"),
        ("Given name", "name.givenName"),
        ("Job title", "title"),
        ("Employee number", "employeeNumber"),
        ("Department", "department"),
        ("Manager", "manager.value"),
    ] {
        assert!(
            attrs.contains(&format!(
                "<dt>{label} <span class=\"ro\" title=\"Managed by Okta: read-only here\">read-only</span> <span class=\"attr-path\">{path}</span></dt>"
            )) || attrs.contains(&format!("<dt>{label} <span class=\"ro\"")),
            "{label} ({path}) in {attrs}"
        );
        assert!(attrs.contains(&format!("<span class=\"attr-path\">{path}</span>")));
    }
    // The extension's URN once, as its group's heading; every attribute read-only.
    assert_eq!(attrs.matches(ENTERPRISE_URN).count(), 1, "{attrs}");
    assert_eq!(
        attrs.matches("<dt>").count() - 3,
        attrs.matches(">read-only</span>").count(),
        "{attrs}"
    );
    // A manager who does not exist is text, not a link to a 404.
    assert!(attrs.contains("<dd>no-such-user</dd>"), "{attrs}");
    assert!(!attrs.contains("users/no-such-user"));
    let csrf = csrf_of(&page);
    assert!(!csrf.is_empty());
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one journey through the IT admin's branded pages
async fn console_brand_in_chromium() {
    let Some(driver) = start_driver() else {
        return;
    };
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    s.admin(
        &key,
        Method::PUT,
        "/branding",
        Some(json!({"name": "Acme Cloud", "accent": "#5b2a86"})),
    )
    .await
    .expect(200);
    let svg = s.dir.path().join("logo.svg");
    std::fs::write(&svg, SVG).unwrap();
    s.cli_ok(&["branding", "logo", svg.to_str().unwrap()]);
    let globex: Value = serde_json::from_str(
        s.cli_ok(&["tenant", "create", "Globex", "--idp", "entra", "--json"])
            .trim(),
    )
    .unwrap();
    let gid = globex["tenant"].as_str().unwrap().to_owned();
    let token = globex["token"].as_str().unwrap().to_owned();
    let base = globex["scim_base_url"].as_str().unwrap().to_owned();
    let r = s
        .client
        .post(format!("{base}/Users"))
        .bearer_auth(&token)
        .header("content-type", crate::harness::SCIM_JSON)
        .json(&full_user("bjensen", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let _ = operator(&s, "ops@example.com");

    let c = connect(&driver).await;
    c.set_window_size(1280, 1000).await.unwrap();
    c.goto(&setup_link(&s, &gid)).await.unwrap();
    wait_text(&c, "Acme Cloud invites you").await;
    assert!(text(&c, "#setup-invite")
        .await
        .contains("IT admin of Globex"));
    let logo_ok = js(
        &c,
        "const i = document.querySelector('#brand-logo'); return !!i && i.complete && i.naturalWidth > 0;",
    )
    .await;
    assert_eq!(logo_ok, json!(true));
    let bg = js(
        &c,
        "return getComputedStyle(document.querySelector('header.top')).backgroundColor",
    )
    .await;
    assert_eq!(bg, json!("rgb(91, 42, 134)"));
    shoot(&c, "B01-setup-landing").await;

    click(&c, "#continue").await;
    css(&c, "#base-url").await;
    assert!(text(&c, "header.top").await.contains("Acme Cloud"));
    c.goto(&format!("{o}/console/t/{gid}/settings/connection"))
        .await
        .unwrap();
    let guide = text(&c, "#guide-entra").await;
    assert!(guide.contains(&format!("{o}/scim/v2/{gid}")), "{guide}");
    assert!(!guide.contains("scim.example.com"), "{guide}");
    assert!(!guide.contains("Roster"), "{guide}");
    shoot(&c, "B02-it-admin-scim").await;

    c.goto(&format!("{o}/console/t/{gid}/users/{id}"))
        .await
        .unwrap();
    wait_text(&c, "Employee number").await;
    shoot(&c, "B03-it-admin-user").await;
    c.close().await.unwrap();
}
