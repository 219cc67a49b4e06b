//! Identity-provider cycles: each recorded fixture (`tests/fixtures/idp/*.json`) is replayed
//! by `roster simulate` against a running Roster, once for a tenant whose `idp` names that
//! identity provider and once for a `generic` tenant; plus the dialect rules seen over HTTP.

use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::harness::{bin, TestServer, ENTERPRISE_URN, GROUP_URN, PATCH_URN, USER_URN};

const IDPS: [&str; 6] = ["okta", "entra", "onelogin", "jumpcloud", "google", "ping"];

fn simulate(base: &str, token: &str, idp: &str, extra: &[&str]) -> Output {
    Command::new(bin())
        .args([
            "simulate", "--idp", idp, "--target", base, "--token", token, "--json",
        ])
        .args(extra)
        .env_remove("ROSTER_SIMULATE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run roster simulate")
}

fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "simulate printed no JSON report ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Asserts that the whole cycle ran and every step passed.
#[track_caller]
fn assert_cycle_passed(out: &Output, what: &str) -> Value {
    let r = report(out);
    let failed: Vec<&Value> = r["steps"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["ok"] != true).collect())
        .unwrap_or_default();
    assert!(
        out.status.success() && r["ok"] == true && failed.is_empty(),
        "{what}: cycle failed: {:#}",
        json!(failed)
    );
    assert_eq!(r["steps_run"], r["steps_total"], "{what}");
    for s in r["steps"].as_array().unwrap() {
        let src = s["source"].as_str().unwrap_or("");
        assert!(
            src.starts_with("https://") || src.starts_with("assumed: "),
            "{what}: step {} has source {src:?}",
            s["name"]
        );
    }
    r
}

/// A tenant for `idp` on the server: (base URL, token).
fn tenant(s: &TestServer, name: &str, idp: &str) -> (String, String) {
    let out = s.cli_ok(&["tenant", "create", name, "--idp", idp, "--json"]);
    let t: Value = serde_json::from_str(out.trim()).unwrap();
    (
        t["scim_base_url"].as_str().unwrap().to_owned(),
        t["token"].as_str().unwrap().to_owned(),
    )
}

/// Replays one identity provider's recorded cycle with its own idp setting and as `generic`.
async fn replay(idp: &str) {
    let s = TestServer::start().await;
    let (base, token) = tenant(&s, &format!("{idp} customer"), idp);
    let r = assert_cycle_passed(&simulate(&base, &token, idp, &[]), &format!("{idp} tenant"));
    assert!(r["requests"].as_u64().unwrap() > 10);
    // The harness's tenant `acme` is `generic`: the rules are recognised by shape.
    let r = assert_cycle_passed(
        &simulate(&s.base, &s.token, idp, &[]),
        &format!("{idp} on a generic tenant"),
    );
    assert_eq!(r["idp"], idp);
}

#[tokio::test]
async fn okta_cycle() {
    replay("okta").await;
}

#[tokio::test]
async fn entra_cycle() {
    replay("entra").await;
}

#[tokio::test]
async fn onelogin_cycle() {
    replay("onelogin").await;
}

#[tokio::test]
async fn jumpcloud_cycle() {
    replay("jumpcloud").await;
}

#[tokio::test]
async fn google_cycle() {
    replay("google").await;
}

#[tokio::test]
async fn ping_cycle() {
    replay("ping").await;
}

#[tokio::test]
async fn simulate_scales_to_more_users_groups_and_members() {
    let s = TestServer::start().await;
    for idp in ["okta", "entra", "jumpcloud"] {
        let r = assert_cycle_passed(
            &simulate(
                &s.base,
                &s.token,
                idp,
                &["--users", "9", "--groups", "3", "--members-per-group", "5"],
            ),
            idp,
        );
        assert_eq!(r["users"], 9);
        assert_eq!(r["members_per_group"], 5);
    }
}

#[tokio::test]
async fn simulate_fails_and_says_where() {
    let s = TestServer::start().await;
    // A wrong token: the connection test already fails, and the run stops there.
    let out = simulate(
        &s.base,
        "rsct_nope0000_wrongwrongwrongwrongwrongwrongwrong00",
        "okta",
        &[],
    );
    assert!(!out.status.success());
    let r = report(&out);
    assert_eq!(r["ok"], false);
    assert_eq!(r["steps_run"], 1);
    assert_eq!(r["steps"][0]["statuses"], json!([401]));
    // Entra's requests to a tenant that says it uses Okta: the Entra-only rule is off, so the
    // core answers the add of a phone number that does not exist yet with noTarget.
    let (base, token) = tenant(&s, "misconfigured", "okta");
    let out = simulate(&base, &token, "entra", &["--users", "1", "--groups", "0"]);
    assert!(!out.status.success());
    let r = report(&out);
    let last = r["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ok"], false);
    assert!(
        last["failures"][0].as_str().unwrap().contains("noTarget"),
        "{last}"
    );
    // The text report, for people: a line per step and a verdict.
    let out = Command::new(bin())
        .args([
            "simulate", "--idp", "google", "--target", &s.base, "--token", &s.token,
        ])
        .args(["--users", "2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok   Create the user"), "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("passed: "),
        "{text}"
    );
    // An unknown identity provider is refused by the command line.
    let out = simulate(&s.base, &s.token, "azure", &[]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn every_idp_fixture_is_replayed() {
    // The list above must follow the fixtures on disk.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/idp");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = IDPS.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

// ---- dialect rules over HTTP: what a tenant's setting changes ------------------------------

#[tokio::test]
async fn entra_quirks_are_normalised_and_core_stays_strict_for_others() {
    let s = TestServer::start().await;
    let (entra_base, entra_token) = tenant(&s, "contoso", "entra");
    let (okta_base, okta_token) = tenant(&s, "okta shop", "okta");
    let body = json!({
        "schemas": [USER_URN, ENTERPRISE_URN],
        "userName": "adele@contoso.example",
        "active": "False",
        ENTERPRISE_URN: {"manager": "boss-id"}
    });
    for (base, token) in [(&entra_base, &entra_token), (&okta_base, &okta_token)] {
        let r = s
            .send(
                s.client
                    .post(format!("{base}/Users"))
                    .bearer_auth(token)
                    .json(&body),
            )
            .await;
        r.expect(201);
        // Safe-always rules run for every tenant.
        assert_eq!(r.json["active"], false);
        assert_eq!(r.json[ENTERPRISE_URN]["manager"]["value"], "boss-id");
        let id = r.json["id"].as_str().unwrap().to_owned();
        let add_phone = json!({"schemas": [PATCH_URN], "Operations": [
            {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}
        ]});
        let r = s
            .send(
                s.client
                    .patch(format!("{base}/Users/{id}"))
                    .bearer_auth(token)
                    .json(&add_phone),
            )
            .await;
        if base == &entra_base {
            r.expect(200);
            assert_eq!(r.json["phoneNumbers"][0]["type"], "mobile");
        } else {
            // Okta never sends this; its tenant keeps the RFC answer.
            r.expect_error(400, Some("noTarget"));
        }
        // The filter rule is safe for everyone.
        let r = s
            .send(
                s.client
                    .get(format!("{base}/Users"))
                    .bearer_auth(token)
                    .query(&[("filter", "emails[type eq \"work\"].value eq \"nobody@x\"")]),
            )
            .await;
        r.expect(200);
        assert_eq!(r.json["totalResults"], 0);
    }
}

#[tokio::test]
async fn search_requests_are_normalised_too() {
    let s = TestServer::start().await;
    s.create_user(&json!({
        "schemas": [USER_URN], "userName": "w@x.example",
        "emails": [{"value": "w@x.example", "type": "work"}]
    }))
    .await;
    let r = s
        .post(
            "/Users/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "emails[type eq \"work\"].value eq \"W@X.example\""
            }),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["totalResults"], 1);
}

#[tokio::test]
async fn members_replace_keeps_unchanged_members() {
    // Okta's "Push now" re-sends the whole list; the members that stay are untouched rows.
    let s = TestServer::start().await;
    let a = s.user("a").await;
    let b = s.user("b").await;
    let c = s.user("c").await;
    let g = s.create_group("g", &[&a, &b]).await;
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "members", "value": [{"value": b}, {"value": c}]}]),
        )
        .await;
    r.expect(200);
    let mut got: Vec<&str> = r.json["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    got.sort_unstable();
    let mut want = vec![b.as_str(), c.as_str()];
    want.sort_unstable();
    assert_eq!(got, want);
    // A's groups no longer list g; B's still do.
    let ra = s.get(&format!("/Users/{a}")).await;
    assert!(ra.json.get("groups").is_none(), "{}", ra.text);
    let rb = s.get(&format!("/Users/{b}")).await;
    assert_eq!(rb.json["groups"][0]["value"], g["id"]);
    // An unknown member id is still refused as before.
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "members", "value": [{"value": "no-such-user"}]}]),
        )
        .await;
    assert!(r.status >= 400, "{}", r.text);
    let r = s
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "members", "value": []}]),
        )
        .await;
    r.expect(200);
    assert!(r.json.get("members").is_none());
}

/// OneLogin's default "SCIM v2 Enterprise" template names the SCIM 2.0 drafts' URNs; every
/// tenant accepts them in bodies, PATCH paths and filters, and answers with the RFC URNs. A
/// SCIM 1.1 body is refused with what to send instead. authentik's PATCH without `schemas`
/// is accepted.
#[tokio::test]
async fn draft_urns_scim_11_and_patches_without_schemas() {
    let s = TestServer::start().await;
    let (ol_base, ol_token) = tenant(&s, "onelogin shop", "onelogin");
    let (okta_base, okta_token) = tenant(&s, "okta shop", "okta");
    let old_core = "urn:scim:schemas:core:2.0";
    let old_ent = "urn:scim:schemas:extension:enterprise:2.0";
    for (i, (base, token)) in [
        (&ol_base, &ol_token),
        (&okta_base, &okta_token),
        (&s.base, &s.token),
    ]
    .into_iter()
    .enumerate()
    {
        let send = |rb: reqwest::RequestBuilder| s.send(rb.bearer_auth(token));
        let name = format!("kim{i}@example.com");
        let template = json!({
            "schemas": [old_core, old_ent],
            "userName": name,
            "name": {"givenName": "Kim", "familyName": "Lee"},
            "emails": [{"value": name, "type": "work", "primary": true}],
            old_ent: {"department": "Sales"}
        });
        let r = send(s.client.post(format!("{base}/Users")).json(&template)).await;
        r.expect(201);
        assert_eq!(r.json["schemas"], json!([USER_URN, ENTERPRISE_URN]));
        assert_eq!(r.json[ENTERPRISE_URN]["department"], "Sales");
        assert!(r.json.get(old_ent).is_none());
        let id = r.json["id"].as_str().unwrap().to_owned();

        // PUT with the template again: suspended through `active`.
        let mut put = template.clone();
        put["active"] = json!(false);
        put[old_ent]["department"] = json!("Support");
        let r = send(s.client.put(format!("{base}/Users/{id}")).json(&put)).await;
        r.expect(200);
        assert_eq!(r.json["active"], false);
        assert_eq!(r.json[ENTERPRISE_URN]["department"], "Support");

        // PATCH paths in the draft form.
        let patch = json!({"schemas": [PATCH_URN], "Operations": [
            {"op": "replace", "path": format!("{old_ent}:department"), "value": "Ops"},
            {"op": "replace", "path": format!("{old_core}:title"), "value": "Lead"}
        ]});
        let r = send(s.client.patch(format!("{base}/Users/{id}")).json(&patch)).await;
        r.expect(200);
        assert_eq!(r.json[ENTERPRISE_URN]["department"], "Ops");
        assert_eq!(r.json["title"], "Lead");

        // A filter in the draft form finds it.
        let r = send(
            s.client
                .get(format!("{base}/Users"))
                .query(&[("filter", format!("{old_ent}:department eq \"Ops\""))]),
        )
        .await;
        r.expect(200);
        assert_eq!(r.json["totalResults"], 1);
        assert_eq!(r.json["Resources"][0]["id"], id.as_str());

        // authentik's group update: a PatchOp body without `schemas`.
        let r = send(s.client.post(format!("{base}/Groups")).json(&json!({
            "schemas": [GROUP_URN], "displayName": format!("team{i}")
        })))
        .await;
        r.expect(201);
        let gid = r.json["id"].as_str().unwrap().to_owned();
        let rename = json!({"Operations": [{"op": "replace", "value": {
            "displayName": format!("renamed{i}"), "externalId": "ak-1"
        }}]});
        let r = send(s.client.patch(format!("{base}/Groups/{gid}")).json(&rename)).await;
        r.expect(200);
        assert_eq!(r.json["displayName"], format!("renamed{i}").as_str());

        // SCIM 1.1: refused, saying what to send instead; nothing stored.
        let r = send(s.client.post(format!("{base}/Users")).json(&json!({
            "schemas": ["urn:scim:schemas:core:1.0"],
            "userName": format!("old{i}@example.com"),
            "emails": {"value": format!("old{i}@example.com"), "primary": true}
        })))
        .await;
        r.expect_error(400, Some("invalidSyntax"));
        let detail = r.json["detail"].as_str().unwrap();
        assert!(
            detail.contains("SCIM 1.1") && detail.contains("SCIM v2 Enterprise"),
            "{detail}"
        );
        let r = send(
            s.client
                .get(format!("{base}/Users"))
                .query(&[("filter", format!("userName eq \"old{i}@example.com\""))]),
        )
        .await;
        assert_eq!(r.json["totalResults"], 0);
    }
}
