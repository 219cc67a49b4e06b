//! The SCIM settings split into an overview and a page per section, the role catalogue (admin
//! API, command line, console) and the guard's page (held users, dialogs, who decides): over
//! HTTP, and walked in Chromium (`console_settings_in_chromium`, screenshots `S…`).

use reqwest::Method;
use serde_json::{json, Value};

#[allow(clippy::wildcard_imports)]
use crate::browser::*;
use crate::console::{
    csrf_of, get, operator, post_form, section, set_cookie, setup_link, sign_in_key, use_setup_link,
};
use crate::harness::TestServer;

const SECTIONS: [(&str, &str, &str); 6] = [
    ("/console/t/acme", "Overview", "SCIM provisioning"),
    (
        "/console/t/acme/settings/connection",
        "Connection",
        "Connect your identity provider",
    ),
    ("/console/t/acme/settings/token", "Token", "SCIM token"),
    (
        "/console/t/acme/settings/provisioning",
        "Provisioning",
        "Provisioning settings",
    ),
    ("/console/t/acme/settings/roles", "Roles", "Roles"),
    (
        "/console/t/acme/settings/guard",
        "Guard",
        "Mass-deprovisioning guard",
    ),
];

async fn page(o: &str, path: &str, jar: &str) -> String {
    let r = get(o, path, jar).await;
    assert_eq!(r.status().as_u16(), 200, "{path}");
    r.text().await.unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Each section at its own address, with its `h1` and the sub-navigation marking it; each
/// form's redirect goes to its section's page, and a refused form is answered with its page.
#[tokio::test]
async fn each_settings_section_has_its_own_page_and_form_target() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    for (path, label, h1) in SECTIONS {
        let html = page(&o, path, &jar).await;
        assert!(html.contains(&format!("<h1>{h1}</h1>")), "{path}: {html}");
        assert!(
            html.contains(&format!("aria-current=\"page\">{label}</a>")),
            "{path}"
        );
        assert_eq!(html.matches("<h1>").count(), 1, "{path}");
    }
    // What each page holds, and only there.
    let overview = page(&o, "/console/t/acme", &jar).await;
    assert!(overview.contains("id=\"connection\"") && overview.contains("id=\"base-url\""));
    assert!(!overview.contains("id=\"save-settings\"") && !overview.contains("id=\"mappings\""));
    let token = page(&o, "/console/t/acme/settings/token", &jar).await;
    assert!(token.contains("id=\"tokens\"") && !token.contains("id=\"connection\""));
    let conn = page(&o, "/console/t/acme/settings/connection", &jar).await;
    assert!(conn.contains("id=\"idp\"") && conn.contains("id=\"guide-okta\""));
    assert_eq!(
        get(&o, "/console/t/acme/settings/nope", &jar)
            .await
            .status()
            .as_u16(),
        404
    );
    let csrf = csrf_of(&overview);

    // Post, redirect, get: to the section's own page.
    let r = post_form(
        &o,
        "/console/t/acme/idp",
        &jar,
        &[("csrf", csrf.clone()), ("idp", "entra".to_owned())],
    )
    .await;
    assert_eq!(
        location(&r),
        "/console/t/acme/settings/connection?done=idp#h-idp"
    );
    let html = page(&o, "/console/t/acme/settings/connection?done=idp", &jar).await;
    assert!(section(&html, "h-idp").contains("Identity provider saved."));
    let guard_form = |pct: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("section", "guard".to_owned()),
            ("guard_enabled", "on".to_owned()),
            ("guard_max_percent", pct.to_owned()),
            ("guard_min_count", "10".to_owned()),
            ("guard_window_minutes", "15".to_owned()),
        ]
    };
    let r = post_form(&o, "/console/t/acme/settings", &jar, &guard_form("30")).await;
    assert_eq!(
        location(&r),
        "/console/t/acme/settings/guard?done=guard-settings#h-guard-settings"
    );
    let st = s.admin_get(&key, "/tenants/acme/settings").await;
    assert_eq!(st["deprovision_guard"]["max_percent"], 30, "{st}");
    assert_eq!(st["token_ttl_days"], 365, "the other form's settings stay");
    // Refused: the guard's page again, the value as typed, the error at its field.
    let r = post_form(&o, "/console/t/acme/settings", &jar, &guard_form("0")).await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("aria-current=\"page\">Guard</a>"), "{html}");
    let g = section(&html, "h-guard-settings");
    assert!(g.contains("id=\"guard_max_percent-error\"") && g.contains("value=\"0\""));
    // A refused mapping: the roles page again.
    let r = post_form(
        &o,
        "/console/t/acme/role-mappings",
        &jar,
        &[
            ("csrf", csrf.clone()),
            ("by", "displayName".to_owned()),
            ("value", "Sales".to_owned()),
            ("roles", "Admin Role!!".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("aria-current=\"page\">Roles</a>"));
    assert!(
        section(&html, "h-roles").contains("id=\"new-roles-error\">Roles: a role name has"),
        "{html}"
    );
    // Disabling SCIM goes back to the token's page.
    let r = post_form(
        &o,
        "/console/t/acme/scim/disable",
        &jar,
        &[("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(
        location(&r),
        "/console/t/acme/settings/token?done=disabled#h-token"
    );
}

/// The role catalogue from the admin API and the command line; mappings pick from it once it
/// declares roles, a role outside it refused at its field; mappings of a group that does not
/// exist yet are flagged; role names have a strict shape while the catalogue is empty.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn the_role_catalogue_is_managed_and_mappings_pick_from_it() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let r = s.admin(&key, Method::GET, "/roles", None).await;
    r.expect(200);
    assert_eq!(r.json, json!({"roles": []}));
    // Empty catalogue: any well-formed name, but not markup or punctuation.
    for bad in ["<script>x</script>", "Admin Role!!"] {
        let r = s
            .admin(
                &key,
                Method::POST,
                "/tenants/acme/role-mappings",
                Some(json!({"group": {"by": "displayName", "value": "X"}, "roles": [bad]})),
            )
            .await;
        r.expect(400);
        assert!(r.text.contains("a role name has"), "{}", r.text);
    }
    s.admin(&key, Method::PUT, "/roles/%3Cscript%3E", Some(json!({})))
        .await
        .expect(400);
    let r = s
        .admin(
            &key,
            Method::PUT,
            "/roles/editor",
            Some(json!({"description": "Edits documents"})),
        )
        .await;
    r.expect(201);
    assert_eq!(r.json["name"], "editor");
    assert_eq!(r.json["description"], "Edits documents");
    s.admin(
        &key,
        Method::PUT,
        "/roles/editor",
        Some(json!({"description": "Edits and publishes"})),
    )
    .await
    .expect(200);
    s.admin(&key, Method::PUT, "/roles/team%20lead", Some(json!({})))
        .await
        .expect(201);
    s.admin(&key, Method::PUT, "/roles/x", Some(json!({"nope": 1})))
        .await
        .expect(400);
    let out = s.cli_ok(&["roles", "add", "viewer", "--description", "Reads only"]);
    assert!(out.contains("added the role viewer"), "{out}");
    let out = s.cli_ok(&["roles", "list"]);
    assert!(
        out.contains("editor\tEdits and publishes") && out.contains("team lead"),
        "{out}"
    );
    let v: Value = serde_json::from_str(s.cli_ok(&["roles", "list", "--json"]).trim()).unwrap();
    let names: Vec<&str> = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["editor", "team lead", "viewer"]);
    assert!(!s.cli(&["roles", "add", "Bad!"]).status.success());

    // Now mappings pick from it: the admin API refuses a role outside it.
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants/acme/role-mappings",
            Some(json!({"group": {"by": "displayName", "value": "Sales"}, "roles": ["owner"]})),
        )
        .await;
    r.expect(400);
    assert!(r.text.contains("not in the role catalogue"), "{}", r.text);

    // The console offers its roles as boxes; a role outside it is refused at the field.
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let html = page(&o, "/console/t/acme/settings/roles", &jar).await;
    let csrf = csrf_of(&html);
    assert!(html.contains("name=\"role\" value=\"editor\""), "{html}");
    assert!(section(&html, "h-catalogue").contains("Edits and publishes"));
    let mapping = |roles: &[&str]| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("by", "displayName".to_owned()),
            ("value", "Engineering".to_owned()),
        ];
        f.extend(roles.iter().map(|r| ("role", (*r).to_owned())));
        f
    };
    let r = post_form(
        &o,
        "/console/t/acme/role-mappings",
        &jar,
        &mapping(&["owner"]),
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    let roles = section(&html, "h-roles");
    assert!(
        roles
            .contains("id=\"new-roles-error\">Roles: &#34;owner&#34; is not in the role catalogue")
            || roles
                .contains("id=\"new-roles-error\">Roles: \"owner\" is not in the role catalogue"),
        "{roles}"
    );
    assert!(
        roles.contains("value=\"Engineering\""),
        "the group stays typed"
    );
    let r = post_form(
        &o,
        "/console/t/acme/role-mappings",
        &jar,
        &mapping(&["editor", "viewer"]),
    )
    .await;
    assert_eq!(
        location(&r),
        "/console/t/acme/settings/roles?done=mapping-added#h-roles"
    );
    let list = s.admin_get(&key, "/tenants/acme/role-mappings").await;
    assert_eq!(
        list["role_mappings"][0]["roles"],
        json!(["editor", "viewer"])
    );
    // No group named Engineering yet: flagged, until the identity provider pushes it.
    let html = page(&o, "/console/t/acme/settings/roles", &jar).await;
    assert!(html.contains("No group named Engineering yet"), "{html}");
    s.create_group("engineering", &[]).await;
    let html = page(&o, "/console/t/acme/settings/roles", &jar).await;
    assert!(!html.contains("No group named Engineering yet"));
    // "Map roles to this group" prefills the group on the roles page.
    let g = s.create_group("Support", &[]).await;
    let html = page(
        &o,
        &format!("/console/t/acme/groups/{}", g["id"].as_str().unwrap()),
        &jar,
    )
    .await;
    assert!(
        html.contains("href=\"/console/t/acme/settings/roles?map=Support#h-add-mapping\""),
        "{html}"
    );
    let html = page(&o, "/console/t/acme/settings/roles?map=Support", &jar).await;
    assert!(html.contains("id=\"new-value\" name=\"value\" value=\"Support\""));

    // The console's catalogue form (operators): a bad name at its field, a good one saved.
    let r = post_form(
        &o,
        "/console/t/acme/role-catalogue",
        &jar,
        &[
            ("csrf", csrf.clone()),
            ("name", "<b>x</b>".to_owned()),
            ("description", "d".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(section(&html, "h-catalogue").contains("id=\"cat-name-error\""));
    assert!(!html.contains("<b>x</b>"), "escaped");
    let r = post_form(
        &o,
        "/console/t/acme/role-catalogue",
        &jar,
        &[
            ("csrf", csrf.clone()),
            ("name", "billing".to_owned()),
            ("description", String::new()),
        ],
    )
    .await;
    assert_eq!(
        location(&r),
        "/console/t/acme/settings/roles?done=catalogue-added#h-catalogue"
    );
    // Removing: the command line and the admin API; mappings keep what they have.
    s.cli_ok(&["roles", "remove", "viewer"]);
    assert!(!s.cli(&["roles", "remove", "viewer"]).status.success());
    s.admin(&key, Method::DELETE, "/roles/billing", None)
        .await
        .expect(204);
    s.admin(&key, Method::DELETE, "/roles/billing", None)
        .await
        .expect(404);
    let list = s.admin_get(&key, "/tenants/acme/role-mappings").await;
    assert_eq!(
        list["role_mappings"][0]["roles"],
        json!(["editor", "viewer"])
    );
    let audit = s.admin_get(&key, "/audit-log").await.to_string();
    assert!(
        audit.contains("role_catalogue.put") && audit.contains("role_catalogue.remove"),
        "{audit}"
    );
}

/// Which catalogue roles the IT admin may grant is an operator's setting: none at first, then
/// those ticked; the IT admin can change neither it nor who decides on the guard.
#[tokio::test]
async fn an_it_admin_grants_only_the_grantable_roles() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    for r in ["editor", "admin"] {
        s.admin(&key, Method::PUT, &format!("/roles/{r}"), Some(json!({})))
            .await
            .expect(201);
    }
    let it = set_cookie(&use_setup_link(&o, &setup_link(&s, "acme")).await).unwrap();
    let html = page(&o, "/console/t/acme/settings/roles", &it).await;
    let it_csrf = csrf_of(&html);
    assert!(html.contains("no role yet"), "{html}");
    assert!(
        !html.contains("id=\"add-role\""),
        "the catalogue is the operator's"
    );
    let mapping = |role: &str| {
        vec![
            ("csrf", it_csrf.clone()),
            ("by", "displayName".to_owned()),
            ("value", "Sales".to_owned()),
            ("role", role.to_owned()),
        ]
    };
    let r = post_form(&o, "/console/t/acme/role-mappings", &it, &mapping("editor")).await;
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("you may not grant"));
    // The IT admin cannot allow itself more.
    let r = post_form(
        &o,
        "/console/t/acme/grantable-roles",
        &it,
        &[("csrf", it_csrf.clone()), ("grantable", "admin".to_owned())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 403);
    let r = post_form(
        &o,
        "/console/t/acme/settings",
        &it,
        &[
            ("csrf", it_csrf.clone()),
            ("section", "guard".to_owned()),
            ("guard_max_percent", "20".to_owned()),
            ("guard_min_count", "10".to_owned()),
            ("guard_window_minutes", "15".to_owned()),
            ("guard_decided_by", "it_admin".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("changed by the operator only"));
    // The operator allows editor.
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let csrf = csrf_of(&page(&o, "/console/t/acme/settings/roles", &jar).await);
    let r = post_form(
        &o,
        "/console/t/acme/grantable-roles",
        &jar,
        &[("csrf", csrf), ("grantable", "editor".to_owned())],
    )
    .await;
    assert_eq!(
        location(&r),
        "/console/t/acme/settings/roles?done=grantable#h-grantable"
    );
    let st = s.admin_get(&key, "/tenants/acme/settings").await;
    assert_eq!(st["grantable_roles"], json!(["editor"]));
    let r = post_form(&o, "/console/t/acme/role-mappings", &it, &mapping("editor")).await;
    assert_eq!(r.status().as_u16(), 303);
    let r = post_form(&o, "/console/t/acme/role-mappings", &it, &mapping("admin")).await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("you may not grant &#34;admin&#34;")
            || html.contains("you may not grant \"admin\""),
        "{html}"
    );
    // Assigned in the app too: the user's roles form.
    let id = s.user("ann").await;
    let user_page = page(&o, &format!("/console/t/acme/users/{id}"), &it).await;
    let r = post_form(
        &o,
        &format!("/console/t/acme/users/{id}/roles"),
        &it,
        &[("csrf", csrf_of(&user_page)), ("roles", "admin".to_owned())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("you may not grant"));
    // The user page offers the catalogue as boxes: editor to tick, admin the operator's.
    assert!(
        user_page.contains("name=\"role\" value=\"editor\""),
        "{user_page}"
    );
    assert!(!user_page.contains("id=\"direct-roles\" name=\"roles\""));
    let admin_box = user_page
        .split("value=\"admin\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_default();
    assert!(admin_box.contains("disabled"), "{user_page}");
    // Ticking a box the page does not offer is refused, the boxes as they were ticked.
    let r = post_form(
        &o,
        &format!("/console/t/acme/users/{id}/roles"),
        &it,
        &[
            ("csrf", csrf_of(&user_page)),
            ("role", "editor".to_owned()),
            ("role", "admin".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("you may not grant"), "{html}");
    let editor_box = html
        .split("value=\"editor\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_default();
    assert!(editor_box.contains("checked"), "{html}");
    assert!(s
        .admin_get(&key, &format!("/tenants/acme/users/{id}"))
        .await["direct_roles"]
        .as_array()
        .is_none_or(Vec::is_empty));
    // A grantable box saves.
    let r = post_form(
        &o,
        &format!("/console/t/acme/users/{id}/roles"),
        &it,
        &[("csrf", csrf_of(&user_page)), ("role", "editor".to_owned())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let user_page = page(&o, &format!("/console/t/acme/users/{id}"), &it).await;
    let editor_box = user_page
        .split("value=\"editor\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap_or_default();
    assert!(editor_box.contains("checked"), "{user_page}");
}

/// The guard's page lists what it holds (userName linked, what was asked, when), and asks
/// with the count before deciding; the operator decides unless the tenant lets the IT admin.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn the_guard_page_lists_the_held_users_and_respects_who_decides() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    s.set_settings(
        &s.tenant,
        json!({"deprovision_guard": {"max_percent": 10, "min_count": 1, "window_minutes": 5}}),
    );
    let ids = s.users("g", 6).await;
    s.deactivate(&ids[0]).await.expect(200);
    s.deactivate(&ids[1]).await.expect(503);
    s.deactivate(&ids[2]).await.expect(503);
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let overview = page(&o, "/console/t/acme", &jar).await;
    assert!(overview.contains("Deprovisioning is paused"), "{overview}");
    assert!(overview.contains("href=\"/console/t/acme/settings/guard#h-held\""));
    let html = page(&o, "/console/t/acme/settings/guard", &jar).await;
    let held = section(&html, "h-guard");
    for id in &ids[1..3] {
        assert!(
            held.contains(&format!("href=\"/console/t/acme/users/{id}\"")),
            "{held}"
        );
    }
    assert!(held.contains(">g1</a>") && held.contains(">Deactivate</td>"));
    assert!(held.contains("Who decides: the operator."));
    assert!(held.contains("<h2 id=\"dlg-guard-confirm-h\">Deactivate 2 users?</h2>"));
    assert!(held.contains("Refuse the 2 held requests?"));
    assert!(
        !held.contains("dlg-guard-confirm-d\" open"),
        "closed until asked"
    );
    let asked = page(
        &o,
        "/console/t/acme/settings/guard?confirm=guard-confirm",
        &jar,
    )
    .await;
    assert!(asked.contains("aria-describedby=\"dlg-guard-confirm-d\" open"));

    // The IT admin sees the list, but the operator decides: its decision is refused.
    let it = set_cookie(&use_setup_link(&o, &setup_link(&s, "acme")).await).unwrap();
    let html = page(&o, "/console/t/acme/settings/guard", &it).await;
    assert!(html.contains(">g2</a>"));
    assert!(html.contains("Only the operator can"), "{html}");
    assert!(!html.contains("id=\"confirm-guard-confirm\""));
    assert!(
        !html.contains("id=\"guard_decided_by\""),
        "an operator's setting"
    );
    let it_csrf = csrf_of(&html);
    let r = post_form(
        &o,
        "/console/t/acme/guard/confirm",
        &it,
        &[("csrf", it_csrf.clone())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("The operator decides"));
    assert_eq!(s.guard_status(&key).await["state"], "tripped");

    // The operator lets the IT admin decide (the guard's form on its page).
    let csrf = csrf_of(&page(&o, "/console/t/acme/settings/guard", &jar).await);
    let r = post_form(
        &o,
        "/console/t/acme/settings",
        &jar,
        &[
            ("csrf", csrf),
            ("section", "guard".to_owned()),
            ("guard_enabled", "on".to_owned()),
            ("guard_max_percent", "10".to_owned()),
            ("guard_min_count", "1".to_owned()),
            ("guard_window_minutes", "5".to_owned()),
            ("guard_decided_by", "it_admin".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let st = s.admin_get(&key, "/tenants/acme/settings").await;
    assert_eq!(st["guard_decided_by"], "it_admin", "{st}");
    let html = page(&o, "/console/t/acme/settings/guard", &it).await;
    assert!(html.contains("Who decides: the customer's IT admin"));
    assert!(html.contains("id=\"confirm-guard-reject\""));
    let r = post_form(
        &o,
        "/console/t/acme/guard/reject",
        &it,
        &[("csrf", it_csrf)],
    )
    .await;
    assert_eq!(
        location(&r),
        "/console/t/acme/settings/guard?done=guard-reject#main"
    );
    let g = s.guard_status(&key).await;
    assert_eq!(g["state"], "rejected", "{g}");
    assert_eq!(g["decided_by"], "console:setup-link:acme");
    s.deactivate(&ids[3]).await.expect(503);
    let html = page(&o, "/console/t/acme/settings/guard?done=guard-reject", &it).await;
    assert!(html.contains("these users stay active"), "{html}");
}

/// Every section page walked in Chromium, the role catalogue used from the roles page, and
/// the guard's dialog stating the count.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn console_settings_in_chromium() {
    let Some(driver) = start_driver() else {
        return;
    };
    let s = TestServer::start().await;
    s.set_settings(
        &s.tenant,
        json!({"deprovision_guard": {"max_percent": 10, "min_count": 1, "window_minutes": 5}}),
    );
    let ids = s.users("held", 6).await;
    s.deactivate(&ids[0]).await.expect(200);
    for id in &ids[1..4] {
        s.deactivate(id).await.expect(503);
    }
    let password = operator(&s, "ops@example.com");
    let c = connect(&driver).await;
    c.set_window_size(1280, 1000).await.unwrap();
    let o = s.origin.clone();
    c.goto(&format!("{o}/console/sign-in")).await.unwrap();
    fill(&c, "#email", "ops@example.com").await;
    fill(&c, "#password", &password).await;
    click(&c, "#sign-in").await;
    css(&c, "#tenants").await;

    c.goto(&format!("{o}/console/t/acme")).await.unwrap();
    assert!(text(&c, "#h-guard")
        .await
        .contains("Deprovisioning is paused"));
    shoot(&c, "S01-overview").await;
    for (i, (path_, label, h1)) in SECTIONS.iter().enumerate().skip(1) {
        click(&c, &format!("nav.subnav a[href='{path_}']")).await;
        assert_eq!(path(&c).await, *path_);
        assert_eq!(text(&c, "h1").await, *h1);
        assert_eq!(text(&c, "nav.subnav a[aria-current='page']").await, *label);
        if *label != "Roles" && *label != "Guard" {
            shoot(&c, &format!("S0{}-{}", i + 1, label.to_lowercase())).await;
        }
    }

    // Roles: declare two roles, then a mapping picks them from the catalogue.
    c.goto(&format!("{o}/console/t/acme/settings/roles"))
        .await
        .unwrap();
    fill(&c, "#cat-name", "editor").await;
    fill(&c, "#cat-description", "Edits documents").await;
    click(&c, "#add-role").await;
    wait_text(&c, "Role saved in the catalogue.").await;
    fill(&c, "#cat-name", "viewer").await;
    click(&c, "#add-role").await;
    wait_text(&c, "viewer").await;
    assert!(text(&c, "#catalogue").await.contains("Edits documents"));
    fill(&c, "#new-value", "Engineering").await;
    click(&c, "label[for='new-role-1']").await;
    click(&c, "#add-mapping").await;
    wait_text(&c, "Role mapping added.").await;
    let mappings = text(&c, "#mappings").await;
    assert!(
        mappings.contains("editor") && mappings.contains("No group named Engineering yet"),
        "{mappings}"
    );
    click(&c, "#save-grantable").await;
    wait_text(&c, "Saved: the roles").await;
    shoot(&c, "S05-roles").await;

    // Guard: the held users, and the dialog with the count.
    c.goto(&format!("{o}/console/t/acme/settings/guard"))
        .await
        .unwrap();
    let held = text(&c, "#held").await;
    assert!(held.contains("held1") && held.contains("held3"), "{held}");
    shoot(&c, "S06-guard").await;
    click(&c, "#guard-confirm").await;
    assert_eq!(
        js(
            &c,
            "return document.getElementById('dlg-guard-confirm').matches(':modal')"
        )
        .await,
        json!(true)
    );
    assert_eq!(
        text(&c, "#dlg-guard-confirm-h").await,
        "Deactivate 3 users?"
    );
    shoot(&c, "S07-guard-dialog").await;
    click(&c, "#confirm-guard-confirm").await;
    wait_text(&c, "Confirmed").await;
    s.deactivate(&ids[1]).await.expect(200);
    // The guard's form: two bad values, both at their fields, as typed.
    css(&c, "#guard_max_percent").await.clear().await.unwrap();
    fill(&c, "#guard_max_percent", "150").await;
    css(&c, "#guard_window_minutes")
        .await
        .clear()
        .await
        .unwrap();
    fill(&c, "#guard_window_minutes", "0").await;
    click(&c, "#save-guard").await;
    wait_text(&c, "Nothing was saved: 2 problems to fix.").await;
    assert_eq!(value(&c, "#guard_max_percent").await, "150");
    assert!(text(&c, "#guard_max_percent-error")
        .await
        .contains("from 1 to 100"));
    shoot(&c, "S08-guard-refused").await;
    c.close().await.unwrap();
}
