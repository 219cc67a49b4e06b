//! The login decision over HTTP: every reason, with `sso_enforced` on and off, by email and by
//! external id.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{TestServer, USER_URN};

impl TestServer {
    /// `POST /tenants/{tenant}/login-decision` with `body`, asserting 200.
    pub async fn login(&self, key: &str, tenant: &str, body: Value) -> Value {
        let r = self
            .admin(
                key,
                Method::POST,
                &format!("/tenants/{tenant}/login-decision"),
                Some(body),
            )
            .await;
        r.expect(200);
        r.json
    }
}

/// `set_settings` changes the tenant from another process (the CLI); the server reads tenants
/// from its authentication cache, which another process's change reaches within 1 second
/// (the auth epoch is polled every 250 ms: docs/performance.md, item 4 of issue 10).
async fn settle_other_process_change() {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
}

#[tokio::test]
async fn every_reason_with_sso_enforced_on_and_off() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let t = s.tenant.clone();
    let active = s
        .create_user(
            &json!({"schemas": [USER_URN], "userName": "ann", "externalId": "okta-ann",
                            "emails": [{"value": "Ann@Example.com", "primary": true}]}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let g = s.create_group("Staff", &[&active]).await;
    s.map_roles(&key, "id", g["id"].as_str().unwrap(), &["staff"])
        .await;
    let off = s.user("off@example.com").await;
    s.patch_ops(
        &format!("/Users/{off}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .expect(200);
    let gone = s.user("gone@example.com").await;
    s.delete(&format!("/Users/{gone}")).await.expect(204);
    s.import(
        &key,
        &t,
        "application/x-ndjson",
        &format!(
            "{}\n",
            json!({"id": "app-1", "user_name": "legacy", "email": "legacy@example.com", "roles": ["old"]})
        ),
    )
    .await
    .expect(200);

    // By email (any letter case), by userName as email, and by external id.
    assert_eq!(
        s.login(&key, &t, json!({"email": "ann@EXAMPLE.com"})).await,
        json!({"allowed": true, "reason": "active", "user_id": active, "roles": ["staff"]})
    );
    assert_eq!(
        s.login(&key, &t, json!({"external_id": "okta-ann"})).await["user_id"],
        active.as_str()
    );
    assert_eq!(
        s.login(&key, &t, json!({"email": "off@example.com"})).await,
        json!({"allowed": false, "reason": "deactivated", "user_id": off, "roles": []})
    );
    assert_eq!(
        s.login(&key, &t, json!({"email": "gone@example.com"}))
            .await,
        json!({"allowed": false, "reason": "deprovisioned", "user_id": gone, "roles": []})
    );
    // Not provisioned: allowed just in time while SSO is not enforced.
    assert_eq!(
        s.login(&key, &t, json!({"email": "new@example.com"})).await,
        json!({"allowed": true, "reason": "not_provisioned", "user_id": null, "roles": []})
    );
    assert_eq!(
        s.login(&key, &t, json!({"email": "legacy@example.com"}))
            .await,
        json!({"allowed": true, "reason": "not_provisioned", "user_id": "app-1", "roles": ["old"]})
    );
    assert_eq!(
        s.login(&key, &t, json!({"external_id": "nobody"})).await["reason"],
        "not_provisioned"
    );

    // SSO enforced: only SCIM-provisioned, active users.
    s.set_settings(&t, json!({"sso_enforced": true}));
    settle_other_process_change().await;
    assert_eq!(
        s.login(&key, &t, json!({"email": "new@example.com"})).await,
        json!({"allowed": false, "reason": "not_provisioned", "user_id": null, "roles": []})
    );
    assert_eq!(
        s.login(&key, &t, json!({"email": "legacy@example.com"}))
            .await,
        json!({"allowed": false, "reason": "not_provisioned", "user_id": "app-1", "roles": []})
    );
    assert_eq!(
        s.login(&key, &t, json!({"email": "ann@example.com"})).await["reason"],
        "active"
    );

    // Once the identity provider provisions the legacy user, it is active.
    s.post(
        "/Users",
        &json!({"schemas": [USER_URN], "userName": "legacy",
                "emails": [{"value": "legacy@example.com", "primary": true}]}),
    )
    .await
    .expect(201);
    assert_eq!(
        s.login(&key, &t, json!({"email": "legacy@example.com"}))
            .await,
        json!({"allowed": true, "reason": "active", "user_id": "app-1", "roles": ["old"]})
    );

    // SCIM disabled: Roster objects to nothing.
    s.set_settings(&t, json!({"scim_enabled": false}));
    settle_other_process_change().await;
    assert_eq!(
        s.login(&key, &t, json!({"email": "new@example.com"})).await,
        json!({"allowed": true, "reason": "scim_disabled", "user_id": null, "roles": []})
    );
    assert_eq!(
        s.login(&key, &t, json!({"email": "ann@example.com"})).await["reason"],
        "scim_disabled"
    );

    // Unknown tenant: an answer, not a 404.
    assert_eq!(
        s.login(&key, "nope", json!({"email": "ann@example.com"}))
            .await,
        json!({"allowed": false, "reason": "unknown_tenant", "user_id": null, "roles": []})
    );

    // Bad requests.
    let path = format!("/tenants/{t}/login-decision");
    for bad in [
        json!({}),
        json!({"email": "a@b", "external_id": "x"}),
        json!({"email": ""}),
        json!({"email": 5}),
        json!({"user": "x"}),
    ] {
        s.admin(&key, Method::POST, &path, Some(bad))
            .await
            .expect(400);
    }
    s.admin(
        "rsak_wrong",
        Method::POST,
        &path,
        Some(json!({"email": "a@b"})),
    )
    .await
    .expect(401);
}
