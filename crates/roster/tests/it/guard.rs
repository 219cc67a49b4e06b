//! The mass-deprovisioning guard over HTTP: it trips past the threshold (SCIM 503 with
//! `Retry-After`), flags the tenant and emits an event; confirm lets the identity provider's
//! retries through; reject keeps refusing; the off switch; small tenants and create-then-delete
//! churn never trip it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::events::types;
use crate::harness::{Resp, TestServer};

impl TestServer {
    /// `n` SCIM users named `{prefix}{i}`; their ids.
    pub async fn users(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(self.user(&format!("{prefix}{i}")).await);
        }
        out
    }

    /// PATCH active=false.
    pub async fn deactivate(&self, id: &str) -> Resp {
        self.patch_ops(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await
    }

    /// The guard's status through the API.
    pub async fn guard_status(&self, key: &str) -> Value {
        self.admin_get(key, &format!("/tenants/{}/deprovision-guard", self.tenant))
            .await
    }
}

#[track_caller]
fn assert_held(r: &Resp) {
    r.expect_error(503, None);
    assert_eq!(r.header("retry-after"), Some("300"), "{:?}", r.headers);
    assert!(
        r.json["detail"].as_str().unwrap().contains("guard"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn trips_past_the_threshold_and_confirm_lets_the_retries_through() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let ids = s.users("emp", 50).await;
    // 20% of 50 is 10: ten deactivations pass.
    for id in &ids[..10] {
        s.deactivate(id).await.expect(200);
    }
    let status = s.guard_status(&key).await;
    assert_eq!(status["state"], "armed");
    assert_eq!(status["window"]["count"], 10);
    assert_eq!(status["window"]["active_users"], 50);
    assert_eq!(status["window"]["threshold"], 10);
    // A user deactivated again after a reactivation is one user losing access, counted once.
    s.patch_ops(
        &format!("/Users/{}", ids[0]),
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await
    .expect(200);
    s.deactivate(&ids[0]).await.expect(200);
    assert_eq!(s.guard_status(&key).await["window"]["count"], 10);
    // The eleventh trips the guard; every further one is held, deletions too.
    assert_held(&s.deactivate(&ids[10]).await);
    assert_held(&s.deactivate(&ids[11]).await);
    assert_held(&s.delete(&format!("/Users/{}", ids[12])).await);
    // What does not remove access passes: other changes, an already inactive user, reads.
    s.patch_ops(
        &format!("/Users/{}", ids[13]),
        json!([{"op": "replace", "path": "title", "value": "Boss"}]),
    )
    .await
    .expect(200);
    s.deactivate(&ids[0]).await.expect(200);
    s.delete(&format!("/Users/{}", ids[0])).await.expect(204);
    let u = s.get(&format!("/Users/{}", ids[10])).await;
    assert_eq!(
        u.json["active"], true,
        "a held deactivation changed nothing"
    );

    // The tenant is flagged, with the held operations listed; one event.
    let status = s.guard_status(&key).await;
    assert_eq!(status["state"], "tripped");
    assert_eq!(status["trips"], 1);
    assert!(status["tripped_at"].is_string());
    assert_eq!(status["held"]["count"], 3);
    let held: Vec<&str> = status["held"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(held, ["deactivate", "deactivate", "delete"]);
    let events = s.feed(&key, 0).await;
    let tripped: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tenant.deprovision_guard_tripped")
        .collect();
    assert_eq!(tripped.len(), 1);
    assert_eq!(tripped[0]["data"]["count"], 10);
    assert_eq!(tripped[0]["data"]["active_users"], 50);
    assert_eq!(tripped[0]["data"]["held"]["id"], ids[10].as_str());
    let out = s.cli_ok(&["guard", "status", &s.tenant]);
    assert!(out.contains("tripped"), "{out}");
    // The provisioning log tells the IT admin why.
    let rows = s.provisioning(&key, "outcome=failure", 3).await;
    assert_eq!(rows[0]["status"], 503);
    assert!(
        rows[0]["hint"]
            .as_str()
            .unwrap()
            .contains("roster guard status"),
        "{}",
        rows[0]
    );

    // Confirm: the identity provider's retries go through, and the rest of the batch too.
    let r = s
        .admin(
            &key,
            Method::POST,
            &format!("/tenants/{}/deprovision-guard/confirm", s.tenant),
            None,
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["state"], "confirmed");
    assert_eq!(r.json["decided_by"].as_str().unwrap()[..10], *"admin-key:");
    assert_eq!(r.json["held"]["count"], 0);
    s.deactivate(&ids[10]).await.expect(200);
    s.deactivate(&ids[11]).await.expect(200);
    s.delete(&format!("/Users/{}", ids[12])).await.expect(204);
    for id in &ids[14..30] {
        s.deactivate(id).await.expect(200);
    }
    let events = s.feed(&key, 0).await;
    let resolved = events
        .iter()
        .find(|e| e["type"] == "tenant.deprovision_guard_resolved")
        .unwrap();
    assert_eq!(resolved["data"]["decision"], "confirmed");
    assert_eq!(resolved["data"]["held"], 3);
    let audit = s.admin_get(&key, "/audit-log").await;
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "deprovision_guard.confirm"));
}

#[tokio::test]
async fn reject_keeps_refusing_the_batch() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let ids = s.users("emp", 50).await;
    for id in &ids[..10] {
        s.deactivate(id).await.expect(200);
    }
    assert_held(&s.deactivate(&ids[10]).await);
    // Nothing to decide is a 409 for confirm and reject alike; here there is.
    let out = s.cli_ok(&["guard", "reject", &s.tenant]);
    assert!(out.contains("rejected"), "{out}");
    let status = s.guard_status(&key).await;
    assert_eq!(status["state"], "rejected");
    assert!(status["decided_by"].as_str().unwrap().starts_with("cli:"));
    assert_eq!(
        status["held"]["count"], 1,
        "the rejected batch stays listed"
    );
    // The identity provider's retries, and the rest of its batch, keep being refused.
    let r = s.deactivate(&ids[10]).await;
    assert_held(&r);
    assert!(r.json["detail"].as_str().unwrap().contains("rejected"));
    assert_held(&s.deactivate(&ids[11]).await);
    assert_held(&s.delete(&format!("/Users/{}", ids[12])).await);
    for id in &ids[10..13] {
        assert_eq!(s.get(&format!("/Users/{id}")).await.json["active"], true);
    }
    let status = s.guard_status(&key).await;
    assert_eq!(status["held"]["count"], 3);
    let events = s.feed(&key, 0).await;
    let resolved: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tenant.deprovision_guard_resolved")
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["data"]["decision"], "rejected");
    // An operator may still change their mind.
    s.cli_ok(&["guard", "confirm", &s.tenant]);
    s.deactivate(&ids[10]).await.expect(200);
}

#[tokio::test]
async fn nothing_to_decide_unknown_tenants_and_the_off_switch() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    for action in ["confirm", "reject"] {
        let r = s
            .admin(
                &key,
                Method::POST,
                &format!("/tenants/{}/deprovision-guard/{action}", s.tenant),
                None,
            )
            .await;
        r.expect(409);
        assert!(r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not tripped"));
        let out = s.cli(&["guard", action, &s.tenant]);
        assert!(!out.status.success());
        s.admin(
            &key,
            Method::POST,
            &format!("/tenants/nope/deprovision-guard/{action}"),
            None,
        )
        .await
        .expect(404);
    }
    s.admin(&key, Method::GET, "/tenants/nope/deprovision-guard", None)
        .await
        .expect(404);
    assert!(!s.cli(&["guard", "status", "nope"]).status.success());
    let v: Value =
        serde_json::from_str(s.cli_ok(&["guard", "status", &s.tenant, "--json"]).trim()).unwrap();
    assert_eq!(v["state"], "armed");
    assert_eq!(v["enabled"], true);

    // Off: a whole company can be deactivated.
    s.set_settings(&s.tenant, json!({"deprovision_guard": {"enabled": false}}));
    let ids = s.users("emp", 30).await;
    for id in &ids {
        s.deactivate(id).await.expect(200);
    }
    let status = s.guard_status(&key).await;
    assert_eq!(status["enabled"], false);
    assert_eq!(status["state"], "armed");
    assert_eq!(status["window"]["count"], 0);
    let events = s.feed(&key, 0).await;
    assert!(!types(&events).contains(&"tenant.deprovision_guard_tripped"));
}

#[tokio::test]
async fn small_tenants_custom_settings_and_churn() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    // A small tenant: min_count (10) protects it; all eight may go.
    let ids = s.users("few", 8).await;
    for id in &ids {
        s.delete(&format!("/Users/{id}")).await.expect(204);
    }
    // Users created after the window opened are not counted: create-then-delete churn (as a
    // conformance run does) never trips the guard.
    for i in 0..30 {
        let id = s.user(&format!("churn{i}")).await;
        s.delete(&format!("/Users/{id}")).await.expect(204);
    }
    assert_eq!(s.guard_status(&key).await["state"], "armed");

    // Custom settings: more than 50% and more than 2.
    let t = s.create_tenant("beta");
    let tenant = t["tenant"].as_str().unwrap();
    s.set_settings(
        tenant,
        json!({"deprovision_guard": {"max_percent": 50, "min_count": 2, "window_minutes": 5}}),
    );
    let token = t["token"].as_str().unwrap();
    let base = t["scim_base_url"].as_str().unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = s
            .send(
                s.client
                    .post(format!("{base}/Users"))
                    .bearer_auth(token)
                    .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("b{i}")})),
            )
            .await;
        r.expect(201);
        ids.push(r.json["id"].as_str().unwrap().to_owned());
    }
    let del = |id: &str| {
        s.send(
            s.client
                .delete(format!("{base}/Users/{id}"))
                .bearer_auth(token),
        )
    };
    for id in &ids[..3] {
        del(id).await.expect(204);
    }
    assert_held(&del(&ids[3]).await);
    let status = s
        .admin_get(&key, &format!("/tenants/{tenant}/deprovision-guard"))
        .await;
    assert_eq!(status["state"], "tripped");
    assert_eq!(status["settings"]["window_minutes"], 5);
    assert_eq!(status["window"]["threshold"], 3);
    // The other tenant is not affected.
    assert_eq!(s.guard_status(&key).await["state"], "armed");
}
