//! The provisioning log: one row per SCIM request, failures explained for an IT admin, auth
//! failures with the token prefix only, bodies without secrets.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{user_body, TestServer, USER_URN};

impl TestServer {
    /// Waits until the tenant's provisioning log (filtered by `query`) has at least `n` rows;
    /// returns them, newest first. The log is written asynchronously, shortly after requests.
    pub async fn provisioning(&self, key: &str, query: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = self
                .admin_get(
                    key,
                    &format!("/tenants/{}/provisioning-log?{query}", self.tenant),
                )
                .await;
            let rows = page["entries"].as_array().unwrap().clone();
            if rows.len() >= n {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "provisioning log has {} rows for {query:?}, expected {n}",
                rows.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_duplicate_user_name_is_explained_in_words_an_admin_can_act_on() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.create_user(
        &json!({"schemas": [USER_URN], "userName": "bjensen@example.com",
        "password": "s3cret-Passw0rd"}),
    )
    .await;
    let dup = s
        .post(
            "/Users",
            &json!({"schemas": [USER_URN], "userName": "BJensen@example.com",
                "password": "an0ther-Passw0rd"}),
        )
        .await;
    dup.expect_error(409, Some("uniqueness"));
    let request_id = dup.header("x-request-id").unwrap().to_owned();

    let rows = s.provisioning(&key, "outcome=failure", 1).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["status"], 409);
    assert_eq!(row["outcome"], "failure");
    assert_eq!(row["scim_type"], "uniqueness");
    assert_eq!(row["method"], "POST");
    assert_eq!(row["resource_type"], "User");
    assert_eq!(row["name"], "BJensen@example.com");
    assert_eq!(
        row["request_id"],
        request_id.as_str(),
        "same id as the response header"
    );
    assert_eq!(row["idp"], "generic");
    let detail = row["detail"].as_str().unwrap();
    assert!(
        detail.contains("BJensen@example.com") && detail.contains("already taken"),
        "{detail}"
    );
    let hint = row["hint"].as_str().unwrap();
    assert!(
        hint.contains("identity provider") && hint.contains("duplicate"),
        "{hint}"
    );
    assert_eq!(row["body"]["password"], "[redacted]");
    assert!(row["duration_ms"].is_number());

    let ok = s.provisioning(&key, "outcome=success", 1).await;
    assert_eq!(ok[0]["status"], 201);
    assert_eq!(
        ok[0]["changed"],
        json!([]),
        "a create lists no changed attributes"
    );
    assert!(ok[0]["resource_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));

    // Filters: by userName (case-insensitive), method, and resource id.
    let by_name = s
        .provisioning(&key, "user_name=bjensen@example.com", 2)
        .await;
    assert_eq!(by_name.len(), 2);
    let id = ok[0]["resource_id"].as_str().unwrap().to_owned();
    s.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "displayName", "value": "Babs"}]),
    )
    .await
    .expect(200);
    let patched = s.provisioning(&key, "method=PATCH", 1).await;
    assert_eq!(patched[0]["changed"], json!(["displayName"]));
    assert_eq!(patched[0]["resource_id"], id.as_str());
    let by_id = s.provisioning(&key, &format!("resource_id={id}"), 2).await;
    assert_eq!(by_id.len(), 2);

    // The command line shows the failure with its explanation.
    let text = s.cli_ok(&["log", "acme", "--failures"]);
    assert!(
        text.contains("409") && text.contains("what to do:"),
        "{text}"
    );

    // No password reached the database file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = std::fs::read(s.dir.path().join("roster.db")).unwrap();
    let wal = std::fs::read(s.dir.path().join("roster.db-wal")).unwrap_or_default();
    for secret in ["s3cret-Passw0rd", "an0ther-Passw0rd"] {
        assert!(!contains(&db, secret.as_bytes()) && !contains(&wal, secret.as_bytes()));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_auth_failure_is_recorded_with_the_token_prefix_only() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    // A well-formed token that does not exist: its prefix is logged, never the whole.
    let forged = "rsct_Forged12_0123456789abcdefghij0123456789ABCDEFGHIJ";
    let r = s
        .send(
            s.client
                .get(format!("{}/Users", s.base))
                .bearer_auth(forged)
                .header("user-agent", "Okta SCIM Client 1.0.0"),
        )
        .await;
    r.expect_error(401, None);
    // A real token of this tenant, used at another tenant's URL.
    s.create_tenant("Globex");
    let other = s
        .send(
            s.client
                .get(format!("{}/scim/v2/globex/Users", s.origin))
                .bearer_auth(&s.token),
        )
        .await;
    other.expect(401);
    // An unknown tenant is not logged (anyone can send requests to any URL).
    s.send(
        s.client
            .get(format!("{}/scim/v2/nope/Users", s.origin))
            .bearer_auth(forged),
    )
    .await
    .expect(401);

    let rows = s.provisioning(&key, "outcome=failure", 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["status"], 401);
    assert_eq!(row["token_prefix"], "rsct_Forged12");
    assert_eq!(row["source_addr"], "127.0.0.1");
    assert_eq!(row["user_agent"], "Okta SCIM Client 1.0.0");
    assert!(row["hint"].as_str().unwrap().contains("token"));
    let globex = s.admin_get(&key, "/tenants/globex/provisioning-log").await;
    let prefix = s.token.rsplit_once('_').unwrap().0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut globex = globex;
    while globex["entries"].as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
        globex = s.admin_get(&key, "/tenants/globex/provisioning-log").await;
    }
    assert_eq!(globex["entries"][0]["token_prefix"], prefix);

    // Neither token is anywhere in the database file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut bytes = std::fs::read(s.dir.path().join("roster.db")).unwrap();
    bytes.extend(std::fs::read(s.dir.path().join("roster.db-wal")).unwrap_or_default());
    assert!(!contains(&bytes, forged.as_bytes()), "forged token stored");
    assert!(!contains(&bytes, s.token.as_bytes()), "real token stored");
    let secret_part = forged.rsplit_once('_').unwrap().1;
    assert!(!contains(&bytes, secret_part.as_bytes()));
}

#[tokio::test]
async fn the_log_pages_with_a_cursor_and_filters_by_time() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    for i in 0..5 {
        s.post("/Users", &user_body(&format!("u{i}")))
            .await
            .expect(201);
    }
    let all = s.provisioning(&key, "", 5).await;
    let first = s
        .admin_get(&key, "/tenants/acme/provisioning-log?limit=2")
        .await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = s
        .admin_get(
            &key,
            &format!("/tenants/acme/provisioning-log?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(second["entries"][0]["id"], all[2]["id"]);
    let future = s
        .admin_get(
            &key,
            "/tenants/acme/provisioning-log?since=2999-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(future["entries"], json!([]));
    let bad = s
        .admin(
            &key,
            reqwest::Method::GET,
            "/tenants/acme/provisioning-log?since=yesterday",
            None,
        )
        .await;
    bad.expect(400);
    assert!(bad.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("since"));
}
