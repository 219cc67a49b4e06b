//! The first-sync review (issue 13) against the real binary: with `first_sync_review` on, the
//! identity provider's writes are answered as usual but a webhook receiver and a feed reader
//! see nothing, and the login decision treats the users as not provisioned, until an operator
//! approves; then everything arrives, in order, after every seq the reader had seen. A
//! discarded review is undone: SCIM is disabled, and the ids it created answer 404 once SCIM
//! is enabled again.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::events::{seqs, types};
use crate::harness::TestServer;
use crate::webhooks::Receiver;

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
    })
}

async fn review(s: &TestServer, key: &str, on: bool) {
    let path = format!("/tenants/{}/settings", s.tenant);
    let r = s
        .admin(
            key,
            Method::PATCH,
            &path,
            Some(json!({"first_sync_review": on})),
        )
        .await;
    r.expect(200);
    assert_eq!(r.json["first_sync_review"], on);
}

async fn login(s: &TestServer, key: &str, email: &str) -> Value {
    s.login(key, &s.tenant, json!({"email": email})).await
}

#[tokio::test]
async fn held_events_reach_webhooks_and_the_feed_only_when_approved() {
    let s = TestServer::start_with(&["--webhook-poll-ms", "100"]).await;
    let key = s.admin_key();
    let recv = Receiver::new();
    let (addr, _running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    recv.subscribe(&s, addr);
    review(&s, &key, true).await;
    let seen = s.feed(&key, 0).await.last().unwrap()["seq"]
        .as_i64()
        .unwrap();

    // The identity provider's first sync gets normal answers and ids.
    let ann = s.create_user(&user("ann")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = s.create_user(&user("bob")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.create_group("Editors", &[&ann, &bob]).await;
    s.patch_ops(
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await
    .expect(200);
    s.get(&format!("/Users/{ann}")).await.expect(200);

    let path = format!("/tenants/{}/first-sync", s.tenant);
    let st = s.admin_get(&key, &path).await;
    assert_eq!(st["open"], true);
    assert_eq!(st["summary"]["users_created"], 2);
    assert_eq!(st["summary"]["users_deactivated"], 1);
    assert_eq!(st["summary"]["groups_created"], 1);
    assert_eq!(st["summary"]["memberships_added"], 2);
    assert_eq!(st["users_total"], 2);
    let held = st["held_events"].as_i64().unwrap();
    assert!(held >= 5, "{st}");
    let page = s.admin_get(&key, &format!("{path}?limit=1")).await;
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert!(page["next_after"].is_string());
    s.admin(&key, Method::GET, &format!("{path}?limit=0"), None)
        .await
        .expect(400);

    // Nothing reaches the app: not the feed, not the webhook, not the login decision.
    assert!(s.feed(&key, seen).await.is_empty());
    let decision = login(&s, &key, "ann@example.com").await;
    assert_eq!(decision["reason"], "not_provisioned");
    assert_eq!(decision["user_id"], Value::Null);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(recv.events().is_empty(), "{:?}", recv.events());
    // Switching the setting off would release them unseen: refused.
    let r = s
        .admin(
            &key,
            Method::PATCH,
            &format!("/tenants/{}/settings", s.tenant),
            Some(json!({"first_sync_review": false})),
        )
        .await;
    r.expect(409);
    assert!(r.text.contains("approve"), "{}", r.text);

    let done = s
        .admin(&key, Method::POST, &format!("{path}/approve"), None)
        .await;
    done.expect(200);
    assert_eq!(done.json["released_events"].as_i64(), Some(held));
    let released = s.feed(&key, seen).await;
    let expected: Vec<i64> = (seen + 1..=seen + held).collect();
    assert_eq!(
        seqs(&released),
        expected,
        "after every seen seq, without gaps"
    );
    let t = types(&released);
    assert_eq!(&t[..2], ["user.created", "user.created"]);
    assert!(t.contains(&"group.members_added") && t.contains(&"user.deactivated"));
    recv.wait_for_seq(seen + held, Duration::from_secs(30))
        .await;
    let delivered: Vec<i64> = recv
        .events()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered.first(), Some(&(seen + 1)));
    assert_eq!(login(&s, &key, "ann@example.com").await["reason"], "active");

    assert_eq!(s.admin_get(&key, &path).await["open"], false);
    let again = s
        .admin(&key, Method::POST, &format!("{path}/approve"), None)
        .await;
    again.expect(409);
    // From now on, writes reach the feed at once.
    s.create_user(&user("cy")).await;
    assert_eq!(types(&s.feed(&key, seen + held).await), ["user.created"]);
}

#[tokio::test]
async fn a_discarded_review_is_undone_and_its_ids_answer_404() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    review(&s, &key, true).await;
    let seen = s.feed(&key, 0).await.last().unwrap()["seq"]
        .as_i64()
        .unwrap();
    let ann = s.create_user(&user("ann")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = s.create_group("Editors", &[&ann]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let st: Value =
        serde_json::from_str(s.cli_ok(&["first-sync", "status", "acme", "--json"]).trim()).unwrap();
    assert_eq!(
        (st["open"].clone(), st["users_total"].clone()),
        (json!(true), json!(1))
    );
    let text = s.cli_ok(&["first-sync", "status", "acme"]);
    assert!(
        text.contains("users_created: 1") && text.contains(&ann),
        "{text}"
    );
    let refused = s.cli(&["first-sync", "discard", "acme"]);
    assert!(!refused.status.success());
    let out = s.cli_ok(&["first-sync", "discard", "acme", "--yes"]);
    assert!(
        out.contains("discarded: 2 created resources deleted"),
        "{out}"
    );

    // SCIM is disabled: the old token stops working (the server notices another process's
    // change within a second: its authentication cache polls the auth epoch).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = s.get(&format!("/Users/{ann}")).await.status;
        if status == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing held was released; the operator's events were.
    let after = s.feed(&key, seen).await;
    assert_eq!(types(&after), ["scim.disabled"]);
    let settings = s
        .admin_get(&key, &format!("/tenants/{}/settings", s.tenant))
        .await;
    assert_eq!(settings["first_sync_review"], false);
    assert_eq!(settings["scim_enabled"], false);

    // Enabled again, the identity provider's ids of what the review created answer 404.
    let enabled = s
        .admin(&key, Method::POST, "/tenants/acme/scim/enable", None)
        .await;
    enabled.expect(200);
    let token = enabled.json["token"].as_str().unwrap();
    for path in [format!("/Users/{ann}"), format!("/Groups/{group}")] {
        let r = s.send(s.client.get(s.url(&path)).bearer_auth(token)).await;
        r.expect_error(404, None);
    }
}
