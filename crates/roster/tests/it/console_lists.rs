//! The console's lists (issue 14, "Lists"): totals, sort, Previous and Next, the
//! contains-search, group members in name order, log filters and grouped failures, and the
//! streamed CSV exports with spreadsheet formulas neutralised. Over HTTP, and once in Chromium.

use serde_json::json;

#[allow(clippy::wildcard_imports)]
use crate::browser::*;
use crate::console::{get, http, operator, set_cookie, sign_in_key};
use crate::harness::{TestServer, SCIM_JSON, USER_URN};

const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Creates a SCIM user; answers its id.
async fn user(s: &TestServer, user_name: &str, given: &str, family: &str, email: &str) -> String {
    let r = s
        .client
        .post(format!("{}/Users", s.base))
        .bearer_auth(&s.token)
        .header("content-type", SCIM_JSON)
        .json(&json!({"schemas": [USER_URN], "userName": user_name,
            "name": {"givenName": given, "familyName": family},
            "emails": [{"value": email, "type": "work", "primary": true}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{user_name}");
    let v: serde_json::Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// The userNames of a users page's table, in order.
fn user_names(html: &str) -> Vec<String> {
    let table = html.split("id=\"users\"").nth(1).unwrap();
    let table = table.split("</table>").next().unwrap();
    table
        .split("<td data-label=\"userName\"><a href=\"")
        .skip(1)
        .map(|s| {
            s.split('>')
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The `href` of the link with `rel` (a pager link), unescaped.
fn rel_link(html: &str, rel: &str) -> Option<String> {
    html.split(&format!("\" rel=\"{rel}\""))
        .next()
        .filter(|s| s.len() < html.len())
        .and_then(|s| s.rsplit("href=\"").next())
        .map(|h| h.replace("&#38;", "&").replace("&amp;", "&"))
}

/// Parses a CSV body (RFC 4180: quoted cells, doubled quotes, CRLF lines).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && row.is_empty(),
        "the last line ends with CRLF"
    );
    rows
}

/// Totals, sort, Previous/Next, contains-search and the users CSV, over HTTP.
#[tokio::test]
#[allow(clippy::too_many_lines)] // one list, each of its features in turn
async fn users_list_totals_sort_pages_search_and_csv() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();

    // 30 users (u00 … u29), then Ann Anderson, whose userName a prefix search would miss,
    // and a name a spreadsheet would run as a formula.
    for i in 0..30 {
        let n = format!("u{i:02}");
        user(
            &s,
            &n,
            "Test",
            &format!("Person{i}"),
            &format!("{n}@example.com"),
        )
        .await;
    }
    user(&s, "ann", "Ann", "Anderson", "ann@corp.example").await;
    user(
        &s,
        "zz-formula",
        "=cmd|' /C calc'!A0",
        "Evil",
        "evil@example.com",
    )
    .await;

    let page = get(&o, "/console/t/acme/users", &jar).await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(">32 users</p>"), "the total of every match");
    let first = user_names(&html);
    assert_eq!(first.len(), 25);
    assert_eq!(first[0], "ann", "name A to Z by default");
    assert_eq!(first[1], "u00");
    assert!(html.contains("Export CSV"));
    assert!(
        rel_link(&html, "prev").is_none(),
        "no Previous on the first page"
    );

    // Next, then Previous back to the same rows.
    let next = rel_link(&html, "next").expect("a next page");
    let html2 = get(&o, &next, &jar).await.text().await.unwrap();
    let second = user_names(&html2);
    assert_eq!(second.len(), 7);
    assert_eq!(second[0], "u24");
    assert_eq!(second.last().unwrap(), "zz-formula");
    assert!(rel_link(&html2, "next").is_none());
    let prev = rel_link(&html2, "prev").expect("a previous page");
    let back = get(&o, &prev, &jar).await.text().await.unwrap();
    assert_eq!(
        user_names(&back),
        first,
        "Previous shows the first page again"
    );
    assert!(rel_link(&back, "prev").is_none(), "back at the start");

    // Sort: newest first, keeping the filter.
    let html = get(
        &o,
        "/console/t/acme/users?sort=-created&q=example.com",
        &jar,
    )
    .await
    .text()
    .await
    .unwrap();
    let newest = user_names(&html);
    assert_eq!(newest[0], "zz-formula");
    assert_eq!(newest[1], "u29");
    assert!(
        html.contains(">31 users</p>"),
        "ann's email is corp.example"
    );
    let next = rel_link(&html, "next").unwrap();
    assert!(next.contains("sort=-created") && next.contains("q=example.com"));
    let html = get(&o, &next, &jar).await.text().await.unwrap();
    assert_eq!(
        user_names(&html)[0],
        "u05",
        "the order holds on the next page: {next} {:?} {newest:?}",
        user_names(&html)
    );

    // Contains: "Anderson" finds Ann (a prefix search of userName or email would not).
    let html = get(&o, "/console/t/acme/users?q=Anderson", &jar)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(user_names(&html), ["ann"]);
    assert!(html.contains(">1 user</p>"));
    let html = get(&o, "/console/t/acme/users?q=ERSON2", &jar)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        user_names(&html),
        ["u02", "u20", "u21", "u22", "u23", "u24", "u25", "u26", "u27", "u28", "u29"]
    );
    // A stale or hand-made cursor is a 400 that says to open the list again.
    let r = get(&o, "/console/t/acme/users?sort=name&cursor=s00zz", &jar).await;
    assert_eq!(r.status().as_u16(), 400);

    // CSV: every match (not a page), in the list's order, formulas neutralised.
    let r = get(&o, "/console/t/acme/users.csv", &jar).await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"acme-users.csv\""
    );
    let rows = parse_csv(&r.text().await.unwrap());
    assert_eq!(rows[0][..4], ["id", "userName", "name", "email"]);
    assert_eq!(rows.len(), 33, "a header and 32 users");
    assert_eq!(rows[1][1], "ann");
    let evil = rows.iter().find(|r| r[1] == "zz-formula").unwrap();
    assert_eq!(
        evil[2], "'=cmd|' /C calc'!A0 Evil",
        "a formula starts with a quote"
    );
    assert!(rows.iter().all(|r| r.iter().all(|c| !c.starts_with('='))));
    let rows = parse_csv(
        &get(&o, "/console/t/acme/users.csv?q=anderson", &jar)
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(rows.len(), 2, "the export keeps the search");

    // Tenant-scoped: a session without the tenant gets no export.
    let r = http()
        .get(format!("{o}/console/t/acme/users.csv"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status().as_u16(), 200, "no session, no export");
}

/// Groups: contains-search, total, CSV; a group's members in name order.
#[tokio::test]
async fn groups_search_total_csv_and_members_in_name_order() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let zed = user(&s, "zed", "Zed", "Z", "zed@example.com").await;
    let amy = user(&s, "amy", "Amy", "A", "amy@example.com").await;
    let kim = user(&s, "Kim", "Kim", "K", "kim@example.com").await;
    for name in ["Engineering", "Sales", "Pre-Sales", "+Formula"] {
        let r = s
            .client
            .post(format!("{}/Groups", s.base))
            .bearer_auth(&s.token)
            .header("content-type", SCIM_JSON)
            .json(&json!({"schemas": [GROUP_URN], "displayName": name,
                "members": [{"value": zed}, {"value": amy}, {"value": kim}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let html = get(&o, "/console/t/acme/groups?q=SALES", &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(">2 groups</p>"));
    assert!(html.contains(">Pre-Sales<") && html.contains(">Sales<"));
    assert!(!html.contains(">Engineering<"));

    let rows = parse_csv(
        &get(&o, "/console/t/acme/groups.csv", &jar)
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(rows[0][..2], ["id", "displayName"]);
    let names: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(names, ["'+Formula", "Engineering", "Pre-Sales", "Sales"]);
    assert!(rows[1..].iter().all(|r| r[3] == "3"), "member counts");

    // The group page lists members by name.
    let html = get(&o, "/console/t/acme/groups?q=engineering", &jar)
        .await
        .text()
        .await
        .unwrap();
    let href = html
        .split("<td data-label=\"Group\"><a href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = get(&o, &href, &jar).await.text().await.unwrap();
    let pos = |n: &str| page.find(&format!(">{n}</a>")).unwrap();
    assert!(
        pos("amy") < pos("Kim") && pos("Kim") < pos("zed"),
        "name order"
    );
}

/// The log: filters by status class, method and text; repeated failures grouped with their
/// hint once; its CSV.
#[tokio::test]
async fn log_filters_group_repeated_failures_and_export() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    user(&s, "ann", "Ann", "Anderson", "ann@example.com").await;
    // A request with a wrong token: 401.
    let r = s
        .client
        .get(format!("{}/Users", s.base))
        .bearer_auth("rsk_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Five duplicates in a row: 409, same cause.
    for _ in 0..5 {
        let r = s
            .client
            .post(format!("{}/Users", s.base))
            .bearer_auth(&s.token)
            .header("content-type", SCIM_JSON)
            .json(&json!({"schemas": [USER_URN], "userName": "ann"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 409);
    }

    // The log is written off the request path: wait for it.
    let mut html = String::new();
    for _ in 0..50 {
        html = get(&o, "/console/t/acme/log", &jar)
            .await
            .text()
            .await
            .unwrap();
        if html.contains("5 × 409") && html.contains("401 failed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        html.contains("5 × 409</span>"),
        "the run of 409s is one row: {:?}",
        html.split("data-label=\"Outcome\">")
            .skip(1)
            .map(|x| x.split("</td>").next().unwrap())
            .collect::<Vec<_>>()
    );
    assert!(html.contains("same cause"));
    let hints = html.matches("<strong>What to do:</strong>").count();
    assert_eq!(hints, 2, "one hint for the run of 409s, one for the 401");
    assert!(html.contains("The 4 earlier requests with the same cause"));

    let only = |q: &str| {
        let o = o.clone();
        let jar = jar.clone();
        let q = q.to_owned();
        async move {
            get(&o, &format!("/console/t/acme/log?{q}"), &jar)
                .await
                .text()
                .await
                .unwrap()
        }
    };
    let h = only("status=4xx&method=POST").await;
    assert!(h.contains("5 × 409") && !h.contains("401 failed"));
    let h = only("status=4xx&method=GET").await;
    assert!(h.contains("401 failed") && !h.contains("× 409") && !h.contains("409 failed"));
    let h = only("status=2xx").await;
    assert!(h.contains("201 OK") && !h.contains("failed</span>"));
    let h = only("text=Users").await;
    assert!(h.contains("201 OK"));
    let h = only("text=nothing-like-this").await;
    assert!(h.contains("No request matches."));

    let r = get(&o, "/console/t/acme/log.csv?status=4xx", &jar).await;
    assert_eq!(r.status().as_u16(), 200);
    let rows = parse_csv(&r.text().await.unwrap());
    assert_eq!(rows[0][..4], ["at", "method", "path", "status"]);
    assert_eq!(rows.len(), 7, "a header, the 401 and five 409s");
    assert!(rows[1..].iter().all(|r| r[3].starts_with('4')));
    let r = get(&o, "/console/t/acme/log.csv?since=yesterday", &jar).await;
    assert_eq!(r.status().as_u16(), 400);
}

/// In Chromium: search, sort, page forward and back, download the CSV.
#[tokio::test]
async fn console_lists_in_chromium() {
    let Some(driver) = start_driver() else {
        return;
    };
    let s = TestServer::start().await;
    let o = s.origin.clone();
    for i in 0..27 {
        let n = format!("u{i:02}");
        user(
            &s,
            &n,
            "Test",
            &format!("Person{i}"),
            &format!("{n}@example.com"),
        )
        .await;
    }
    user(&s, "ann", "Ann", "Anderson", "ann@corp.example").await;
    let password = operator(&s, "lists@example.com");
    let c = connect(&driver).await;
    c.set_window_size(1280, 1000).await.unwrap();
    c.goto(&format!("{o}/console/t/acme/users")).await.unwrap();
    fill(&c, "#email", "lists@example.com").await;
    fill(&c, "#password", &password).await;
    click(&c, "#sign-in").await;
    css(&c, "#users").await;
    wait_text(&c, "28 users").await;
    shoot(&c, "L01-users").await;

    // Search by a part of the family name.
    fill(&c, "#q", "derso").await;
    click(&c, "#apply-filters").await;
    wait_text(&c, ">1 user<").await;
    assert!(text(&c, "#users tbody").await.contains("ann"));
    shoot(&c, "L02-users-search").await;

    // Sort newest first, page on and back.
    css(&c, "#q").await.clear().await.unwrap();
    choose(&c, "#sort", "-created").await;
    click(&c, "#apply-filters").await;
    wait_text(&c, "28 users").await;
    let first = text(&c, "#users tbody").await;
    assert!(first.find("ann").unwrap() < first.find("u26").unwrap());
    click(&c, "a[rel=next]").await;
    wait_text(&c, "u01@example.com").await;
    shoot(&c, "L03-users-page-2").await;
    click(&c, "a[rel=prev]").await;
    wait_text(&c, "u26@example.com").await;
    assert_eq!(text(&c, "#users tbody").await, first);

    // The export link downloads every user in the list's order, with the session's cookie.
    let href = css(&c, "#users-csv")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(href.contains("sort=-created"));
    let cookie = c.get_named_cookie("roster_console").await.unwrap();
    let body = http()
        .get(format!("{o}{href}"))
        .header("cookie", format!("roster_console={}", cookie.value()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows = parse_csv(&body);
    assert_eq!(rows.len(), 29);
    assert_eq!(rows[1][1], "ann", "newest first, as the list");

    c.goto(&format!("{o}/console/t/acme/groups")).await.unwrap();
    css(&c, "#groups").await;
    shoot(&c, "L04-groups").await;
    c.goto(&format!("{o}/console/t/acme/log?status=2xx"))
        .await
        .unwrap();
    css(&c, "#log").await;
    shoot(&c, "L05-log").await;
    c.close().await.unwrap();
}

/// The log links a row to its user or group only while it exists: an erased user's rows and
/// a 404 for an id that never existed are text, never a link to a 404.
#[tokio::test]
async fn log_rows_link_only_to_what_exists() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    s.cli_ok(&[
        "tenant",
        "settings",
        "acme",
        "--set",
        "deprovision_on_delete=erase",
    ]);
    let kept = user(&s, "kept", "Kept", "User", "kept@example.com").await;
    let gone = user(&s, "gone", "Gone", "User", "gone@example.com").await;
    let r = s
        .client
        .delete(format!("{}/Users/{gone}", s.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = s
        .client
        .patch(format!("{}/Users/never-existed", s.base))
        .bearer_auth(&s.token)
        .header("content-type", SCIM_JSON)
        .json(
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let mut html = String::new();
    for _ in 0..50 {
        html = get(&o, "/console/t/acme/log", &jar)
            .await
            .text()
            .await
            .unwrap();
        if html.contains("404") && html.matches("/Users/").count() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        html.contains(&format!("href=\"/console/t/acme/users/{kept}\"")),
        "{html}"
    );
    assert!(
        html.contains("<td data-label=\"User or group\">gone</td>"),
        "the erased user's rows are listed, as text: {html}"
    );
    assert!(
        !html.contains(&format!("href=\"/console/t/acme/users/{gone}\"")),
        "an erased user is not a link: {html}"
    );
    assert!(
        !html.contains("href=\"/console/t/acme/users/never-existed\""),
        "a 404's id is not a link: {html}"
    );
}
