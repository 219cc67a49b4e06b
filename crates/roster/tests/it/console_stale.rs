//! Two people editing one app user in the browser: the second save, made on a page older than
//! the first one's change, is refused and shows the current values instead of overwriting.

use reqwest::Method;
use serde_json::json;

#[allow(clippy::wildcard_imports)]
use crate::browser::*;
use crate::console::operator;
use crate::harness::TestServer;

#[tokio::test]
async fn a_stale_edit_is_refused_in_chromium() {
    let Some(driver) = start_driver() else {
        return;
    };
    let s = TestServer::start().await;
    let key = s.admin_key();
    let csv = "user_name,email,display_name\ndana,dana@example.com,Dana First\n";
    let r = s.import(&key, "acme", "text/csv", csv).await;
    assert_eq!(r.json["imported"], 1, "{}", r.text);
    let list = s.admin_get(&key, "/tenants/acme/users?contains=dana").await;
    let id = list["users"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no dana in {list}"))
        .to_owned();
    let password = operator(&s, "ops@example.com");
    let c = connect(&driver).await;
    c.set_window_size(1280, 1000).await.unwrap();
    let o = s.origin.clone();
    c.goto(&format!("{o}/console/sign-in")).await.unwrap();
    fill(&c, "#email", "ops@example.com").await;
    fill(&c, "#password", &password).await;
    click(&c, "#sign-in").await;
    css(&c, "#sign-out").await;

    // This tab reads the user; another one (here the admin API) saves a change first.
    c.goto(&format!("{o}/console/t/acme/users/{id}"))
        .await
        .unwrap();
    click(&c, "#edit-user summary").await;
    let field = css(&c, "#display_name").await;
    field.clear().await.unwrap();
    field.send_keys("Dana From This Tab").await.unwrap();
    s.admin(
        &key,
        Method::PATCH,
        &format!("/tenants/acme/users/{id}"),
        Some(json!({"display_name": "Dana Other Tab"})),
    )
    .await
    .expect(200);
    click(&c, "#save-user").await;
    wait_text(&c, "changed since it was read").await;
    // Refused: nothing saved, and the form shows the current values, not the stale ones.
    assert_eq!(value(&c, "#display_name").await, "Dana Other Tab");
    let now = s
        .admin_get(&key, &format!("/tenants/acme/users/{id}"))
        .await;
    assert_eq!(now["display_name"], "Dana Other Tab", "{now}");
    shoot(&c, "F01-stale-edit-refused").await;

    // Saved again on the current values, it goes through.
    let field = css(&c, "#display_name").await;
    field.clear().await.unwrap();
    field.send_keys("Dana From This Tab").await.unwrap();
    click(&c, "#save-user").await;
    wait_text(&c, "Dana From This Tab").await;
    let now = s
        .admin_get(&key, &format!("/tenants/acme/users/{id}"))
        .await;
    assert_eq!(now["display_name"], "Dana From This Tab", "{now}");
    c.close().await.unwrap();
}
