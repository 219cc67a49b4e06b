//! A real headless Chromium driven through WebDriver (chromedriver on a free loopback port) for
//! the console's browser tests, and what every page visited must get right.
//!
//! Each browser test starts its own driver (`start_driver`, `connect`), saves a screenshot of
//! every page at 1280 and 390 pixels (`shoot`) to `artifacts/e2e/`, and checks the page there.
//! Without Chromium a test fails under `CI=true` and skips loudly otherwise (scripts/e2e.sh
//! installs Debian's chromium and chromium-driver).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

fn find_exe(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/lib/chromium")]) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver on a free port, killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
    chrome: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_driver() -> Option<Driver> {
    let (Some(driver), Some(chrome)) = (
        find_exe(&["chromedriver"]),
        find_exe(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        let msg = "chromium / chromedriver not found (scripts/e2e.sh installs Debian's \
                   chromium and chromium-driver)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: the console e2e test needs a browser: {msg}"
        );
        eprintln!("\n\n!!!!!!!! SKIPPING the console e2e test: {msg} !!!!!!!!\n\n");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        profile: tempfile::tempdir().unwrap(),
        chrome,
    })
}

pub(crate) async fn connect(d: &Driver) -> Client {
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "binary": d.chrome,
            // The machine's network is closed: no background traffic, no component updates.
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--hide-scrollbars",
                "--force-device-scale-factor=1",
                format!("--user-data-dir={}", d.profile.path().display()),
            ]
        }
    }))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&d.url)
            .await
        {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "could not start Chromium: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

pub(crate) fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a page must get right: a title, one h1, a main landmark, a label for every field, a
/// name for every button, unique ids, and no sideways scrolling at the current width.
pub(crate) const A11Y_CHECK: &str = r#"
const problems = [];
if (!document.documentElement.lang) problems.push("no lang on <html>");
if (!document.title.trim()) problems.push("empty <title>");
if (document.querySelectorAll("h1").length !== 1) problems.push(document.querySelectorAll("h1").length + " h1 elements");
if (!document.querySelector("main")) problems.push("no <main>");
for (const el of document.querySelectorAll("input, select, textarea")) {
  if (el.type === "hidden") continue;
  const named = (el.labels && el.labels.length > 0) || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
  if (!named) problems.push("no label: " + el.outerHTML.slice(0, 120));
}
for (const el of document.querySelectorAll("button, a[href]")) {
  const name = (el.textContent || "").trim() || el.getAttribute("aria-label");
  if (!name) problems.push("no accessible name: " + el.outerHTML.slice(0, 120));
}
const ids = {};
for (const el of document.querySelectorAll("[id]")) {
  if (ids[el.id]) problems.push("duplicate id " + el.id);
  ids[el.id] = true;
}
if (document.documentElement.scrollWidth > window.innerWidth + 1) {
  const wide = [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
    .filter(el => ![...el.children].some(ch => ch.getBoundingClientRect().right > window.innerWidth + 1))
    .slice(0, 3).map(el => el.outerHTML.slice(0, 100));
  problems.push("scrolls sideways: " + document.documentElement.scrollWidth + "px content in " + window.innerWidth + "px: " + wide.join(" | "));
}
return problems;
"#;

/// Screenshots the whole current page at desktop and phone widths, checking it at both.
pub(crate) async fn shoot(c: &Client, name: &str) {
    for w in [1280u32, 390] {
        c.set_window_size(w, 900).await.unwrap();
        // Grow the window until the whole page fits in the viewport (the window is a little
        // taller than its viewport, by an amount that depends on the browser).
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let m = c
                .execute(
                    "return [document.documentElement.scrollHeight, window.innerHeight, window.outerHeight]",
                    vec![],
                )
                .await
                .unwrap();
            let n = |i: usize| m[i].as_u64().unwrap_or(900);
            let (page, inner, outer) = (n(0), n(1), n(2));
            if inner >= page || outer >= 8000 {
                break;
            }
            let h = (outer + page - inner).min(8000);
            c.set_window_size(w, u32::try_from(h).unwrap())
                .await
                .unwrap();
        }
        c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
        let problems = c.execute(A11Y_CHECK, vec![]).await.unwrap();
        assert_eq!(problems, json!([]), "{name} at {w}px");
        let violations = axe(c).await;
        assert_eq!(violations, json!([]), "axe-core on {name} at {w}px");
        let png = c.screenshot().await.unwrap();
        std::fs::write(artifacts().join(format!("{name}-{w}.png")), png).unwrap();
    }
    c.set_window_size(1280, 1000).await.unwrap();
}

pub(crate) async fn css(c: &Client, sel: &str) -> Element {
    match c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(sel))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let page = c.source().await.unwrap_or_default();
            panic!("no element {sel} on {url}: {e}\n{page}");
        }
    }
}

pub(crate) async fn fill(c: &Client, sel: &str, text: &str) {
    css(c, sel).await.send_keys(text).await.unwrap();
}

pub(crate) async fn choose(c: &Client, sel: &str, value: &str) {
    css(c, sel).await.select_by_value(value).await.unwrap();
}

pub(crate) async fn click(c: &Client, sel: &str) {
    css(c, sel).await.click().await.unwrap();
}

pub(crate) async fn value(c: &Client, sel: &str) -> String {
    css(c, sel)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

pub(crate) async fn text(c: &Client, sel: &str) -> String {
    css(c, sel).await.text().await.unwrap()
}

pub(crate) async fn source(c: &Client) -> String {
    c.source().await.unwrap()
}

pub(crate) async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Waits until the page contains `want` (after a form submission or a redirect).
pub(crate) async fn wait_text(c: &Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = source(c).await;
        if page.contains(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "page never showed {want:?}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

/// axe-core's source (scripts/axe, installed by scripts/e2e.sh), read once.
fn axe_source() -> Option<&'static str> {
    static SRC: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SRC.get_or_init(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/axe/node_modules/axe-core/axe.min.js");
        match std::fs::read_to_string(&p) {
            Ok(s) => Some(s),
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true: the console e2e tests need axe-core at {}: {e} (scripts/e2e.sh installs it)",
                    p.display()
                );
                eprintln!("\n\n!!!!!!!! SKIPPING axe-core checks: {} not found ({e}); run scripts/e2e.sh !!!!!!!!\n\n", p.display());
                None
            }
        }
    })
    .as_deref()
}

/// The current page's serious and critical axe-core violations (WCAG 2.1 A and AA rules), each
/// as its rule id, its help text and the first offending elements; empty when there are none.
pub(crate) async fn axe(c: &Client) -> Value {
    let Some(src) = axe_source() else {
        return json!([]);
    };
    // Injected by WebDriver, so the console's CSP (script-src 'self') does not apply to it.
    let loaded = c
        .execute("return typeof window.axe === 'object'", vec![])
        .await
        .unwrap();
    if loaded != json!(true) {
        c.execute(&format!("{src}\n;return true;"), vec![])
            .await
            .unwrap();
    }
    c.execute_async(
        r"const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}, resultTypes: ['violations']})
          .then(r => done(r.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ' (' + v.impact + '): ' + v.help + ': '
              + v.nodes.slice(0, 3).map(n => n.html.slice(0, 120)).join(' | '))))
          .catch(e => done(['axe failed: ' + e]));",
        vec![],
    )
    .await
    .unwrap()
}

/// The accessibility checks can fail: a page with known violations is reported by both.
#[tokio::test]
async fn the_page_checks_catch_known_violations() {
    let Some(driver) = start_driver() else {
        return;
    };
    let c = connect(&driver).await;
    let page = "<!doctype html><html><head><title>t</title></head><body><main><h1>x</h1>\
                <p style='color:#bbb;background:#fff'>low contrast text</p>\
                <img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='>\
                <input id='a'></main></body></html>";
    c.goto(&format!("data:text/html,{}", urlencode(page)))
        .await
        .unwrap();
    let own = c.execute(A11Y_CHECK, vec![]).await.unwrap();
    assert!(
        own.to_string().contains("no label"),
        "the layout check missed an unlabelled field: {own}"
    );
    if axe_source().is_some() {
        let found = axe(&c).await.to_string();
        for rule in ["color-contrast", "image-alt", "label"] {
            assert!(found.contains(rule), "axe-core missed {rule}: {found}");
        }
    }
    c.close().await.unwrap();
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
