//! The provisioning log: a row per write and per failure, failures explained for an IT admin,
//! auth failures with the token prefix only, bodies without secrets; successful reads counted
//! per route and minute, and shown as the last request.

use std::time::{Duration, Instant};

use reqwest::Method;
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
    let db = s.database_bytes();
    for secret in ["s3cret-Passw0rd", "an0ther-Passw0rd"] {
        assert!(!contains(&db, secret.as_bytes()));
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
    let bytes = s.database_bytes();
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

/// Waits until the tenant's read counts show `want` requests of `route`; returns the page.
async fn reads_of(s: &TestServer, key: &str, route: &str, want: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = s
            .admin_get(
                key,
                &format!("/tenants/{}/provisioning-log/reads", s.tenant),
            )
            .await;
        let n: u64 = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["route"] == route)
            .map(|e| e["count"].as_u64().unwrap())
            .sum();
        if n >= want {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{route}: {n} reads counted, expected {want}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A console session of an operator API key (sign-in form with its CSRF token); the cookie.
async fn console_cookie(s: &TestServer, key: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let cookie_of = |r: &reqwest::Response| {
        r.headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .expect("a cookie")
    };
    let r = http
        .get(format!("{}/console/sign-in", s.origin))
        .send()
        .await
        .unwrap();
    let pre = cookie_of(&r);
    let html = r.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let r = http
        .post(format!("{}/console/sign-in/key", s.origin))
        .header("cookie", pre)
        .form(&[("key", key), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "signed in");
    cookie_of(&r)
}

async fn console_page(s: &TestServer, cookie: &str, path: &str) -> String {
    let r = s
        .client
        .get(format!("{}{path}", s.origin))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    r.text().await.unwrap()
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: reads counted, writes and failures logged
async fn successful_reads_are_counted_per_minute_writes_and_failures_keep_their_rows() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let id = s.user("bjensen").await;
    s.patch_ops(
        &format!("/Users/{id}"),
        json!([{"op": "replace", "path": "displayName", "value": "Babs"}]),
    )
    .await
    .expect(200);
    for _ in 0..30 {
        s.get(&format!("/Users/{id}")).await.expect(200);
    }
    s.get("/Users/no-such-user").await.expect(404);

    // The 30 lookups: one count (they ran within a minute or two, so at most a row per minute).
    let page = reads_of(&s, &key, "GET /Users/{id}", 30).await;
    let lookups: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "GET /Users/{id}")
        .collect();
    assert!(!lookups.is_empty() && lookups.len() <= 2, "{page}");
    assert_eq!(
        lookups
            .iter()
            .map(|e| e["count"].as_u64().unwrap())
            .sum::<u64>(),
        30
    );
    let newest = lookups[0];
    assert_eq!(newest["tenant"], "acme");
    assert_eq!(newest["last_status"], 200);
    assert!(
        newest["minute"].as_str().unwrap().ends_with(":00.000Z"),
        "{newest}"
    );
    assert_eq!(page["dropped"], 0);
    assert!(page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["route"] != "GET /Users/no-such-user" && e["last_status"] != 404));

    // The create, the change and the failure have their rows; no lookup has one.
    let rows = s.provisioning(&key, "", 3).await;
    let summary: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("GET".to_owned(), 404),
            ("PATCH".to_owned(), 200),
            ("POST".to_owned(), 201)
        ],
        "{rows:?}"
    );
    assert_eq!(rows[0]["path"], "/scim/v2/acme/Users/no-such-user");
    assert!(rows[0]["hint"].as_str().is_some());
    assert_eq!(rows[1]["changed"], json!(["displayName"]));
    assert_eq!(rows[2]["resource_id"], id.as_str());
    assert_eq!(rows[2]["body"]["userName"], "bjensen");

    // A search is a read too; a filtered list as well.
    let search = s
        .post(
            "/Users/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "userName eq \"bjensen\""}),
        )
        .await;
    search.expect(200);
    s.get_q("/Users", &[("filter", "userName eq \"bjensen\"")])
        .await
        .expect(200);
    reads_of(&s, &key, "POST /Users/.search", 1).await;
    reads_of(&s, &key, "GET /Users", 1).await;

    // The last request is a counted read: the console shows it, with its status.
    let cookie = console_cookie(&s, &key).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let html = console_page(&s, &cookie, "/console/t/acme").await;
        let status = html
            .split("id=\"connection\"")
            .nth(1)
            .and_then(|h| h.split("</p>").next())
            .unwrap_or_default()
            .to_owned();
        if status.contains("200 OK") && status.contains("GET /scim/v2/acme/Users") {
            assert!(!status.contains("{id}"), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "connection status: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tenants = console_page(&s, &cookie, "/console/tenants").await;
    assert!(!tenants.contains("none yet"), "acme has requests");
    // The log page lists the failure, says that reads are counted, and shows no lookup.
    let log = console_page(&s, &cookie, "/console/t/acme/log").await;
    assert!(log.contains("counted per minute"), "{log}");
    assert!(log.contains("/scim/v2/acme/Users/no-such-user"));
    assert!(!log.contains("dropped-rows"));

    // The command line lists the counts.
    let text = s.cli_ok(&["log", "acme", "--reads"]);
    assert!(
        text.contains("GET /Users/{id}") && text.contains("POST /Users/.search"),
        "{text}"
    );
    let json_lines = s.cli_ok(&["log", "acme", "--reads", "--json"]);
    let counted: u64 = json_lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["route"] == "GET /Users/{id}")
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 30);
    // The rows' listing has still no successful GET.
    let all = s.cli_ok(&["log", "acme", "--json"]);
    assert!(
        all.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .all(|v| v["method"] != "GET" || v["status"] == 404),
        "{all}"
    );
}

#[tokio::test]
async fn read_counts_page_with_a_cursor_and_refuse_bad_parameters() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let id = s.user("ann").await;
    s.get(&format!("/Users/{id}")).await.expect(200);
    s.get("/Users").await.expect(200);
    s.get("/ServiceProviderConfig").await.expect(200);
    for route in [
        "GET /ServiceProviderConfig",
        "GET /Users",
        "GET /Users/{id}",
    ] {
        reads_of(&s, &key, route, 1).await;
    }
    let all = s
        .admin_get(&key, "/tenants/acme/provisioning-log/reads")
        .await;
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{all}");
    assert_eq!(all["next_cursor"], Value::Null);

    let first = s
        .admin_get(&key, "/tenants/acme/provisioning-log/reads?limit=2")
        .await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = s
        .admin_get(
            &key,
            &format!("/tenants/acme/provisioning-log/reads?limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(second["entries"].as_array().unwrap().len(), 1);
    assert_eq!(second["entries"][0], entries[2]);
    let future = s
        .admin_get(
            &key,
            "/tenants/acme/provisioning-log/reads?since=2999-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(future["entries"], json!([]));

    for bad in ["limit=0", "limit=1001", "cursor=abc", "since=yesterday"] {
        s.admin(
            &key,
            Method::GET,
            &format!("/tenants/acme/provisioning-log/reads?{bad}"),
            None,
        )
        .await
        .expect(400);
    }
    s.admin(
        &key,
        Method::GET,
        "/tenants/nope/provisioning-log/reads",
        None,
    )
    .await
    .expect(404);
    s.send(s.client.get(format!(
        "{}/api/v1/tenants/acme/provisioning-log/reads",
        s.origin
    )))
    .await
    .expect(401);
}

/// What a client without a token chooses (path, user agent, request id) is stored bounded, and
/// a percent-encoded tenant segment is filed under the tenant its token belongs to (issue 12).
#[tokio::test]
async fn log_rows_are_bounded_and_filed_under_the_authenticated_tenant() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let huge = "x".repeat(20_000);
    let r = s
        .send(
            s.client
                .get(format!("{}/Users/{}", s.base, "y".repeat(4_000)))
                .bearer_auth("rsct_Forged12_0123456789abcdefghij0123456789ABCDEFGHIJ")
                .header("user-agent", huge.as_str())
                .header("x-request-id", huge.as_str()),
        )
        .await;
    r.expect_error(401, None);
    let rows = s.provisioning(&key, "outcome=failure", 1).await;
    let row = &rows[0];
    for (field, max) in [("user_agent", 256), ("request_id", 256), ("path", 512)] {
        let v = row[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {row}"));
        assert!(v.len() <= max, "{field} kept {} bytes", v.len());
        assert!(v.ends_with('…'), "{field} not marked as cut");
    }

    // `/scim/v2/ac%6De/…` authenticates as `acme`, and its row is acme's.
    let encoded = s.base.replacen("/scim/v2/acme", "/scim/v2/ac%6De", 1);
    let r = s
        .send(
            s.client
                .post(format!("{encoded}/Users"))
                .bearer_auth(&s.token)
                .json(&user_body("encoded-tenant")),
        )
        .await;
    r.expect(201);
    let rows = s.provisioning(&key, "outcome=success", 1).await;
    assert!(
        rows.iter()
            .any(|r| r["status"] == 201 && r["name"] == "encoded-tenant"),
        "{rows:?}"
    );
}

/// A flood of refused requests (a stale token retried in a loop, a stranger guessing) is
/// counted per tenant, source and minute, with one row per minute as a sample that explains it,
/// not a row per request (issue 12).
#[tokio::test]
async fn refused_requests_are_counted_not_stored_one_row_each() {
    let s = TestServer::start_with(&["--rate-limit-auth-failures", "0/s"]).await;
    let key = s.admin_key();
    let forged = "rsct_Forged12_0123456789abcdefghij0123456789ABCDEFGHIJ";
    for _ in 0..60 {
        s.send(
            s.client
                .get(format!("{}/Users", s.base))
                .bearer_auth(forged),
        )
        .await
        .expect(401);
    }
    let page = reads_of(&s, &key, "refused from 127.0.0.1", 60).await;
    let counted: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "refused from 127.0.0.1")
        .collect();
    assert!(counted.iter().all(|e| e["last_status"] == 401), "{page}");
    // One row per minute the loop spanned (one, or two across a minute's turn).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = s.provisioning(&key, "outcome=failure", 1).await;
    assert!(
        (1..=counted.len()).contains(&rows.len()),
        "{} rows for 60 refused requests",
        rows.len()
    );
    assert_eq!(rows[0]["token_prefix"], "rsct_Forged12");
}

/// The health endpoint sums the log and the counted reads per hour (168 hours, the current one
/// last) and reports the tenant's figures; the log filters by status class and text.
#[tokio::test]
async fn health_sums_requests_per_hour_and_the_log_filters_by_class_and_text() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.post("/Users", &user_body("health1")).await.expect(201);
    let forged = "rsct_Forged12_0123456789abcdefghij0123456789ABCDEFGHIJ";
    s.send(
        s.client
            .get(format!("{}/Users", s.base))
            .bearer_auth(forged),
    )
    .await
    .expect(401);
    s.get("/Users").await.expect(200);
    s.provisioning(&key, "", 2).await;
    // Every failure is a row: the rollup's failures are the 4xx rows (all 401 here).
    let failed = s
        .admin_get(&key, "/tenants/acme/provisioning-log?status_class=4xx")
        .await;
    let rows = failed["entries"].as_array().unwrap().clone();
    assert!(!rows.is_empty(), "{failed}");
    assert!(rows.iter().all(|r| r["status"] == 401), "{failed}");
    let n = rows.len() as u64;

    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let h = s.admin_get(&key, "/tenants/acme/health").await;
        let hours = h["hours"].as_array().unwrap();
        assert_eq!(hours.len(), 168, "{h}");
        let sum = |k: &str| hours.iter().map(|x| x[k].as_u64().unwrap()).sum::<u64>();
        // The counted read arrives with the next flush of counts (once a second).
        if sum("requests") >= 3 {
            assert_eq!(sum("failures"), n, "{h}");
            assert_eq!(sum("unauthorized"), n, "{h}");
            break h;
        }
        assert!(Instant::now() < deadline, "{h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health["tenant"], "acme");
    assert_eq!(health["failures_24h"], n);
    assert!(health["last_success_at"].is_string(), "{health}");
    assert!(health["token_expires_at"].is_string(), "{health}");
    assert_eq!(health["guard"]["holding"], false);
    assert_eq!(health["webhooks"]["failing_streams"], 0);
    s.admin(&key, Method::GET, "/tenants/nope/health", None)
        .await
        .expect(404);

    let text = s
        .admin_get(&key, "/tenants/acme/provisioning-log?text=HEALTH1")
        .await;
    assert_eq!(text["entries"].as_array().unwrap().len(), 1, "{text}");
    s.admin(
        &key,
        Method::GET,
        "/tenants/acme/provisioning-log?status_class=6xx",
        None,
    )
    .await
    .expect(400);
}
