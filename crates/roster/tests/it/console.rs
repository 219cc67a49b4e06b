//! The web console: end to end in a real headless Chromium driven through WebDriver
//! (chromedriver on a free loopback port), and HTTP-level checks of sessions, CSRF, origins,
//! scope and sign-in throttling.
//!
//! The browser test saves a screenshot of every page it visits, at 1280 and 390 pixels wide,
//! to `artifacts/e2e/` at the workspace root, and checks each page for missing labels,
//! unnamed buttons, duplicate ids and sideways scrolling. Without Chromium it fails under
//! `CI=true` and skips loudly otherwise (scripts/e2e.sh installs Debian's chromium and
//! chromium-driver).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[allow(clippy::wildcard_imports)]
use crate::browser::*;
use crate::harness::{TestServer, SCIM_JSON, USER_URN};

const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

pub(crate) async fn scim_user(
    s: &TestServer,
    base: &str,
    token: &str,
    name: &str,
) -> reqwest::Response {
    s.client
        .post(format!("{base}/Users"))
        .bearer_auth(token)
        .header("content-type", SCIM_JSON)
        .json(&json!({"schemas": [USER_URN], "userName": name,
            "name": {"givenName": name, "familyName": "Example"},
            "displayName": format!("{name} Example"),
            "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}]}))
        .send()
        .await
        .unwrap()
}

pub(crate) fn operator(s: &TestServer, email: &str) -> String {
    let out = s.cli_ok(&["operator", "add", email, "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    v["password"].as_str().unwrap().to_owned()
}

/// Opens a setup link as an IT admin would: its page, then *Continue* (the POST that uses it).
pub(crate) async fn use_setup_link(o: &str, link: &str) -> reqwest::Response {
    let r = http().get(link).send().await.unwrap();
    let pre = set_cookie(&r).unwrap();
    let pre_csrf = csrf_of(&r.text().await.unwrap());
    http()
        .post(format!("{o}/console/setup"))
        .header("cookie", &pre)
        .form(&[
            ("token", link.rsplit('/').next().unwrap()),
            ("csrf", pre_csrf.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

pub(crate) fn setup_link(s: &TestServer, tenant: &str) -> String {
    let out = s.cli_ok(&["tenant", "setup-link", tenant, "--expires", "1h", "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    v["url"].as_str().unwrap().to_owned()
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one user journey, top to bottom
async fn console_end_to_end_in_chromium() {
    let Some(driver) = start_driver() else {
        return;
    };
    let s = TestServer::start().await;
    s.create_tenant("Globex");
    let password = operator(&s, "ops@example.com");
    let c = connect(&driver).await;
    c.set_window_size(1280, 1000).await.unwrap();
    let o = s.origin.clone();

    // Not signed in: the sign-in page. The first Tab reaches the skip link.
    c.goto(&format!("{o}/console/t/acme/users")).await.unwrap();
    css(&c, "#email").await;
    assert_eq!(path(&c).await, "/console/sign-in");
    js(&c, "document.activeElement.blur()").await;
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{e004}")
        .await
        .unwrap();
    assert_eq!(
        js(&c, "return document.activeElement.className").await,
        json!("skip"),
        "the first Tab stop is the skip link"
    );
    shoot(&c, "01-sign-in").await;

    // A wrong password is refused and says so.
    fill(&c, "#email", "ops@example.com").await;
    fill(&c, "#password", "not the password").await;
    click(&c, "#sign-in").await;
    assert!(text(&c, "#sign-in-error").await.contains("wrong"));
    shoot(&c, "02-sign-in-refused").await;

    // Sign in: back to the page asked for first.
    fill(&c, "#password", &password).await;
    click(&c, "#sign-in").await;
    css(&c, "#users").await;
    assert_eq!(path(&c).await, "/console/t/acme/users");

    // Tenants; create one from the console (SCIM starts off).
    c.goto(&format!("{o}/console/tenants")).await.unwrap();
    let page = source(&c).await;
    assert!(page.contains("Globex") && page.contains("acme"), "{page}");
    shoot(&c, "03-tenants").await;
    fill(&c, "#new-name", "Initech").await;
    choose(&c, "#new-idp", "okta").await;
    click(&c, "#create-tenant").await;
    wait_text(&c, "Tenant created.").await;
    assert_eq!(path(&c).await, "/console/t/initech");
    assert!(text(&c, "#connection").await.contains("No request"));
    shoot(&c, "04-new-tenant").await;

    // Enable SCIM: the token is on the page, once, with its warning.
    click(&c, "#enable-scim").await;
    let token = value(&c, "#new-token").await;
    assert!(token.starts_with("rsct_"), "{token}");
    assert!(source(&c).await.contains("shown only once"));
    let base = value(&c, "#base-url").await;
    assert_eq!(base, format!("{o}/scim/v2/initech"));
    shoot(&c, "05-token-shown-once").await;
    assert!(
        text(&c, "#tokens").await.contains(&token[..13]),
        "the token's prefix is listed"
    );

    // The identity-provider picker switches the steps at once, and saving keeps the choice.
    assert_eq!(
        js(&c, "return document.getElementById('guide-entra').hidden").await,
        json!(true)
    );
    choose(&c, "#idp", "entra").await;
    assert_eq!(
        js(&c, "return document.getElementById('guide-entra').hidden").await,
        json!(false)
    );
    assert_eq!(
        js(&c, "return document.getElementById('guide-okta').hidden").await,
        json!(true)
    );
    assert!(text(&c, "#guide-entra")
        .await
        .contains("Enterprise applications"));
    click(&c, "#save-idp").await;
    wait_text(&c, "Identity provider saved.").await;
    assert_eq!(value(&c, "#idp").await, "entra");
    assert!(
        !source(&c).await.contains(&token),
        "the token is not shown again"
    );

    // Provision through SCIM with the token read from the page; one existing app user too.
    for name in ["alice", "bob", "carol"] {
        assert_eq!(
            scim_user(&s, &base, &token, name).await.status().as_u16(),
            201
        );
    }
    let users: Value = s
        .client
        .get(format!("{base}/Users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let members: Vec<Value> = users["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| json!({"value": u["id"]}))
        .collect();
    let g = s
        .client
        .post(format!("{base}/Groups"))
        .bearer_auth(&token)
        .header("content-type", SCIM_JSON)
        .json(&json!({"schemas": [GROUP_URN], "displayName": "Engineering", "members": members}))
        .send()
        .await
        .unwrap();
    assert_eq!(g.status().as_u16(), 201);
    let file = s.dir.path().join("existing.jsonl");
    std::fs::write(
        &file,
        "{\"user_name\": \"dana@example.com\", \"email\": \"dana@example.com\"}\n",
    )
    .unwrap();
    s.cli_ok(&["users", "import", "initech", file.to_str().unwrap()]);

    // A role mapping from the console: Engineering's members become engineers. Without
    // roles it is refused, and the group typed stays, the error at the roles field.
    c.goto(&format!("{o}/console/t/initech")).await.unwrap();
    fill(&c, "#new-value", "Engineering").await;
    fill(&c, "#new-roles", " , ").await;
    click(&c, "#add-mapping").await;
    wait_text(&c, "Nothing was saved: 1 problem to fix.").await;
    assert_eq!(value(&c, "#new-value").await, "Engineering");
    assert!(text(&c, "#new-roles-error")
        .await
        .contains("Roles must name at least one role"));
    css(&c, "#new-roles").await.clear().await.unwrap();
    fill(&c, "#new-roles", "engineer, deploy").await;
    click(&c, "#add-mapping").await;
    wait_text(&c, "Role mapping added.").await;
    assert!(text(&c, "#mappings").await.contains("engineer"));
    // Deleting a mapping asks in the console's dialog (Cancel keeps it), never confirm().
    fill(&c, "#new-value", "Temporary").await;
    fill(&c, "#new-roles", "temp").await;
    click(&c, "#add-mapping").await;
    wait_text(&c, "Temporary").await;
    let delete = "button[aria-label='Delete the mapping of Temporary']";
    click(&c, delete).await;
    assert_eq!(
        js(&c, "return document.getElementById('dlg-confirm').open").await,
        json!(true)
    );
    assert!(text(&c, "#dlg-confirm-d")
        .await
        .contains("Delete the mapping of Temporary?"));
    shoot(&c, "07b-mapping-delete-dialog").await;
    click(&c, "#dlg-confirm button[value=cancel]").await;
    assert!(text(&c, "#mappings").await.contains("Temporary"));
    click(&c, delete).await;
    click(&c, "#dlg-confirm-ok").await;
    wait_text(&c, "Role mapping deleted.").await;
    assert!(!text(&c, "#mappings").await.contains("Temporary"));
    // Connection status: the newest request (the log is written asynchronously).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = text(&c, "#connection").await;
        if status.contains("201 OK") && status.contains("POST /scim/v2/initech/Groups") {
            break;
        }
        assert!(Instant::now() < deadline, "connection status: {status}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.refresh().await.unwrap();
    }
    shoot(&c, "06-scim-settings").await;

    // Users appear with their badges: SCIM for the provisioned ones, App for the imported one.
    c.goto(&format!("{o}/console/t/initech/users"))
        .await
        .unwrap();
    let table = text(&c, "#users").await;
    for name in ["alice", "bob", "carol", "dana@example.com"] {
        assert!(table.contains(name), "{name} missing: {table}");
    }
    let badges = js(
        &c,
        "return [...document.querySelectorAll('#users tbody tr')].map(r => \
         r.querySelector('td').textContent.trim() + ':' + r.querySelector('.badge.scim, .badge.app').textContent)",
    )
    .await;
    for want in [
        "alice:SCIM",
        "bob:SCIM",
        "carol:SCIM",
        "dana@example.com:App",
    ] {
        assert!(
            badges.as_array().unwrap().contains(&json!(want)),
            "{badges}"
        );
    }
    shoot(&c, "07-users").await;
    fill(&c, "#q", "bob").await;
    click(&c, "#apply-filters").await;
    wait_text(&c, "1 user shown").await;
    let table = text(&c, "#users").await;
    assert!(table.contains("bob") && !table.contains("carol"), "{table}");
    c.goto(&format!("{o}/console/t/initech/users?source=app"))
        .await
        .unwrap();
    let table = text(&c, "#users").await;
    assert!(
        table.contains("dana") && !table.contains("alice"),
        "{table}"
    );

    // A user's page: read-only managed attributes, groups, effective roles and where they
    // come from, and its history.
    c.goto(&format!("{o}/console/t/initech/users?q=bob"))
        .await
        .unwrap();
    click(&c, "#users tbody a").await;
    css(&c, "#attributes").await;
    assert!(text(&c, "#managed-note").await.contains("read-only"));
    assert!(
        js(
            &c,
            "return document.querySelectorAll('#attributes .ro').length"
        )
        .await
        .as_u64()
        .unwrap()
            >= 3,
        "the IdP-owned attributes are marked read-only"
    );
    assert!(
        !source(&c).await.contains("id=\"edit-user\""),
        "no edit form for a SCIM user"
    );
    assert!(text(&c, "#user-groups").await.contains("Engineering"));
    let roles = text(&c, "#effective-roles").await;
    assert!(
        roles.contains("engineer") && roles.contains("from group Engineering"),
        "{roles}"
    );
    assert!(text(&c, "#log")
        .await
        .contains("POST /scim/v2/initech/Users"));
    // Roles assigned in the app stay editable on a managed user.
    fill(&c, "#direct-roles", "billing").await;
    click(&c, "#save-roles").await;
    wait_text(&c, "Roles saved.").await;
    let roles = text(&c, "#effective-roles").await;
    assert!(
        roles.contains("billing") && roles.contains("assigned in the app"),
        "{roles}"
    );
    shoot(&c, "08-user").await;

    // An app user (not managed by SCIM) is editable.
    c.goto(&format!("{o}/console/t/initech/users?source=app"))
        .await
        .unwrap();
    click(&c, "#users tbody a").await;
    click(&c, "#edit-user summary").await;
    fill(&c, "#display_name", "Dana Scully").await;
    click(&c, "#save-user").await;
    wait_text(&c, "User saved.").await;
    assert!(text(&c, "#attributes").await.contains("Dana Scully"));
    shoot(&c, "09-app-user").await;

    // Groups with member counts, and a group's members.
    c.goto(&format!("{o}/console/t/initech/groups"))
        .await
        .unwrap();
    let row = text(&c, "#groups tbody tr").await;
    assert!(
        row.contains("Engineering") && row.contains('3') && row.contains("engineer"),
        "{row}"
    );
    shoot(&c, "10-groups").await;
    click(&c, "#groups tbody a").await;
    css(&c, "#members").await;
    let members = text(&c, "#members").await;
    assert!(
        members.contains("alice") && members.contains("carol"),
        "{members}"
    );
    assert_eq!(text(&c, "#member-count").await, "3");
    shoot(&c, "11-group").await;

    // A group without roles links to the role-mapping form, filled in with its name.
    let support: Value = s
        .client
        .post(format!("{base}/Groups"))
        .bearer_auth(&token)
        .header("content-type", SCIM_JSON)
        .json(&json!({"schemas": [GROUP_URN], "displayName": "Support & Care"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    c.goto(&format!(
        "{o}/console/t/initech/groups/{}",
        support["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    click(&c, "#map-roles").await;
    css(&c, "#new-value").await;
    assert_eq!(value(&c, "#new-value").await, "Support & Care");
    assert_eq!(path(&c).await, "/console/t/initech");

    // Regenerate: a modal confirmation (Escape cancels), then the old token dies at once.
    c.goto(&format!("{o}/console/t/initech")).await.unwrap();
    click(&c, "#regenerate").await;
    assert_eq!(
        js(
            &c,
            "return document.getElementById('dlg-regen').matches(':modal')"
        )
        .await,
        json!(true)
    );
    shoot(&c, "12-regenerate-dialog").await;
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{e00c}")
        .await
        .unwrap();
    assert_eq!(
        js(&c, "return document.getElementById('dlg-regen').open").await,
        json!(false),
        "Escape closes the dialog"
    );
    assert_eq!(
        scim_user(&s, &base, &token, "still-works")
            .await
            .status()
            .as_u16(),
        201,
        "cancelling changed nothing"
    );
    click(&c, "#regenerate").await;
    click(&c, "#confirm-regenerate").await;
    wait_text(&c, "The old one stopped working").await;
    let token2 = value(&c, "#new-token").await;
    assert!(token2.starts_with("rsct_") && token2 != token);
    assert_eq!(
        scim_user(&s, &base, &token, "dave").await.status().as_u16(),
        401
    );
    assert_eq!(
        scim_user(&s, &base, &token2, "erin")
            .await
            .status()
            .as_u16(),
        201
    );

    // The refused request is in the provisioning log, explained (the log is written
    // asynchronously, so wait for it).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        c.goto(&format!("{o}/console/t/initech/log?outcome=failure"))
            .await
            .unwrap();
        let log = text(&c, "#log").await;
        if log.contains("401") && log.contains("What to do") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "refused request not in the log: {log}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!text(&c, "#log").await.contains("201 OK"), "only failures");
    click(&c, "#log details summary").await;
    assert!(text(&c, "#log").await.contains("Token presented"));
    shoot(&c, "13-log-failures").await;
    c.goto(&format!("{o}/console/t/initech/log?user=alice"))
        .await
        .unwrap();
    let log = text(&c, "#log").await;
    assert!(log.contains("alice") && !log.contains("bob"), "{log}");
    c.goto(&format!("{o}/console/t/initech/log")).await.unwrap();
    shoot(&c, "14-log").await;
    c.goto(&format!("{o}/console/t/initech")).await.unwrap();
    assert!(text(&c, "#recent-failures")
        .await
        .contains("failed request"));

    // Settings go through the tenants API: turn group sync off.
    assert_eq!(
        css(&c, "#groups_enabled")
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    click(&c, "#groups_enabled").await;
    click(&c, "#save-settings").await;
    wait_text(&c, "Settings saved.").await;
    assert_ne!(
        css(&c, "#groups_enabled")
            .await
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    let r = s
        .client
        .get(format!("{base}/Groups"))
        .bearer_auth(&token2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "groups are off");
    // A refused form keeps its input and shows the field error: two bad values are both
    // reported, each next to its field, with what was typed still in it; nothing changes.
    css(&c, "#token_ttl_days").await.clear().await.unwrap();
    fill(&c, "#token_ttl_days", "0").await;
    css(&c, "#guard_max_percent").await.clear().await.unwrap();
    fill(&c, "#guard_max_percent", "150").await;
    click(&c, "#welcome_email").await;
    let welcome = js(
        &c,
        "return document.getElementById('welcome_email').checked",
    )
    .await;
    click(&c, "#save-settings").await;
    wait_text(&c, "Nothing was saved: 2 problems to fix.").await;
    assert_eq!(value(&c, "#token_ttl_days").await, "0");
    assert_eq!(value(&c, "#guard_max_percent").await, "150");
    assert_eq!(
        js(
            &c,
            "return document.getElementById('welcome_email').checked"
        )
        .await,
        welcome,
        "a ticked or unticked box stays as it was sent"
    );
    assert!(text(&c, "#token_ttl_days-error")
        .await
        .contains("The token lifetime (days) must be a whole number from 1 to 3,650"));
    assert!(text(&c, "#guard_max_percent-error")
        .await
        .contains("from 1 to 100"));
    assert_eq!(
        js(
            &c,
            "var i = document.getElementById('token_ttl_days'); \
             return [i.getAttribute('aria-invalid'), i.getAttribute('aria-describedby')]"
        )
        .await,
        json!(["true", "token_ttl_days-error"])
    );
    // The summary is an alert at the top of the settings section, not of the page.
    assert_eq!(
        js(
            &c,
            "var e = document.getElementById('form-errors'); \
             return [e.getAttribute('role'), e.closest('section').getAttribute('aria-labelledby')]"
        )
        .await,
        json!(["alert", "h-settings"])
    );
    shoot(&c, "14b-settings-refused").await;
    // Reloading that answer's address (a POST-only path) goes back to the form.
    c.goto(&format!("{o}/console/t/initech/settings"))
        .await
        .unwrap();
    assert_eq!(path(&c).await, "/console/t/initech");
    assert_eq!(
        value(&c, "#token_ttl_days").await,
        "365",
        "nothing was saved"
    );

    // Disable SCIM, confirmed in its dialog: every token stops working.
    c.goto(&format!("{o}/console/t/initech")).await.unwrap();
    click(&c, "#disable-scim").await;
    shoot(&c, "15-disable-dialog").await;
    click(&c, "#confirm-disable").await;
    wait_text(&c, "SCIM is disabled").await;
    css(&c, "#enable-scim").await;
    assert_eq!(
        scim_user(&s, &base, &token2, "frank")
            .await
            .status()
            .as_u16(),
        401
    );

    // A setup link for the operator to send.
    c.goto(&format!("{o}/console/t/initech/setup-link"))
        .await
        .unwrap();
    shoot(&c, "16-setup-link-form").await;
    click(&c, "#create-link").await;
    let link = value(&c, "#setup-url").await;
    assert!(
        link.starts_with(&format!("{o}/console/setup/rssl_")),
        "{link}"
    );
    shoot(&c, "17-setup-link-created").await;

    // Sign out; then the IT admin opens a setup link: that tenant only.
    click(&c, "#sign-out").await;
    css(&c, "#email").await;
    c.goto(&format!("{o}/console/tenants")).await.unwrap();
    assert_eq!(path(&c).await, "/console/sign-in", "signed out");
    c.goto(&link).await.unwrap();
    shoot(&c, "18-setup-link-opened").await;
    click(&c, "#continue").await;
    css(&c, "#base-url").await;
    assert_eq!(path(&c).await, "/console/t/initech");
    assert!(text(&c, "header").await.contains("IT admin"));
    shoot(&c, "19-it-admin").await;
    for other in [
        "/console/t/acme",
        "/console/t/acme/users",
        "/console/t/globex/log",
    ] {
        c.goto(&format!("{o}{other}")).await.unwrap();
        assert!(source(&c).await.contains("Not found"), "{other}");
    }
    c.goto(&format!("{o}/console/tenants")).await.unwrap();
    assert!(source(&c).await.contains("operators only"));
    shoot(&c, "20-not-allowed").await;
    // The IT admin enables SCIM for their organisation.
    c.goto(&format!("{o}/console/t/initech")).await.unwrap();
    click(&c, "#enable-scim").await;
    let token3 = value(&c, "#new-token").await;
    assert_eq!(
        scim_user(&s, &base, &token3, "gina")
            .await
            .status()
            .as_u16(),
        201
    );
    // The IT admin holds the next sync for review: it shows what the app would get, and
    // approving it in its dialog delivers it.
    click(&c, "#first_sync_review").await;
    click(&c, "#save-settings").await;
    wait_text(&c, "Settings saved.").await;
    assert_eq!(
        scim_user(&s, &base, &token3, "hank")
            .await
            .status()
            .as_u16(),
        201
    );
    c.goto(&format!("{o}/console/t/initech")).await.unwrap();
    assert!(text(&c, "#review-summary")
        .await
        .contains("Would create 1 user"));
    assert!(text(&c, "#review-users").await.contains("hank"));
    shoot(&c, "21-first-sync-review").await;
    click(&c, "#review-approve").await;
    assert_eq!(
        js(
            &c,
            "return document.getElementById('dlg-review-approve').matches(':modal')"
        )
        .await,
        json!(true)
    );
    click(&c, "#confirm-review-approve").await;
    wait_text(&c, "delivered to the app.").await;
    // The link works once.
    c.goto(&link).await.unwrap();
    click(&c, "#continue").await;
    wait_text(&c, "no longer works").await;
    shoot(&c, "22-link-used").await;
    c.close().await.unwrap();

    let log = s.stderr();
    for secret in [&password, &token, &token2, &token3] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the server log"
        );
    }
}

/// A browser-less client that keeps no cookies and follows no redirects.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

pub(crate) fn set_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
}

/// The sign-in page's pre-session cookie and its CSRF field.
async fn pre_session(o: &str) -> (String, String) {
    let r = http()
        .get(format!("{o}/console/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = set_cookie(&r).expect("a pre-session cookie");
    let html = r.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert!(cookie.ends_with(&csrf));
    (cookie, csrf)
}

pub(crate) async fn sign_in_key(o: &str, key: &str) -> reqwest::Response {
    let (cookie, csrf) = pre_session(o).await;
    http()
        .post(format!("{o}/console/sign-in/key"))
        .header("cookie", cookie)
        .form(&[("key", key), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn get(o: &str, path: &str, cookie: &str) -> reqwest::Response {
    http()
        .get(format!("{o}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The token a page shows once (`#new-token`).
pub(crate) fn token_now(html: &str) -> String {
    html.split("id=\"new-token\" type=\"text\" readonly value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page shows a new token")
        .to_owned()
}

pub(crate) fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned()
}

/// Sessions, CSRF, origins and scope, over plain HTTP.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn console_sessions_csrf_and_scope() {
    let s = TestServer::start().await;
    s.create_tenant("Globex");
    let key = s.admin_key();
    let o = s.origin.clone();

    // Not signed in: sent to sign in, and back afterwards.
    let r = get(&o, "/console/t/acme/log?outcome=failure", "").await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        "/console/sign-in?next=%2Fconsole%2Ft%2Facme%2Flog%3Foutcome%3Dfailure"
    );
    // Every page carries the security headers.
    let r = http()
        .get(format!("{o}/console/sign-in"))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");

    // The sign-in form needs its pre-session token.
    let r = http()
        .post(format!("{o}/console/sign-in/key"))
        .form(&[("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "no CSRF token");
    // A wrong key is refused.
    assert_eq!(sign_in_key(&o, "rsak_nope").await.status().as_u16(), 401);
    // Sign in: the cookie is HttpOnly, SameSite=Strict, and not Secure over plain http.
    let r = sign_in_key(&o, &key).await;
    assert_eq!(r.status().as_u16(), 303);
    let full = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        full.contains("HttpOnly") && full.contains("SameSite=Strict"),
        "{full}"
    );
    assert!(!full.contains("Secure"), "{full}");
    let jar = set_cookie(&r).unwrap();
    let page = get(&o, "/console/t/acme", &jar).await.text().await.unwrap();
    let csrf = csrf_of(&page);

    // A form without the CSRF token, with a wrong one, or from another origin changes nothing.
    for (body, origin) in [
        (vec![], None),
        (vec![("csrf", "wrong")], None),
        (vec![("csrf", csrf.as_str())], Some("http://evil.example")),
        (vec![("csrf", csrf.as_str())], Some("null")),
    ] {
        let mut rb = http()
            .post(format!("{o}/console/t/acme/scim/regenerate"))
            .header("cookie", &jar)
            .form(&body);
        if let Some(origin) = origin {
            rb = rb.header("origin", origin);
        }
        assert_eq!(
            rb.send().await.unwrap().status().as_u16(),
            403,
            "{body:?} {origin:?}"
        );
    }
    let r = http()
        .post(format!("{o}/console/t/acme/scim/regenerate"))
        .header("cookie", &jar)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        scim_user(&s, &s.base, &s.token, "still")
            .await
            .status()
            .as_u16(),
        201,
        "the token was not regenerated"
    );
    // The same form from the console's own origin works.
    let r = http()
        .post(format!("{o}/console/t/acme/scim/regenerate"))
        .header("cookie", &jar)
        .header("origin", &o)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    // Post, redirect, get: the token is not in the address, and shown by the GET, once.
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/console/t/acme?done=regenerated#h-new-token");
    let page = get(&o, to.split('#').next().unwrap(), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"new-token\""));
    // The notice sits in the token's section, not above the page.
    let section = page
        .split("aria-labelledby=\"h-new-token\"")
        .nth(1)
        .and_then(|x| x.split("</section>").next())
        .unwrap();
    assert!(section.contains("A new token is ready."), "{section}");
    // A reload does not show it again, and says why.
    let again = get(&o, to.split('#').next().unwrap(), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains("id=\"new-token\""));
    assert!(again.contains("was shown once and is not kept"));
    assert_eq!(
        scim_user(&s, &s.base, &s.token, "late")
            .await
            .status()
            .as_u16(),
        401
    );

    // The identity provider's attributes of a managed user cannot be changed here, even by a
    // hand-made form: the admin API's rule answers, and nothing changes.
    let u: Value = scim_user(&s, &s.base, &token_now(&page), "managed")
        .await
        .json()
        .await
        .unwrap();
    let uid = u["id"].as_str().unwrap();
    let r = http()
        .post(format!("{o}/console/t/acme/users/{uid}"))
        .header("cookie", &jar)
        .form(&[
            ("csrf", csrf.as_str()),
            ("user_name", "managed"),
            ("display_name", "Renamed"),
            ("given_name", "managed"),
            ("family_name", "Example"),
            ("email", "managed@example.com"),
            ("active", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("owned by the identity provider"));
    let after: Value = s
        .client
        .get(format!("{}/Users/{uid}", s.base))
        .bearer_auth(token_now(&page))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["displayName"], "managed Example");

    // Bad input gets a clear page, never a crash.
    for (path, body) in [
        (
            "/console/t/acme/settings",
            vec![("csrf", csrf.as_str()), ("token_ttl_days", "x")],
        ),
        (
            "/console/t/acme/role-mappings",
            vec![
                ("csrf", csrf.as_str()),
                ("by", "nope"),
                ("value", "x"),
                ("roles", "r"),
            ],
        ),
        (
            "/console/t/acme/role-mappings",
            vec![
                ("csrf", csrf.as_str()),
                ("by", "displayName"),
                ("value", "x"),
                ("roles", " , "),
            ],
        ),
        (
            "/console/t/acme/idp",
            vec![("csrf", csrf.as_str()), ("idp", "<script>")],
        ),
        (
            "/console/t/acme/setup-link",
            vec![("csrf", csrf.as_str()), ("expires", "99999999999999d")],
        ),
    ] {
        let r = http()
            .post(format!("{o}{path}"))
            .header("cookie", &jar)
            .form(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path} {body:?}");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script>"), "input is escaped");
    }
    // Unique emails (issue 13): the select is on the page, and turning it on while two users
    // share an email is refused on the page with the list; nothing changes.
    let html = get(&o, "/console/t/acme", &jar).await.text().await.unwrap();
    assert!(
        html.contains("id=\"email_uniqueness\"")
            && html.contains("<option value=\"off\" selected>"),
        "the select shows the setting"
    );
    // (App users count too; the tenant's token was rotated above.)
    let csv = "id,user_name,email\ndup-1,dup-one,dup@example.com\ndup-2,dup-two,DUP@example.com\n";
    let r = s.import(&key, "acme", "text/csv", csv).await;
    assert_eq!(r.json["imported"], 2, "{}", r.text);
    let settings = |mode: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("deprovision_on_delete", "retain".to_owned()),
            ("on_existing_user", "match".to_owned()),
            ("email_uniqueness", mode.to_owned()),
            ("token_ttl_days", "365".to_owned()),
            ("guard_enabled", "on".to_owned()),
            ("guard_max_percent", "20".to_owned()),
            ("guard_min_count", "10".to_owned()),
            ("guard_window_minutes", "15".to_owned()),
        ]
    };
    let r = http()
        .post(format!("{o}/console/t/acme/settings"))
        .header("cookie", &jar)
        .form(&settings("primary"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"email_uniqueness-error\">Unique emails cannot be set to primary")
            && html.contains("dup@example.com")
            && html.contains("dup-one")
            && html.contains("dup-two"),
        "the refusal lists the duplicates"
    );
    let st = s.admin_get(&key, "/tenants/acme/settings").await;
    assert_eq!(st["email_uniqueness"], "off");
    let r = http()
        .post(format!("{o}/console/t/acme/settings"))
        .header("cookie", &jar)
        .form(&settings("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    for bad in [
        "/console/t/acme/log?since=yesterday",
        "/console/t/acme/users?cursor=%%%",
        "/console/t/acme/groups?cursor=zz",
    ] {
        assert_eq!(get(&o, bad, &jar).await.status().as_u16(), 400, "{bad}");
    }
    assert_eq!(
        get(&o, "/console/t/nope", &jar).await.status().as_u16(),
        404
    );
    assert_eq!(
        get(&o, "/console/t/acme/users/nope", &jar)
            .await
            .status()
            .as_u16(),
        404
    );

    // Setup links from the admin API: one tenant, once.
    let r = s
        .client
        .post(format!("{o}/api/v1/tenants/acme/setup-link?expires=2h"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    let url = v["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{o}/console/setup/rssl_")),
        "{url}"
    );
    for bad in ["?expires=0m", "?expires=1y"] {
        let r = s
            .client
            .post(format!("{o}/api/v1/tenants/acme/setup-link{bad}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{bad}");
    }
    let r = s
        .client
        .post(format!("{o}/api/v1/tenants/nope/setup-link"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let link_token = url.rsplit('/').next().unwrap().to_owned();
    // Opening the link does not use it (mail scanners fetch links); the button does.
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let pre = set_cookie(&r).unwrap();
    let pre_csrf = csrf_of(&r.text().await.unwrap());
    let use_link = || {
        http()
            .post(format!("{o}/console/setup"))
            .header("cookie", &pre)
            .form(&[("token", link_token.as_str()), ("csrf", pre_csrf.as_str())])
            .send()
    };
    let r = use_link().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/console/t/acme");
    let scoped = set_cookie(&r).unwrap();
    for (path, status) in [
        ("/console/t/acme", 200),
        ("/console/t/acme/users", 200),
        ("/console/t/acme/log", 200),
        ("/console/t/globex", 404),
        ("/console/t/globex/log", 404),
        ("/console/tenants", 403),
        ("/console/t/acme/setup-link", 403),
    ] {
        assert_eq!(
            get(&o, path, &scoped).await.status().as_u16(),
            status,
            "{path}"
        );
    }
    // Nor can it act on another tenant.
    let scoped_csrf = csrf_of(
        &get(&o, "/console/t/acme", &scoped)
            .await
            .text()
            .await
            .unwrap(),
    );
    let r = http()
        .post(format!("{o}/console/t/globex/scim/disable"))
        .header("cookie", &scoped)
        .form(&[("csrf", scoped_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        use_link().await.unwrap().status().as_u16(),
        410,
        "a setup link works once"
    );

    // The command line makes the same links.
    let cli_link = setup_link(&s, "globex");
    assert!(
        cli_link.starts_with(&format!("{o}/console/setup/rssl_")),
        "{cli_link}"
    );
    let r = use_setup_link(&o, &cli_link).await;
    assert_eq!(r.headers()["location"], "/console/t/globex");
    for bad in [
        &["tenant", "setup-link", "nope"][..],
        &["tenant", "setup-link", "globex", "--expires", "2y"],
    ] {
        assert!(!s.cli(bad).status.success(), "{bad:?}");
    }

    // Revoking the admin key ends the console sessions started with it.
    let prefix = &key[..13];
    s.cli_ok(&["admin-key", "revoke", prefix]);
    let r = get(&o, "/console/t/acme", &jar).await;
    assert_eq!(r.status().as_u16(), 303, "session ended with its key");

    // No secret in the server log.
    let log = s.stderr();
    assert!(
        !log.contains(&key) && !log.contains(&link_token),
        "secret in the log"
    );
}

/// Operator accounts: sign-in by password; ten wrong ones from one address and that address
/// gets 429 before hashing, while the account stays open from elsewhere (nobody can lock an
/// operator out); a new password ends the sessions.
#[tokio::test]
async fn operator_sign_in_is_throttled_not_locked_and_sessions_end() {
    let s = TestServer::start().await;
    let password = operator(&s, "Ops@Example.com");
    let o = s.origin.clone();
    let sign_in = |pw: String| {
        let o = o.clone();
        async move {
            let (cookie, csrf) = pre_session(&o).await;
            http()
                .post(format!("{o}/console/sign-in"))
                .header("cookie", cookie)
                .form(&[
                    ("email", "ops@example.com"),
                    ("password", pw.as_str()),
                    ("csrf", &csrf),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = sign_in(password.clone()).await;
    assert_eq!(r.status().as_u16(), 303);
    let jar = set_cookie(&r).unwrap();
    assert_eq!(
        get(&o, "/console/tenants", &jar).await.status().as_u16(),
        200
    );
    // Unknown emails and wrong passwords get the same answer.
    let (cookie, csrf) = pre_session(&o).await;
    let r = http()
        .post(format!("{o}/console/sign-in"))
        .header("cookie", cookie)
        .form(&[
            ("email", "nobody@example.com"),
            ("password", "whatever12345"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The email or the password is wrong."));
    // Ten attempts from one address (the default budget, 5/min:10), then 429 before the
    // password is even hashed, the right one included, with the same words for every account.
    for _ in 0..10 {
        assert_eq!(
            sign_in("wrong password!".into()).await.status().as_u16(),
            401
        );
    }
    let r = sign_in(password.clone()).await;
    assert_eq!(
        r.status().as_u16(),
        429,
        "throttled even with the right password"
    );
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Too many sign-in attempts for this email from your address"));
    // The account is not locked: its operator signs in from another address.
    let (cookie, csrf) = pre_session(&o).await;
    let elsewhere = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = elsewhere
        .post(format!("{o}/console/sign-in"))
        .header("cookie", cookie)
        .form(&[
            ("email", "ops@example.com"),
            ("password", password.as_str()),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "signed in from another address");
    let list = s.cli_ok(&["operator", "list", "--json"]);
    assert!(list.contains("\"locked_until\":null"), "{list}");
    // A new password ends the account's sessions.
    s.cli_ok(&["operator", "set-password", "ops@example.com"]);
    assert_eq!(
        get(&o, "/console/tenants", &jar).await.status().as_u16(),
        303
    );
    let (cookie, csrf) = pre_session(&o).await;
    let r = elsewhere
        .post(format!("{o}/console/sign-in"))
        .header("cookie", cookie)
        .form(&[
            ("email", "ops@example.com"),
            ("password", password.as_str()),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "the old password is gone");
    // An empty password on stdin is refused by the CLI.
    let out = s.cli(&["operator", "add", "x@example.com", "--password-stdin"]);
    assert!(!out.status.success());
    s.cli_ok(&["operator", "remove", "ops@example.com"]);
    let out = s.cli(&["operator", "remove", "ops@example.com"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no operator"));
    assert!(!s.stderr().contains("wrong password!"));
}

/// A tripped mass-deprovisioning guard shows on the SCIM settings page, and the decision made
/// there lets the identity provider's retries through.
#[tokio::test]
async fn the_guard_is_decided_from_the_console() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.set_settings(
        &s.tenant,
        json!({"deprovision_guard": {"max_percent": 10, "min_count": 1, "window_minutes": 5}}),
    );
    let ids = s.users("g", 5).await;
    s.deactivate(&ids[0]).await.expect(200);
    s.deactivate(&ids[1]).await.expect(503);
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let page = get(&o, "/console/t/acme", &jar).await.text().await.unwrap();
    assert!(page.contains("Deprovisioning is paused"), "{page}");
    assert!(page.contains("holding 1 deactivation"), "{page}");
    let csrf = csrf_of(&page);
    let r = http()
        .post(format!("{o}/console/t/acme/guard/confirm"))
        .header("cookie", &jar)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        "/console/t/acme?done=guard-confirm#main"
    );
    s.deactivate(&ids[1]).await.expect(200);
    assert_eq!(
        s.guard_status(&key).await["decided_by"],
        "console:admin-key:".to_owned() + &key[..13]
    );
    let page = get(&o, "/console/t/acme?done=guard-confirm", &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Deprovisioning is paused") && page.contains("Confirmed"));
    // An operator may change their mind while the decision holds.
    let r = http()
        .post(format!("{o}/console/t/acme/guard/reject"))
        .header("cookie", &jar)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "/console/t/acme?done=guard-reject#main"
    );
    s.deactivate(&ids[2]).await.expect(503);
    let r = http()
        .post(format!("{o}/console/t/acme/guard/maybe"))
        .header("cookie", &jar)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// The settings form of the SCIM settings page, every field filled as it is by default except
/// `first_sync_review`, which is offered (as while no review holds events) and ticked or not.
fn settings_form(csrf: &str, review: bool) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("csrf", csrf.to_owned()),
        ("groups_enabled", "on".to_owned()),
        ("deprovision_on_delete", "retain".to_owned()),
        ("on_existing_user", "match".to_owned()),
        ("token_ttl_days", "365".to_owned()),
        ("guard_max_percent", "20".to_owned()),
        ("guard_min_count", "10".to_owned()),
        ("guard_window_minutes", "15".to_owned()),
        ("first_sync_review_field", "on".to_owned()),
    ];
    if review {
        form.push(("first_sync_review", "on".to_owned()));
    }
    form
}

async fn post_form(o: &str, path: &str, jar: &str, form: &[(&str, String)]) -> reqwest::Response {
    http()
        .post(format!("{o}{path}"))
        .header("cookie", jar)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The first-sync review on the SCIM settings page (operator): the setting in the settings
/// form; while the review is open, what it would do to the app, the users it touches and the
/// held events; approving it there delivers them to the feed.
#[tokio::test]
#[allow(clippy::too_many_lines)] // one review, from turning it on to approving it
async fn the_first_sync_review_is_shown_and_approved_in_the_console() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let t = s.tenant.clone();
    let page_path = format!("/console/t/{t}");
    // An existing app user that the sync links by email, and a role for Engineering.
    let file = s.dir.path().join("existing.jsonl");
    std::fs::write(
        &file,
        "{\"user_name\": \"d.scully\", \"email\": \"dana@example.com\"}\n",
    )
    .unwrap();
    s.cli_ok(&["users", "import", &t, file.to_str().unwrap()]);
    s.map_roles(&key, "displayName", "Engineering", &["editor"])
        .await;
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();

    // No review: the setting, explained, in the settings form; no review section.
    let page = get(&o, &page_path, &jar).await.text().await.unwrap();
    assert!(
        page.contains("Hold the first sync for review")
            && page.contains("no users, no roles, no sign-ins")
            && page.contains("Discarding undoes it."),
        "{page}"
    );
    assert!(!page.contains("id=\"h-review\""), "{page}");
    let csrf = csrf_of(&page);
    let r = post_form(
        &o,
        &format!("{page_path}/settings"),
        &jar,
        &settings_form(&csrf, true),
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let st = s.admin_get(&key, &format!("/tenants/{t}/settings")).await;
    assert_eq!(st["first_sync_review"], true, "{st}");
    // Open, nothing held yet: the section waits, and the setting can still be turned off.
    let page = get(&o, &page_path, &jar).await.text().await.unwrap();
    assert!(
        page.contains("id=\"review-state\"") && page.contains("Nothing has arrived yet"),
        "{page}"
    );
    assert!(page.contains("name=\"first_sync_review\" value=\"on\" checked"));
    assert!(
        !page.contains("id=\"review-approve\""),
        "nothing to approve yet"
    );

    // The identity provider's first sync: held.
    let mut ids = Vec::new();
    for name in ["alice", "bob", "dana"] {
        let r = scim_user(&s, &s.base, &s.token, name).await;
        assert_eq!(r.status().as_u16(), 201);
        let u: Value = r.json().await.unwrap();
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    s.create_group("Engineering", &[ids[0].as_str(), ids[1].as_str()])
        .await;
    let before = s.feed(&key, 0).await;
    let feed = serde_json::to_string(&before).unwrap();
    assert!(!feed.contains("alice"), "held, not in the feed: {feed}");
    let status = s.admin_get(&key, &format!("/tenants/{t}/first-sync")).await;
    let held = status["held_events"].as_u64().unwrap();
    assert!(held >= 4, "{status}");

    let page = get(&o, &page_path, &jar).await.text().await.unwrap();
    let summary = page
        .split("id=\"review-summary\"><strong>")
        .nth(1)
        .and_then(|x| x.split("</strong>").next())
        .unwrap_or_else(|| panic!("no summary: {page}"));
    for part in [
        "Would create 2 users, link 1 existing app user by email",
        "create 1 group",
        "give 2 users the role editor.",
    ] {
        assert!(summary.contains(part), "{part:?} not in {summary:?}");
    }
    assert!(
        page.contains(&format!("{held} events held since")),
        "{page}"
    );
    let table = page
        .split("id=\"review-users\"")
        .nth(1)
        .and_then(|x| x.split("</table>").next())
        .unwrap();
    assert!(
        table.contains(">alice</a>")
            && table.contains(&ids[0])
            && table.contains("Created")
            && table.contains("+ editor"),
        "{table}"
    );
    assert!(
        table.contains("Linked to an existing app user by email"),
        "{table}"
    );
    assert!(page.contains("3 of 3 users"), "{page}");
    assert!(!page.contains("id=\"review-next\""), "one page only");
    // While events are held the setting is not in the form: only a decision ends the review.
    assert!(!page.contains("id=\"first_sync_review\""), "{page}");
    // The users after the first: a later page, with a link back to the first.
    let first = status["users"][0]["id"].as_str().unwrap();
    let later = get(&o, &format!("{page_path}?after={first}"), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        later.contains("2 of 3 users") && later.contains(">First page</a>"),
        "{later}"
    );
    // Approve asks first, in the console's dialog (rendered open without script).
    assert!(page.contains("id=\"dlg-review-approve\"") && !page.contains("confirm("));
    let dialog = get(&o, &format!("{page_path}?confirm=review-approve"), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        dialog.contains("aria-describedby=\"dlg-review-approve-d\" open"),
        "{dialog}"
    );

    let r = post_form(
        &o,
        &format!("{page_path}/first-sync/approve"),
        &jar,
        &[("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        to,
        format!("{page_path}?done=first-sync-approved&events={held}#main")
    );
    let page = get(&o, &to, &jar).await.text().await.unwrap();
    assert!(
        page.contains(&format!("Approved: {held} events delivered to the app.")),
        "{page}"
    );
    assert!(!page.contains("id=\"h-review\""));
    assert!(page.contains("name=\"first_sync_review\" value=\"on\" aria-describedby"));
    let events = s.feed(&key, 0).await;
    assert_eq!(
        events.len() - before.len(),
        usize::try_from(held).unwrap(),
        "every held event is in the feed now: {events:?}"
    );
    let created: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "user.created")
        .collect();
    assert!(
        serde_json::to_string(&created).unwrap().contains("alice"),
        "{events:?}"
    );
    let st = s.admin_get(&key, &format!("/tenants/{t}/settings")).await;
    assert_eq!(st["first_sync_review"], false);
    let audit = s.admin_get(&key, "/audit-log").await.to_string();
    assert!(
        audit.contains("first_sync.approve") && audit.contains("console:admin-key:"),
        "{audit}"
    );

    // Nothing left to approve: refused on the page (409), as the page's other refusals are.
    let r = post_form(
        &o,
        &format!("{page_path}/first-sync/approve"),
        &jar,
        &[("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 409);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("role=\"alert\">No first-sync review is open"),
        "{html}"
    );
    let r = post_form(
        &o,
        &format!("{page_path}/first-sync/maybe"),
        &jar,
        &[("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 404);
}

/// The tenant's IT admin (setup-link session) sees the review and discards it: what the sync
/// created is deleted and SCIM is disabled.
#[tokio::test]
async fn the_it_admin_discards_the_first_sync_review_in_the_console() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let t = s.tenant.clone();
    let page_path = format!("/console/t/{t}");
    s.admin(
        &key,
        reqwest::Method::PATCH,
        &format!("/tenants/{t}/settings"),
        Some(json!({"first_sync_review": true})),
    )
    .await
    .expect(200);
    let r = scim_user(&s, &s.base, &s.token, "erin").await;
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = use_setup_link(&o, &setup_link(&s, &t)).await;
    let jar = set_cookie(&r).unwrap();
    let page = get(&o, &format!("{page_path}?confirm=review-discard"), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Would create 1 user."), "{page}");
    let dialog = page
        .split("<dialog id=\"dlg-review-discard\"")
        .nth(1)
        .and_then(|x| x.split("</dialog>").next())
        .unwrap();
    assert!(dialog.contains("aria-describedby=\"dlg-review-discard-d\" open"));
    for words in [
        "<strong>deleted</strong>",
        "<strong>put back</strong>",
        "SCIM is <strong>disabled</strong> and its token revoked",
        "<strong>404 (not found)</strong>",
    ] {
        assert!(dialog.contains(words), "{words:?} not in {dialog}");
    }
    let csrf = csrf_of(&page);
    let discard = format!("{page_path}/first-sync/discard");
    // The console's CSRF protection, as for every other action of the page.
    let r = post_form(&o, &discard, &jar, &[("csrf", "wrong".to_owned())]).await;
    assert_eq!(r.status().as_u16(), 403);
    let r = http()
        .post(format!("{o}{discard}"))
        .header("cookie", &jar)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let status = s.admin_get(&key, &format!("/tenants/{t}/first-sync")).await;
    assert_eq!(status["open"], true, "refused posts changed nothing");

    let r = post_form(&o, &discard, &jar, &[("csrf", csrf.clone())]).await;
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        to,
        format!("{page_path}?done=first-sync-discarded&deleted=1&restored=0#main")
    );
    let page = get(&o, &to, &jar).await.text().await.unwrap();
    assert!(
        page.contains("Discarded: 1 created resource deleted, 0 restored; SCIM is now disabled."),
        "{page}"
    );
    assert!(page.contains("SCIM is <strong>off</strong>") && !page.contains("id=\"h-review\""));
    let st = s.admin_get(&key, &format!("/tenants/{t}/settings")).await;
    assert_eq!(
        (&st["scim_enabled"], &st["first_sync_review"]),
        (&json!(false), &json!(false)),
        "{st}"
    );
    let r = s
        .client
        .get(format!("{}/Users/{id}", s.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "the token is revoked");
    let r = s
        .admin(
            &key,
            reqwest::Method::GET,
            &format!("/tenants/{t}/users/{id}"),
            None,
        )
        .await;
    r.expect(404);
    let feed = serde_json::to_string(&s.feed(&key, 0).await).unwrap();
    assert!(!feed.contains("erin"), "nothing was released: {feed}");
    let audit = s.admin_get(&key, "/audit-log").await.to_string();
    assert!(
        audit.contains("first_sync.discard") && audit.contains("console:setup-link"),
        "{audit}"
    );
}

/// Revoking a tenant's setup links ends the unused ones and signs out the IT admin sessions
/// opened with any of them, from the admin API and the CLI (issue 12).
#[tokio::test]
async fn setup_links_and_their_sessions_can_be_revoked() {
    let s = TestServer::start().await;
    let o = s.origin.clone();
    let key = s.admin_key();
    let used = setup_link(&s, &s.tenant);
    let unused = setup_link(&s, &s.tenant);
    // The IT admin opens the first link.
    let r = use_setup_link(&o, &used).await;
    assert_eq!(r.status().as_u16(), 303);
    let jar = set_cookie(&r).unwrap();
    let page = format!("/console/t/{}", s.tenant);
    assert_eq!(get(&o, &page, &jar).await.status().as_u16(), 200);

    let r = s
        .admin(
            &key,
            reqwest::Method::DELETE,
            &format!("/tenants/{}/setup-link", s.tenant),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["links_revoked"], 1, "{}", r.text);
    assert_eq!(r.json["sessions_ended"], 1, "{}", r.text);
    assert_eq!(
        get(&o, &page, &jar).await.status().as_u16(),
        303,
        "signed out"
    );
    // The unused link no longer opens anything (the page itself checks nothing: only using
    // the link does, so that a mail scanner's prefetch cannot spend it).
    let r = http().get(&unused).send().await.unwrap();
    let pre = set_cookie(&r).unwrap_or_default();
    let html = r.text().await.unwrap();
    let r = http()
        .post(format!("{o}/console/setup"))
        .header("cookie", &pre)
        .form(&[
            ("token", unused.rsplit('/').next().unwrap()),
            ("csrf", csrf_of(&html).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(r.status().as_u16(), 303, "a revoked link signed in");
    let html = r.text().await.unwrap();
    assert!(html.contains("expired"), "{html}");

    // The CLI does the same; nothing is left to end.
    let out = s.cli_ok(&["tenant", "setup-link", "revoke", &s.tenant, "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["links_revoked"].as_u64(), v["sessions_ended"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(!s
        .cli(&["tenant", "setup-link", "revoke", "nope"])
        .status
        .success());
    let audit = s
        .admin(&key, reqwest::Method::GET, "/audit-log", None)
        .await;
    assert!(
        audit.text.contains("console.setup_links_revoked"),
        "{}",
        audit.text
    );
}

/// Custom attributes on the console's user and group pages: a SCIM user's and group's values,
/// labelled for people and marked read-only; an app user's edited in the form (a value of the
/// wrong type refused next to its field, with what was typed kept, and nothing saved); the
/// admin API's user PATCH that the form goes through, validating them by type.
#[tokio::test]
#[allow(clippy::too_many_lines)] // one tenant's custom attributes, shown then edited
async fn custom_attributes_are_shown_and_edited_in_the_console() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    declare_acme(&s, &key).await;
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();

    // A SCIM user: each declared attribute in the schema's block, its value formatted by type,
    // read-only; one without a value shows "—"; no raw URN rows among the other attributes.
    let ada = s
        .create_user(&json!({"schemas": [USER_URN, ACME], "userName": "ada",
            ACME: {"costCenter": "R&D", "level": 3, "regions": ["emea", "apac"],
                   "contractor": true, "hired": "2024-03-01T09:30:00Z"}}))
        .await;
    let page = get(
        &o,
        &format!("/console/t/acme/users/{}", ada["id"].as_str().unwrap()),
        &jar,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        page.contains("<h2 id=\"h-custom-0\">Acme HR</h2>"),
        "{page}"
    );
    assert!(page.contains(&format!(
        "<dt title=\"{ACME}:costCenter\">Cost center <span class=\"ro\""
    )));
    for (i, shown) in [
        (0, "R&#38;D"),
        (1, "3"),
        (2, "emea, apac"),
        (3, "Yes"),
        (5, "—"),
    ] {
        assert!(
            page.contains(&format!("id=\"custom-0-{i}-value\">{shown}</span>")),
            "{i}: {shown} {page}"
        );
    }
    assert!(page.contains(
        "id=\"custom-0-4-value\" title=\"2024-03-01T09:30:00Z\">2024-03-01 09:30 UTC</span>"
    ));
    assert!(page.contains("<span class=\"mono\">costCenter</span> · Finance cost center</p>"));
    assert!(
        !page.contains(&format!("{ACME}.costCenter")),
        "listed twice"
    );
    assert!(
        !page.contains("id=\"edit-user\""),
        "a managed user has no form"
    );

    // A SCIM group: its schema has no name, so the block has the default title.
    let ops = s
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_URN, SITE], "displayName": "Ops", SITE: {"siteCode": "PAR-1"}}),
        )
        .await;
    ops.expect(201);
    let page = get(
        &o,
        &format!(
            "/console/t/acme/groups/{}",
            ops.json["id"].as_str().unwrap()
        ),
        &jar,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(page.contains("<h2 id=\"h-custom-0\">Custom attributes</h2>"));
    assert!(page.contains(&format!(
        "<dt title=\"{SITE}:siteCode\">Site code <span class=\"ro\""
    )));
    assert!(page.contains("id=\"custom-0-0-value\">PAR-1</span>"));

    // An app user: the form has a field for each attribute, of the type's kind.
    let r = s
        .import(
            &key,
            "acme",
            "text/csv",
            "user_name,email\ndana,dana@example.com\n",
        )
        .await;
    assert_eq!(r.json["imported"], 1, "{}", r.text);
    let id = s.app_user_named(&key, "dana").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/console/t/acme/users/{id}");
    let page = get(&o, &path, &jar).await.text().await.unwrap();
    assert!(!page.contains("class=\"ro\""), "nothing is read-only");
    let level = format!("{ACME}:level");
    assert!(page.contains(&format!(
        "<input type=\"number\" step=\"1\" id=\"custom-0-1\" name=\"{level}\" value=\"\""
    )));
    assert!(page.contains(&format!(
        "<input type=\"checkbox\" id=\"custom-0-3\" name=\"{ACME}:contractor\" value=\"true\""
    )));
    assert!(page.contains(&format!("<select id=\"custom-0-5\" name=\"{ACME}:tier\"")));
    assert!(page.contains("<option value=\"gold\">gold</option>"));
    let csrf = csrf_of(&page);
    let form = |version: i64, display: &str, lvl: &str, contractor: bool| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("version", version.to_string()),
            ("user_name", "dana".to_owned()),
            ("display_name", display.to_owned()),
            ("given_name", String::new()),
            ("family_name", String::new()),
            ("email", "dana@example.com".to_owned()),
            ("active", "on".to_owned()),
            (ACME_LEVEL, lvl.to_owned()),
            (ACME_COST, "Ops".to_owned()),
            (ACME_REGIONS, "emea, apac".to_owned()),
            (ACME_TIER, "gold".to_owned()),
            (ACME_HIRED, String::new()),
            (ACME_CONTRACTOR, String::new()),
        ];
        if contractor {
            f.push((ACME_CONTRACTOR, "true".to_owned()));
        }
        f
    };
    let version = |u: &Value| u["version"].as_i64().unwrap();

    // A valid save goes through the admin API's operation: the values are stored by type.
    let before = s.app_user(&key, &id).await;
    let r = post_form(&o, &path, &jar, &form(version(&before), "Dana", "7", true)).await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], format!("{path}?done=saved"));
    let after = s.app_user(&key, &id).await;
    assert_eq!(
        after["custom_attributes"],
        json!({ACME: {"costCenter": "Ops", "level": 7, "regions": ["emea", "apac"],
                      "contractor": true, "tier": "gold"}})
    );
    let page = get(&o, &path, &jar).await.text().await.unwrap();
    assert!(page.contains("id=\"custom-0-1-value\">7</span>"));
    assert!(page.contains(&format!("name=\"{level}\" value=\"7\"")));

    // "abc" for an integer: refused next to its field, what was typed kept, nothing saved.
    let r = post_form(
        &o,
        &path,
        &jar,
        &form(version(&after), "Dana Typed", "abc", false),
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let page = r.text().await.unwrap();
    let error = "Level must be a whole number, like 42, not &#34;abc&#34;";
    assert!(
        page.contains(&format!(
            "<p class=\"help danger-text\" id=\"custom-0-1-error\">{error}</p>"
        )),
        "{page}"
    );
    assert!(page.contains(&format!(
        "<input type=\"text\" id=\"custom-0-1\" name=\"{level}\" value=\"abc\""
    )));
    assert!(page.contains("aria-describedby=\"custom-0-1-error\" aria-invalid=\"true\""));
    assert!(page.contains("<details id=\"edit-user\" open>"));
    assert!(
        page.contains("value=\"Dana Typed\""),
        "the other fields as typed"
    );
    assert!(page.contains("Nothing was saved"));
    assert_eq!(s.app_user(&key, &id).await, after);

    // Unticking a box stores false; emptying a field removes the value.
    let mut f = form(version(&after), "Dana", "", false);
    f.retain(|(k, _)| *k != ACME_COST);
    f.push((ACME_COST, String::new()));
    let r = post_form(&o, &path, &jar, &f).await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        s.app_user(&key, &id).await["custom_attributes"],
        json!({ACME: {"regions": ["emea", "apac"], "contractor": false, "tier": "gold"}})
    );

    // The admin API's PATCH itself: validated by type against the tenant's declarations.
    let api = format!("/tenants/acme/users/{id}");
    let patch = |body: Value| s.admin(&key, reqwest::Method::PATCH, &api, Some(body));
    let r = patch(json!({"custom_attributes": {ACME: {"level": "abc"}}})).await;
    r.expect(400);
    assert!(r.text.contains(&level), "{}", r.text);
    // Not declared (yet): a conflict with the tenant's declarations, naming what is missing.
    let r = patch(json!({"custom_attributes": {ACME: {"nope": 1}}})).await;
    r.expect(409);
    assert!(r.text.contains("nope"), "{}", r.text);
    let r = patch(json!({"custom_attributes": {"urn:x:y": {"level": 1}}})).await;
    r.expect(409);
    let r = patch(json!({"custom_attributes": {ACME: {"level": 9, "tier": null}}})).await;
    r.expect(200);
    assert_eq!(
        r.json["custom_attributes"],
        json!({ACME: {"level": 9, "regions": ["emea", "apac"], "contractor": false}})
    );
    // On a SCIM-managed user they are the identity provider's.
    let r = s
        .admin(
            &key,
            reqwest::Method::PATCH,
            &format!("/tenants/acme/users/{}", ada["id"].as_str().unwrap()),
            Some(json!({"custom_attributes": {ACME: {"level": 4}}})),
        )
        .await;
    r.expect(409);
    assert!(
        r.text.contains("owned by the identity provider"),
        "{}",
        r.text
    );
}

const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
const SITE: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:Group";

/// Declares tenant acme's custom schemas: a named User one with an attribute of each kind,
/// and an unnamed Group one.
async fn declare_acme(s: &TestServer, key: &str) {
    s.admin(
        key,
        reqwest::Method::PUT,
        "/tenants/acme/custom-schemas",
        Some(json!({"schemas": [
            {"urn": ACME, "resource": "User", "name": "Acme HR", "attributes": [
                {"name": "costCenter", "type": "string", "description": "Finance cost center"},
                {"name": "level", "type": "integer"},
                {"name": "regions", "type": "string", "multiValued": true},
                {"name": "contractor", "type": "boolean"},
                {"name": "hired", "type": "dateTime"},
                {"name": "tier", "type": "string", "canonicalValues": ["gold", "silver"]}]},
            {"urn": SITE, "resource": "Group", "attributes": [{"name": "siteCode", "type": "string"}]},
        ]})),
    )
    .await
    .expect(200);
}

const ACME_LEVEL: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User:level";
const ACME_COST: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User:costCenter";
const ACME_REGIONS: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User:regions";
const ACME_TIER: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User:tier";
const ACME_HIRED: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User:hired";
const ACME_CONTRACTOR: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User:contractor";

/// The custom attributes' blocks and fields in Chromium, checked like every other page (labels,
/// unique ids, no sideways scrolling at 1280 and 390 pixels); an app user's values saved
/// through the form as a browser sends it.
#[tokio::test]
async fn custom_attributes_in_chromium() {
    let Some(driver) = start_driver() else {
        return;
    };
    let s = TestServer::start().await;
    let key = s.admin_key();
    declare_acme(&s, &key).await;
    let ada = s
        .create_user(&json!({"schemas": [USER_URN, ACME], "userName": "ada",
            ACME: {"costCenter": "R&D", "level": 3, "regions": ["emea", "apac"],
                   "contractor": true, "hired": "2024-03-01T09:30:00Z"}}))
        .await;
    let r = s
        .import(
            &key,
            "acme",
            "text/csv",
            "user_name,email\ndana,dana@example.com\n",
        )
        .await;
    assert_eq!(r.json["imported"], 1, "{}", r.text);
    let dana = s.app_user_named(&key, "dana").await;
    let password = operator(&s, "ops@example.com");
    let c = connect(&driver).await;
    c.set_window_size(1280, 1000).await.unwrap();
    let o = s.origin.clone();
    c.goto(&format!("{o}/console/sign-in")).await.unwrap();
    fill(&c, "#email", "ops@example.com").await;
    fill(&c, "#password", &password).await;
    click(&c, "#sign-in").await;
    css(&c, "#tenants").await;

    c.goto(&format!(
        "{o}/console/t/acme/users/{}",
        ada["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(text(&c, "#h-custom-0").await, "Acme HR");
    assert_eq!(text(&c, "#custom-0-4-value").await, "2024-03-01 09:30 UTC");
    shoot(&c, "30-custom-attributes-scim-user").await;

    c.goto(&format!(
        "{o}/console/t/acme/users/{}",
        dana["id"].as_str().unwrap()
    ))
    .await
    .unwrap();
    click(&c, "#edit-user summary").await;
    fill(&c, "#custom-0-0", "Ops").await;
    fill(&c, "#custom-0-1", "12").await;
    fill(&c, "#custom-0-2", "emea, apac").await;
    click(&c, "#custom-0-3").await;
    fill(&c, "#custom-0-4", "2025-01-02T08:00:00+01:00").await;
    choose(&c, "#custom-0-5", "silver").await;
    shoot(&c, "31-custom-attributes-form").await;
    click(&c, "#save-user").await;
    wait_text(&c, "User saved.").await;
    assert_eq!(text(&c, "#custom-0-1-value").await, "12");
    assert_eq!(text(&c, "#custom-0-3-value").await, "Yes");
    assert_eq!(text(&c, "#custom-0-4-value").await, "2025-01-02 07:00 UTC");
    shoot(&c, "32-custom-attributes-app-user").await;
    c.close().await.unwrap();
    assert_eq!(
        s.app_user(&key, dana["id"].as_str().unwrap()).await["custom_attributes"],
        json!({ACME: {"costCenter": "Ops", "level": 12, "regions": ["emea", "apac"],
                      "contractor": true, "hired": "2025-01-02T07:00:00.000Z", "tier": "silver"}})
    );
}

/// The section of `page` under the heading with id `h`.
fn section<'a>(page: &'a str, h: &str) -> &'a str {
    page.split(&format!("aria-labelledby=\"{h}\""))
        .nth(1)
        .and_then(|x| x.split("</section>").next())
        .unwrap_or_else(|| panic!("no section {h} in {page}"))
}

/// Every form: post, redirect, get on success with the notice in the section saved; a refusal
/// shows the page with what was typed and every error next to its field; a GET of a form's
/// address goes back to the form; an error page keeps the console's navigation.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn forms_keep_their_input_and_never_dead_end() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let page = get(&o, "/console/t/acme", &jar).await.text().await.unwrap();
    let csrf = csrf_of(&page);

    // Success: 303 to the page, at the section, whose notice is in that section.
    let r = post_form(
        &o,
        "/console/t/acme/settings",
        &jar,
        &settings_form(&csrf, false),
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        "/console/t/acme?done=settings#h-settings"
    );
    let page = get(&o, "/console/t/acme?done=settings", &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(section(&page, "h-settings").contains("Settings saved."));
    assert!(!section(&page, "h-conn").contains("Settings saved."));

    // Refused: every problem at once, each next to its field, the form as typed; nothing saved.
    let mut form = settings_form(&csrf, false);
    for (k, v) in &mut form {
        match *k {
            "token_ttl_days" => *v = "0".to_owned(),
            "guard_window_minutes" => *v = "abc".to_owned(),
            "groups_enabled" => *v = "on".to_owned(),
            _ => {}
        }
    }
    form.retain(|(k, _)| *k != "groups_enabled");
    let r = post_form(&o, "/console/t/acme/settings", &jar, &form).await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    let settings = section(&html, "h-settings");
    assert!(
        settings.contains("Nothing was saved: 2 problems to fix."),
        "{settings}"
    );
    assert!(
        settings.contains(
            "<input type=\"number\" id=\"token_ttl_days\" name=\"token_ttl_days\" min=\"1\" \
         max=\"3650\" value=\"0\" inputmode=\"numeric\" aria-invalid=\"true\" \
         aria-describedby=\"token_ttl_days-error\">"
        ),
        "{settings}"
    );
    assert!(settings.contains(
        "<p class=\"field-error\" id=\"token_ttl_days-error\">The token lifetime (days) must be \
         a whole number from 1 to 3,650, not &#34;0&#34;.</p>"
    ) || settings.contains("id=\"token_ttl_days-error\">The token lifetime (days) must be"),
        "{settings}");
    assert!(
        settings.contains("value=\"abc\""),
        "typed text stays: {settings}"
    );
    assert!(settings.contains("id=\"guard_window_minutes-error\""));
    assert!(settings.contains("<a href=\"#guard_window_minutes\">"));
    assert!(
        !settings.contains("id=\"groups_enabled\" name=\"groups_enabled\" value=\"on\" checked"),
        "the unticked box stays unticked: {settings}"
    );
    assert!(
        !html.contains("settings.token_ttl_days"),
        "no internal names"
    );
    let t: Value = s
        .client
        .get(format!("{}/api/v1/tenants/acme", s.origin))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        t["settings"]["token_ttl_days"], 365,
        "nothing was saved: {t}"
    );
    assert_eq!(t["settings"]["groups_enabled"], true);

    // A refused role mapping keeps the group and roles typed, with the error at the field.
    let r = post_form(
        &o,
        "/console/t/acme/role-mappings",
        &jar,
        &[
            ("csrf", csrf.clone()),
            ("by", "displayName".to_owned()),
            ("value", "Engineering".to_owned()),
            ("roles", " , ".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    let roles = section(&html, "h-roles");
    assert!(
        roles.contains("id=\"new-value\" name=\"value\" value=\"Engineering\""),
        "{roles}"
    );
    assert!(
        roles.contains("id=\"new-roles-error\">Roles must name at least one role"),
        "{roles}"
    );
    assert!(roles.contains("aria-describedby=\"new-roles-error\""));
    // Its delete asks in the console's dialog, not the browser's confirm().
    let page = get(&o, "/console/t/acme", &jar).await.text().await.unwrap();
    assert!(page.contains("<dialog id=\"dlg-confirm\""));

    // A duplicate or blank tenant name: the new-tenant form again, the error at the name.
    for (name, words) in [
        ("   ", "The organisation name must be"),
        ("Acme", "already exists"),
    ] {
        let r = post_form(
            &o,
            "/console/tenants",
            &jar,
            &[
                ("csrf", csrf.clone()),
                ("name", name.to_owned()),
                ("idp", "okta".to_owned()),
            ],
        )
        .await;
        assert_eq!(r.status().as_u16(), 400, "{name:?}");
        let html = r.text().await.unwrap();
        let new = section(&html, "h-new-tenant");
        assert!(new.contains("id=\"new-name-error\""), "{new}");
        assert!(new.contains(words), "{words:?} in {new}");
        assert!(
            new.contains(&format!("value=\"{name}\"")),
            "typed name kept: {new}"
        );
        assert!(new.contains("<option value=\"okta\" selected>"), "{new}");
    }

    // An app user's edit: a refused email is shown at its field, with what was typed.
    let csv = "user_name,email\napp-one,app@example.com\n";
    let r = s.import(&key, "acme", "text/csv", csv).await;
    assert_eq!(r.json["imported"], 1, "{}", r.text);
    let list = get(&o, "/console/t/acme/users?q=app-one", &jar)
        .await
        .text()
        .await
        .unwrap();
    let href = list
        .split("href=\"/console/t/acme/users/")
        .nth(1)
        .and_then(|x| x.split('"').next())
        .unwrap();
    let user_path = format!("/console/t/acme/users/{href}");
    let page = get(&o, &user_path, &jar).await.text().await.unwrap();
    let version = page
        .split("name=\"version\" value=\"")
        .nth(1)
        .and_then(|x| x.split('"').next())
        .unwrap()
        .to_owned();
    let r = post_form(
        &o,
        &user_path,
        &jar,
        &[
            ("csrf", csrf.clone()),
            ("user_name", "app-one".to_owned()),
            ("display_name", "App One".to_owned()),
            ("given_name", String::new()),
            ("family_name", String::new()),
            ("email", "not-an-email".to_owned()),
            ("active", "on".to_owned()),
            ("version", version),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    let attrs = section(&html, "h-attrs");
    assert!(attrs.contains("value=\"not-an-email\""), "{attrs}");
    assert!(attrs.contains("value=\"App One\""), "{attrs}");
    assert!(
        attrs.contains("aria-describedby=\"email-error\""),
        "{attrs}"
    );
    assert!(attrs.contains("id=\"email-error\">The email"), "{attrs}");
    assert!(
        attrs.contains("Nothing was saved: 1 problem to fix."),
        "{attrs}"
    );

    // A GET of a POST-only address (a reload) goes to the form's page, never a blank 405.
    for (path, to) in [
        ("/console/t/acme/scim/enable", "/console/t/acme#h-token"),
        ("/console/t/acme/settings", "/console/t/acme#h-settings"),
        ("/console/t/acme/role-mappings", "/console/t/acme#h-roles"),
        (
            "/console/t/acme/role-mappings/x/delete",
            "/console/t/acme#h-roles",
        ),
        ("/console/t/acme/guard/confirm", "/console/t/acme"),
        ("/console/sign-out", "/console"),
    ] {
        let r = get(&o, path, &jar).await;
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(r.headers()["location"], to, "{path}");
    }

    // Error pages keep the console's navigation: the tenant's tabs and the account links.
    // A bad date in the log filter is an error at its field, the filters as typed.
    let r = get(&o, "/console/t/acme/log?since=yesterday&user=ann", &jar).await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    let filters = section(&html, "h-log-filters");
    assert!(
        filters.contains("Nothing is listed: 1 problem to fix."),
        "{filters}"
    );
    assert!(
        filters.contains("id=\"since-error\">&#34;From&#34; must be a date"),
        "{filters}"
    );
    assert!(
        filters.contains("aria-describedby=\"since-error\""),
        "{filters}"
    );
    assert!(
        filters.contains("id=\"user\" name=\"user\" value=\"ann\""),
        "{filters}"
    );
    // A stale page link is an error page with the tabs and the account links.
    let r = get(&o, "/console/t/acme/groups?cursor=zz", &jar).await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"sign-out\""), "{html}");
    assert!(html.contains("href=\"/console/t/acme/users\""), "{html}");
    assert!(
        html.contains("href=\"/console/tenants\">All tenants"),
        "{html}"
    );
    let r = get(&o, "/console/t/acme/nowhere", &jar).await;
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().await.unwrap().contains("id=\"sign-out\""));
    // Another tenant's page: navigation, but not that tenant's tabs.
    let r = get(&o, "/console/t/nobody/users", &jar).await;
    assert_eq!(r.status().as_u16(), 404);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"sign-out\"") && !html.contains("/console/t/nobody"));
    // Without a session an error page stays anonymous.
    let r = get(&o, "/console/nowhere", "").await;
    assert_eq!(r.status().as_u16(), 404);
    assert!(!r.text().await.unwrap().contains("id=\"sign-out\""));
}
