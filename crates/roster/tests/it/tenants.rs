//! Tenants, SCIM enablement, tokens and settings over the admin API and the command line, and
//! what the settings do to SCIM: deleting a tenant (tokens dead at once, data retained or
//! erased), enabling and disabling SCIM, at most two live tokens, rotation, per-tenant token
//! lifetime, `token.expiring`, `groups_enabled=false`, `deprovision_on_delete=erase` and
//! `scim_enabled=false`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::eventually;
use crate::events::types;
use crate::harness::{group_body, user_body, Resp, TestServer, GROUP_URN};

const GROUPS_DETAIL: &str = "groups are not synced for this tenant";

impl TestServer {
    /// Every event of `tenant`, in order.
    async fn events_of(&self, key: &str, tenant: &str) -> Vec<Value> {
        let page = self
            .admin_get(key, &format!("/tenants/{tenant}/events?limit=1000"))
            .await;
        page["events"].as_array().unwrap().clone()
    }

    /// A SCIM GET with an explicit token, at any tenant's base URL.
    async fn scim_get(&self, tenant: &str, path: &str, token: &str) -> Resp {
        self.send(
            self.client
                .get(format!("{}/scim/v2/{tenant}{path}", self.origin))
                .bearer_auth(token),
        )
        .await
    }
}

fn prefix_of(token: &str) -> String {
    token.rsplit_once('_').unwrap().0.to_owned()
}

fn time_of(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap()
}

/// The 401 every refused SCIM request gets, whatever the reason.
#[track_caller]
fn assert_refused(r: &Resp) {
    r.expect_error(401, None);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|w| w.starts_with("Bearer")));
    assert_eq!(
        r.json["detail"], "invalid, expired or revoked token for this tenant",
        "the same 401 as a bad token: {}",
        r.text
    );
}

#[tokio::test]
async fn tenant_crud_with_pagination_and_audit() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants",
            Some(json!({"name": "Globex Corp", "idp": "okta"})),
        )
        .await;
    r.expect(201);
    assert_eq!(r.json["id"], "globex-corp");
    assert_eq!(r.json["name"], "Globex Corp");
    assert_eq!(r.json["idp"], "okta");
    assert_eq!(
        r.json["scim_base_url"],
        format!("{}/scim/v2/globex-corp", s.origin)
    );
    assert_eq!(r.json["settings"]["scim_enabled"], false, "enabled later");
    assert_eq!(r.json["settings"]["token_ttl_days"], 365);
    assert!(
        r.json.get("token").is_none(),
        "no token without enable_scim"
    );

    // Ids: explicit, derived, and made up for a name without letters or digits (a non-ASCII
    // name is transliterated: `株式会社` is `zhu-shi-hui-she`, see `ops::tenants::slug`).
    for body in [
        json!({"name": "Initech", "id": "initech-eu"}),
        json!({"name": "Umbrella"}),
        json!({"name": "***"}),
    ] {
        s.admin(&key, Method::POST, "/tenants", Some(body))
            .await
            .expect(201);
    }
    let dup = s
        .admin(
            &key,
            Method::POST,
            "/tenants",
            Some(json!({"name": "ACME"})),
        )
        .await;
    dup.expect(409);
    assert_eq!(dup.json["error"]["code"], "conflict");
    assert!(dup.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    for bad in [
        json!({"name": "  "}),
        json!({"name": "x", "id": "Bad Id"}),
        json!({"name": "x", "idp": "azure"}),
        json!({"name": "x", "settings": {"token_ttl_days": 0}}),
        json!({"name": "x", "colour": "red"}),
        json!({"name": "x", "id": null}),
        json!(["x"]),
    ] {
        let r = s
            .admin(&key, Method::POST, "/tenants", Some(bad.clone()))
            .await;
        r.expect(400);
        assert_eq!(r.json["error"]["code"], "invalid_request", "{bad}");
    }

    // Pages of two, by id, until next_cursor is null.
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/tenants?limit=2&cursor={c}"),
            None => "/tenants?limit=2".to_owned(),
        };
        let page = s.admin_get(&key, &path).await;
        let items = page["tenants"].as_array().unwrap();
        assert!(items.len() <= 2);
        ids.extend(items.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(ids.len(), 5, "{ids:?}");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(ids.iter().any(|i| i.starts_with("tenant-")), "{ids:?}");
    s.admin(&key, Method::GET, "/tenants?limit=0", None)
        .await
        .expect(400);

    // Get, update (name, idp, settings), settings endpoint.
    let t = s.admin_get(&key, "/tenants/globex-corp").await;
    assert_eq!(t["name"], "Globex Corp");
    let r = s
        .admin(
            &key,
            Method::PATCH,
            "/tenants/globex-corp",
            Some(json!({"name": "Globex", "idp": "entra", "settings": {"welcome_email": true}})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["name"], "Globex");
    assert_eq!(r.json["idp"], "entra");
    assert_eq!(r.json["settings"]["welcome_email"], true);
    let r = s
        .admin(
            &key,
            Method::PATCH,
            "/tenants/globex-corp/settings",
            Some(json!({
                "idp": "onelogin",
                "sso_enforced": true,
                "on_existing_user": "reject",
                "deprovision_guard": {"max_percent": 35},
                "welcome_email": null,
            })),
        )
        .await;
    r.expect(200);
    let st = s.admin_get(&key, "/tenants/globex-corp/settings").await;
    assert_eq!(st, r.json);
    assert_eq!(st["idp"], "onelogin");
    assert_eq!(st["sso_enforced"], true);
    assert_eq!(st["on_existing_user"], "reject");
    assert_eq!(st["welcome_email"], false, "null restores the default");
    assert_eq!(st["deprovision_guard"]["max_percent"], 35);
    assert_eq!(st["deprovision_guard"]["min_count"], 10);
    for bad in [
        json!({"scim_enabled": true}),
        json!({"groups_enabled": "yes"}),
        json!({"deprovision_on_delete": "shred"}),
        json!({"token_expiry_warning_days": 400}),
        json!({"deprovision_guard": {"max_percent": 101}}),
        json!({"unknown": 1}),
    ] {
        let r = s
            .admin(
                &key,
                Method::PATCH,
                "/tenants/globex-corp/settings",
                Some(bad.clone()),
            )
            .await;
        r.expect(400);
        let msg = r.json["error"]["message"].as_str().unwrap();
        let name = bad.as_object().unwrap().keys().next().unwrap().clone();
        assert!(msg.contains(&name), "{bad}: {msg}");
    }
    assert_eq!(
        s.admin_get(&key, "/tenants/globex-corp/settings").await,
        st,
        "a refused patch changes nothing"
    );

    // Every tenant-scoped endpoint: an unknown tenant is a 404.
    for (m, p, b) in [
        (Method::GET, "/tenants/nope", None),
        (Method::PATCH, "/tenants/nope", Some(json!({"name": "x"}))),
        (Method::DELETE, "/tenants/nope?data=erase", None),
        (Method::GET, "/tenants/nope/settings", None),
        (Method::PATCH, "/tenants/nope/settings", Some(json!({}))),
        (Method::POST, "/tenants/nope/scim/enable", None),
        (
            Method::POST,
            "/tenants/nope/scim/disable",
            Some(json!({"confirm": true})),
        ),
        (Method::GET, "/tenants/nope/tokens", None),
        (Method::POST, "/tenants/nope/tokens", None),
        (Method::POST, "/tenants/nope/tokens/rotate", None),
        (Method::DELETE, "/tenants/nope/tokens/rsct_AbCd1234", None),
    ] {
        let r = s.admin(&key, m.clone(), p, b).await;
        assert_eq!(r.status, 404, "{m} {p}: {}", r.text);
        assert_eq!(r.json["error"]["code"], "not_found");
    }
    // And nothing works without the key.
    let r = s.admin("rsak_nope", Method::GET, "/tenants", None).await;
    r.expect(401);

    // Every change is in the audit log, by this key.
    let audit = s.admin_get(&key, "/audit-log").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["tenant.create", "tenant.update", "tenant.settings"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let e = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "tenant.settings")
        .unwrap();
    assert!(e["actor"].as_str().unwrap().starts_with("admin-key:rsak_"));
    assert_eq!(e["tenant"], "globex-corp");
}

#[tokio::test]
async fn deleting_a_tenant_stops_its_tokens_at_once_and_retains_or_erases() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.user("bjensen").await;
    s.get("/Users").await.expect(200);

    let r = s.admin(&key, Method::DELETE, "/tenants/acme", None).await;
    r.expect(400);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("data=retain"));
    s.get("/Users").await.expect(200);

    s.admin(&key, Method::DELETE, "/tenants/acme?data=retain", None)
        .await
        .expect(204);
    assert_refused(&s.get("/Users").await);
    s.admin(&key, Method::GET, "/tenants/acme", None)
        .await
        .expect(404);
    s.admin(&key, Method::GET, "/tenants/acme/events", None)
        .await
        .expect(404);
    let listed = s.admin_get(&key, "/tenants").await;
    assert!(listed["tenants"].as_array().unwrap().is_empty());
    // The retained data keeps the id reserved.
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants",
            Some(json!({"name": "Acme", "id": "acme"})),
        )
        .await;
    r.expect(409);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("data=erase"),
        "{}",
        r.text
    );
    s.admin(&key, Method::DELETE, "/tenants/acme?data=retain", None)
        .await
        .expect(404);

    // Erasing frees the id; the new tenant starts empty.
    s.admin(&key, Method::DELETE, "/tenants/acme?data=erase", None)
        .await
        .expect(204);
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants",
            Some(json!({"name": "Acme", "id": "acme", "enable_scim": true})),
        )
        .await;
    r.expect(201);
    let token = r.json["token"]["token"].as_str().unwrap().to_owned();
    assert_eq!(r.json["token"]["scim_base_url"], s.base.as_str());
    let users = s.scim_get("acme", "/Users", &token).await;
    users.expect(200);
    assert_eq!(users.json["totalResults"], 0, "erased");
    let events = s.events_of(&key, "acme").await;
    assert_eq!(types(&events), ["token.created"], "a fresh stream");
    assert_refused(&s.get("/Users").await);

    // Erase directly, from the command line (confirmation needed).
    let b = s.create_tenant("Beta");
    let b_token = b["token"].as_str().unwrap();
    let out = s.cli(&["tenant", "delete", "beta", "--data", "erase"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    s.scim_get("beta", "/Users", b_token).await.expect(200);
    s.cli_ok(&["tenant", "delete", "beta", "--data", "erase", "--yes"]);
    // Another process: the server's token cache sees it within a second.
    let r = eventually(
        "the erased tenant's token refused",
        || s.scim_get("beta", "/Users", b_token),
        |r| r.status == 401,
    )
    .await;
    assert_refused(&r);
    let audit = s.admin_get(&key, "/audit-log").await;
    let deletes = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "tenant.delete")
        .count();
    assert_eq!(deletes, 3);
}

#[tokio::test]
async fn enabling_and_disabling_scim() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.admin(
        &key,
        Method::POST,
        "/tenants",
        Some(json!({"name": "Initech"})),
    )
    .await
    .expect(201);
    // Disabled from the start: no token can be issued.
    let r = s
        .admin(&key, Method::POST, "/tenants/initech/tokens", None)
        .await;
    r.expect(409);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("scim/enable"));

    let r = s
        .admin(&key, Method::POST, "/tenants/initech/scim/enable", None)
        .await;
    r.expect(200);
    assert_eq!(
        r.json["scim_base_url"],
        format!("{}/scim/v2/initech", s.origin)
    );
    let token = r.json["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("rsct_"));
    assert_eq!(r.json["prefix"], prefix_of(&token).as_str());
    s.scim_get("initech", "/Users", &token).await.expect(200);
    let again = s
        .admin(&key, Method::POST, "/tenants/initech/scim/enable", None)
        .await;
    again.expect(409);
    // The token is never shown again.
    let listed = s
        .admin(&key, Method::GET, "/tenants/initech/tokens", None)
        .await;
    assert!(!listed.text.contains(&token));

    // Disabling needs an explicit confirmation.
    for body in [None, Some(json!({})), Some(json!({"confirm": false}))] {
        let r = s
            .admin(&key, Method::POST, "/tenants/initech/scim/disable", body)
            .await;
        r.expect(400);
        assert!(r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"confirm\": true"));
        s.scim_get("initech", "/Users", &token).await.expect(200);
    }
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants/initech/scim/disable",
            Some(json!({"confirm": true})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["scim_enabled"], false);
    assert_eq!(r.json["revoked"], json!([prefix_of(&token)]));
    assert_refused(&s.scim_get("initech", "/Users", &token).await);
    let st = s.admin_get(&key, "/tenants/initech/settings").await;
    assert_eq!(st["scim_enabled"], false);
    let events = s.events_of(&key, "initech").await;
    assert_eq!(
        types(&events),
        ["scim.enabled", "token.created", "scim.disabled"]
    );
    assert_eq!(
        events[2]["data"]["revoked"],
        json!([prefix_of(&token)]),
        "{events:?}"
    );

    // Enabled again: a new token works, the old one stays dead.
    let r = s
        .admin(&key, Method::POST, "/tenants/initech/scim/enable", None)
        .await;
    r.expect(200);
    let token2 = r.json["token"].as_str().unwrap();
    s.scim_get("initech", "/Users", token2).await.expect(200);
    assert_refused(&s.scim_get("initech", "/Users", &token).await);
    let audit = s.admin_get(&key, "/audit-log").await.to_string();
    assert!(audit.contains("scim.enable") && audit.contains("scim.disable"));
    assert!(
        !audit.contains(&token) && !audit.contains(token2),
        "no secret"
    );
}

#[tokio::test]
async fn scim_disabled_from_the_command_line_is_a_401_like_a_bad_token() {
    let s = TestServer::start().await;
    s.get("/Users").await.expect(200);
    let out = s.cli(&["scim", "disable", "acme"]);
    assert!(!out.status.success(), "needs --yes");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    s.get("/Users").await.expect(200);
    let out = s.cli_ok(&["scim", "disable", "acme", "--yes"]);
    assert!(out.contains(&prefix_of(&s.token)), "{out}");
    // Another process: the server's token cache sees it within a second.
    eventually(
        "the disabled tenant refused",
        || s.get("/Users"),
        |r| r.status == 401,
    )
    .await;
    let bad = s
        .scim_get(
            "acme",
            "/Users",
            "rsct_AbCd1234_0123456789012345678901234567890123456789",
        )
        .await;
    assert_refused(&bad);
    for path in [
        "/Users",
        "/Groups",
        "/ServiceProviderConfig",
        "/ResourceTypes",
    ] {
        let r = s.get(path).await;
        assert_refused(&r);
        assert_eq!(r.json, bad.json, "{path}");
    }
    let t: Value =
        serde_json::from_str(s.cli_ok(&["scim", "enable", "acme", "--json"]).trim()).unwrap();
    let token = t["token"].as_str().unwrap();
    s.scim_get("acme", "/Users", token).await.expect(200);
    let show = s.cli_ok(&["tenant", "show", "acme"]);
    assert!(show.contains("scim_enabled: true"), "{show}");
}

#[tokio::test]
async fn at_most_two_live_tokens_and_rotation_kills_the_old_one_at_once() {
    // Last use is written in the background; often here.
    let s = TestServer::start_with(&["--token-use-flush-ms", "50"]).await;
    let key = s.admin_key();
    let first = s.token.clone();
    let r = s
        .admin(&key, Method::POST, "/tenants/acme/tokens", None)
        .await;
    r.expect(201);
    let second = r.json["token"].as_str().unwrap().to_owned();
    // Both work: an identity provider can move to the new one without a failed sync.
    s.scim_get("acme", "/Users", &first).await.expect(200);
    s.scim_get("acme", "/Users", &second).await.expect(200);

    let third = s
        .admin(&key, Method::POST, "/tenants/acme/tokens", None)
        .await;
    third.expect(409);
    let msg = third.json["error"]["message"].as_str().unwrap();
    assert!(msg.contains("2 live tokens"), "{msg}");
    assert!(
        msg.contains(&prefix_of(&first)) && msg.contains(&prefix_of(&second)),
        "{msg}"
    );
    let out = s.cli(&["token", "create", "acme"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 live tokens"));

    let list = eventually(
        "both tokens' last use written",
        || s.admin(&key, Method::GET, "/tenants/acme/tokens", None),
        |r| {
            r.status == 200
                && r.json["tokens"]
                    .as_array()
                    .is_some_and(|ts| ts.iter().all(|t| t["last_used_at"].is_string()))
        },
    )
    .await
    .json;
    assert_eq!(list["max_live"], 2);
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    for t in tokens {
        assert_eq!(t["status"], "active");
        assert!(t["created_at"].is_string() && t["expires_at"].is_string());
        assert!(t["last_used_at"].is_string(), "used above: {t}");
        assert_eq!(t["revoked_at"], Value::Null);
    }
    assert!(!list.to_string().contains(&first) && !list.to_string().contains(&second));

    // Revoke the old one: dead at once; room for another.
    s.admin(
        &key,
        Method::DELETE,
        &format!("/tenants/acme/tokens/{}", prefix_of(&first)),
        None,
    )
    .await
    .expect(204);
    assert_refused(&s.scim_get("acme", "/Users", &first).await);
    let again = s
        .admin(
            &key,
            Method::DELETE,
            &format!("/tenants/acme/tokens/{}", prefix_of(&first)),
            None,
        )
        .await;
    again.expect(409);
    assert!(again.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already revoked"));
    s.admin(
        &key,
        Method::DELETE,
        "/tenants/acme/tokens/rsct_zzzzzzzz",
        None,
    )
    .await
    .expect(404);
    // Another tenant's token is not this tenant's.
    let other = s.create_tenant("Other");
    let other_prefix = prefix_of(other["token"].as_str().unwrap());
    s.admin(
        &key,
        Method::DELETE,
        &format!("/tenants/acme/tokens/{other_prefix}"),
        None,
    )
    .await
    .expect(404);
    let r = s
        .admin(&key, Method::POST, "/tenants/acme/tokens", None)
        .await;
    r.expect(201);
    let third = r.json["token"].as_str().unwrap().to_owned();

    // Rotate one: only that one dies.
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants/acme/tokens/rotate",
            Some(json!({"prefix": prefix_of(&second)})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["revoked"], json!([prefix_of(&second)]));
    let fourth = r.json["token"].as_str().unwrap().to_owned();
    assert_refused(&s.scim_get("acme", "/Users", &second).await);
    s.scim_get("acme", "/Users", &third).await.expect(200);
    s.scim_get("acme", "/Users", &fourth).await.expect(200);
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants/acme/tokens/rotate",
            Some(json!({"prefix": prefix_of(&second)})),
        )
        .await;
    r.expect(409);
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants/acme/tokens/rotate",
            Some(json!({"prefix": "rsct_zzzzzzzz"})),
        )
        .await;
    r.expect(404);

    // Rotate all (no body): every older token dies at once.
    let r = s
        .admin(&key, Method::POST, "/tenants/acme/tokens/rotate", None)
        .await;
    r.expect(200);
    let mut revoked: Vec<String> = serde_json::from_value(r.json["revoked"].clone()).unwrap();
    revoked.sort();
    let mut want = vec![prefix_of(&third), prefix_of(&fourth)];
    want.sort();
    assert_eq!(revoked, want);
    let fifth = r.json["token"].as_str().unwrap().to_owned();
    assert_refused(&s.scim_get("acme", "/Users", &third).await);
    assert_refused(&s.scim_get("acme", "/Users", &fourth).await);
    s.scim_get("acme", "/Users", &fifth).await.expect(200);

    // The command line: create, rotate one by prefix.
    let created: Value =
        serde_json::from_str(s.cli_ok(&["token", "create", "acme", "--json"]).trim()).unwrap();
    let sixth = created["token"].as_str().unwrap();
    let rotated: Value = serde_json::from_str(
        s.cli_ok(&[
            "token",
            "rotate",
            "acme",
            "--prefix",
            &prefix_of(sixth),
            "--json",
        ])
        .trim(),
    )
    .unwrap();
    assert_refused(&s.scim_get("acme", "/Users", sixth).await);
    s.scim_get("acme", "/Users", rotated["token"].as_str().unwrap())
        .await
        .expect(200);
    s.scim_get("acme", "/Users", &fifth).await.expect(200);

    let events = s.events_of(&key, "acme").await;
    let t = types(&events);
    assert_eq!(
        t,
        [
            "token.created",
            "token.created",
            "token.revoked",
            "token.created",
            "token.rotated",
            "token.rotated",
            "token.created",
            "token.rotated",
        ]
    );
    let audit = s.admin_get(&key, "/audit-log").await.to_string();
    for a in ["token.create", "token.revoke", "token.rotate"] {
        assert!(audit.contains(a), "{a}");
    }
}

#[tokio::test]
async fn token_lifetime_is_a_tenant_setting() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let list = s.admin_get(&key, "/tenants/acme/tokens").await;
    let t = &list["tokens"][0];
    assert_eq!(
        time_of(&t["expires_at"]) - time_of(&t["created_at"]),
        time::Duration::days(365),
        "one year by default"
    );
    s.admin(
        &key,
        Method::PATCH,
        "/tenants/acme/settings",
        Some(json!({"token_ttl_days": 7})),
    )
    .await
    .expect(200);
    let r = s
        .admin(&key, Method::POST, "/tenants/acme/tokens/rotate", None)
        .await;
    r.expect(200);
    assert_eq!(
        time_of(&r.json["expires_at"]) - time_of(&r.json["created_at"]),
        time::Duration::days(7)
    );
    // The command line follows the setting too, unless told otherwise.
    s.cli_ok(&["tenant", "settings", "acme", "--set", "token_ttl_days=30"]);
    let t: Value =
        serde_json::from_str(s.cli_ok(&["token", "create", "acme", "--json"]).trim()).unwrap();
    let list = s.admin_get(&key, "/tenants/acme/tokens").await;
    let rec = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["prefix"] == prefix_of(t["token"].as_str().unwrap()).as_str())
        .unwrap();
    assert_eq!(
        time_of(&rec["expires_at"]) - time_of(&rec["created_at"]),
        time::Duration::days(30)
    );
}

#[tokio::test]
async fn token_expiring_is_emitted_once_per_token() {
    let s = TestServer::start_with(&["--token-check-interval-ms", "100"]).await;
    let key = s.admin_key();
    // The first token lives a year: nothing to announce.
    // A 10-day token with a 30-day warning window is announced at once.
    s.admin(
        &key,
        Method::PATCH,
        "/tenants/acme/settings",
        Some(json!({"token_ttl_days": 10, "token_expiry_warning_days": 30})),
    )
    .await
    .expect(200);
    let r = s
        .admin(&key, Method::POST, "/tenants/acme/tokens", None)
        .await;
    r.expect(201);
    let prefix = r.json["prefix"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let expiring = loop {
        let events = s.events_of(&key, "acme").await;
        let e: Vec<Value> = events
            .into_iter()
            .filter(|e| e["type"] == "token.expiring")
            .collect();
        if !e.is_empty() {
            break e;
        }
        assert!(Instant::now() < deadline, "no token.expiring in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(expiring[0]["data"]["token"]["prefix"], prefix.as_str());
    assert!(expiring[0]["data"]["token"]["expires_at"].is_string());
    // Many more checks run; the event stays single.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = s.events_of(&key, "acme").await;
    let n = events
        .iter()
        .filter(|e| e["type"] == "token.expiring")
        .count();
    assert_eq!(n, 1, "{events:?}");
    assert!(!serde_json::to_string(&events).unwrap().contains(&s.token));
}

#[tokio::test]
async fn groups_disabled_hides_every_group_endpoint_and_discovery() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let uid = s.user("ada").await;
    let g = s.create_group("Engineering", &[&uid]).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    s.cli_ok(&[
        "tenant",
        "settings",
        "acme",
        "--set",
        "groups_enabled=false",
    ]);
    // Another process: the server's cached settings follow within a second.
    eventually("groups hidden", || s.get("/Groups"), |r| r.status == 404).await;

    let gpath = format!("/Groups/{gid}");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]});
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
    for r in [
        s.get("/Groups").await,
        s.get(&gpath).await,
        s.post("/Groups", &group_body("Sales", &[])).await,
        s.put(&gpath, &json!({"schemas": [GROUP_URN], "displayName": "X"}))
            .await,
        s.patch(&gpath, &patch).await,
        s.delete(&gpath).await,
        s.post("/Groups/.search", &search).await,
        s.get("/ResourceTypes/Group").await,
        s.get(&format!("/Schemas/{GROUP_URN}")).await,
    ] {
        r.expect_error(404, None);
        assert!(
            r.json["detail"].as_str().unwrap().contains(GROUPS_DETAIL),
            "{}",
            r.text
        );
    }
    let rt = s.get("/ResourceTypes").await;
    rt.expect(200);
    assert_eq!(rt.json["totalResults"], 1);
    assert_eq!(rt.json["Resources"][0]["name"], "User");
    let schemas = s.get("/Schemas").await;
    schemas.expect(200);
    assert!(!schemas.text.contains(GROUP_URN), "{}", schemas.text);
    // Users still work; the root search covers Users only.
    s.get("/Users").await.expect(200);
    s.get("/ResourceTypes/User").await.expect(200);
    let all = s.post("/.search", &search).await;
    all.expect(200);
    assert_eq!(all.json["totalResults"], 1);

    // Back on: the group is there as it was.
    s.admin(
        &key,
        Method::PATCH,
        "/tenants/acme/settings",
        Some(json!({"groups_enabled": true})),
    )
    .await
    .expect(200);
    let g = s.get(&gpath).await;
    g.expect(200);
    assert_eq!(g.json["members"][0]["value"], uid.as_str());
    assert_eq!(s.get("/ResourceTypes").await.json["totalResults"], 2);
}

#[tokio::test]
async fn erase_on_delete_erases_the_user_and_emits_user_erased() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.admin(
        &key,
        Method::PATCH,
        "/tenants/acme/settings",
        Some(json!({"deprovision_on_delete": "erase"})),
    )
    .await
    .expect(200);
    let uid = s.user("bjensen@example.com").await;
    let other = s.user("other").await;
    let g = s.create_group("Staff", &[&uid, &other]).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    let before = s.feed(&key, 0).await.len();

    s.delete(&format!("/Users/{uid}")).await.expect(204);
    s.get(&format!("/Users/{uid}"))
        .await
        .expect_error(404, None);
    let events = s.feed(&key, 0).await;
    let new = &events[before..];
    assert_eq!(types(new), ["group.members_removed", "user.erased"]);
    assert_eq!(new[1]["data"]["user"]["id"], uid.as_str());
    assert_eq!(new[1]["data"]["user"]["userName"], "bjensen@example.com");
    let g = s.get(&format!("/Groups/{gid}")).await;
    g.expect(200);
    assert_eq!(
        g.json["members"],
        json!([{"value": other, "$ref": format!("{}/Users/{other}", s.base), "type": "User"}])
    );

    // Erased, not retained: the same userName makes a new user with a new id.
    let again = s.create_user(&user_body("bjensen@example.com")).await;
    assert_ne!(again["id"].as_str().unwrap(), uid);
    let events = s.feed(&key, 0).await;
    assert_eq!(events.last().unwrap()["type"], "user.created");

    // With the default, DELETE retains: the same userName restores the same id.
    s.cli_ok(&[
        "tenant",
        "settings",
        "acme",
        "--set",
        "deprovision_on_delete=retain",
    ]);
    let id2 = again["id"].as_str().unwrap();
    s.delete(&format!("/Users/{id2}")).await.expect(204);
    let restored = s.create_user(&user_body("bjensen@example.com")).await;
    assert_eq!(restored["id"].as_str().unwrap(), id2);
}

#[tokio::test]
async fn command_line_tenant_show_update_and_settings() {
    let s = TestServer::start().await;
    let show: Value =
        serde_json::from_str(s.cli_ok(&["tenant", "show", "acme", "--json"]).trim()).unwrap();
    assert_eq!(show["id"], "acme");
    assert_eq!(show["scim_base_url"], s.base.as_str());
    assert_eq!(show["settings"]["scim_enabled"], true);
    let upd: Value = serde_json::from_str(
        s.cli_ok(&[
            "tenant", "update", "acme", "--name", "Acme Inc", "--idp", "okta", "--json",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(upd["name"], "Acme Inc");
    assert_eq!(upd["idp"], "okta");
    let st: Value = serde_json::from_str(
        s.cli_ok(&[
            "tenant",
            "settings",
            "acme",
            "--set",
            "deprovision_guard.max_percent=40",
            "--set",
            "deprovision_guard.window_minutes=30",
            "--set",
            "sso_enforced=true",
            "--json",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(st["deprovision_guard"]["max_percent"], 40);
    assert_eq!(st["deprovision_guard"]["window_minutes"], 30);
    assert_eq!(st["sso_enforced"], true);
    let text = s.cli_ok(&["tenant", "settings", "acme"]);
    assert!(text.contains("sso_enforced: true"), "{text}");
    let bad = s.cli(&["tenant", "settings", "acme", "--set", "token_ttl_days=0"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("token_ttl_days"));
    // A tenant created without SCIM has no token until enabled.
    let out = s.cli_ok(&["tenant", "create", "Hooli", "--no-scim", "--json"]);
    let t: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(t["settings"]["scim_enabled"], false);
    assert!(t.get("token").is_none());
    let list = s.cli_ok(&["tenant", "list"]);
    assert!(list.contains("hooli") && list.contains("off"), "{list}");
    assert!(!s.cli(&["tenant", "show", "nope"]).status.success());
}

#[tokio::test]
async fn secrets_are_stored_only_as_hashes() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let r = s
        .admin(&key, Method::POST, "/tenants/acme/tokens", None)
        .await;
    r.expect(201);
    let second = r.json["token"].as_str().unwrap().to_owned();
    let r = s
        .admin(
            &key,
            Method::POST,
            "/tenants",
            Some(json!({"name": "Initech", "enable_scim": true})),
        )
        .await;
    r.expect(201);
    let third = r.json["token"]["token"].as_str().unwrap().to_owned();
    s.scim_get("acme", "/Users", &second).await.expect(200);
    // The database (and its write-ahead log) never holds a secret part, nor does the log.
    let bytes = s.database_bytes();
    assert!(!bytes.is_empty());
    let text = String::from_utf8_lossy(&bytes);
    for secret in [&key, &s.token, &second, &third] {
        let random = secret.rsplit('_').next().unwrap();
        assert!(!text.contains(random), "a secret is stored in plain text");
        assert!(!s.stderr().contains(random), "a secret is logged");
    }
}
