//! Health and webhooks in the console (issue 14): the tenants list's health columns (a
//! failing tenant, a guard holding, a token about to expire or expired), the SCIM page's
//! 7-day chart and its totals, webhook pause/resume/redeliver and the delivery attempts, over
//! plain HTTP against the real binary; and the same pages in Chromium, with screenshots `H01…`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

#[allow(clippy::wildcard_imports)]
use crate::browser::*;
use crate::console::{
    csrf_of, get, http, operator, set_cookie, setup_link, sign_in_key, use_setup_link,
};
use crate::harness::{user_body, TestServer};
use crate::webhooks::Receiver;

/// The row of the tenants table that links to `tenant`.
fn row<'a>(page: &'a str, tenant: &str) -> &'a str {
    let link = format!("href=\"/console/t/{tenant}\"");
    page.split("<tr")
        .find(|r| r.contains(&link))
        .unwrap_or_else(|| panic!("no row of {tenant}: {page}"))
}

/// Makes failures for `acme` (a 409, two 401s, a 503 from its guard) and a success; waits
/// until the health rollup has them.
async fn make_acme_fail(s: &TestServer, key: &str) {
    s.set_settings(
        &s.tenant,
        json!({"deprovision_guard": {"max_percent": 10, "min_count": 1, "window_minutes": 5}}),
    );
    let ids = s.users("h", 3).await;
    s.post("/Users", &user_body("h0")).await.expect(409);
    for _ in 0..2 {
        let r = http()
            .get(format!("{}/Users", s.base))
            .bearer_auth("rsct_not_a_token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
    s.deactivate(&ids[0]).await.expect(200);
    s.deactivate(&ids[1]).await.expect(503);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = s.admin_get(key, "/tenants/acme/health").await;
        if h["failures_24h"].as_u64().unwrap_or(0) >= 4 && h["guard"]["holding"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rollup never had the failures: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tenants list shows what needs attention: failures in 24 hours (a red badge linking to
/// the tenant's log filtered to failures), the guard holding, a token about to expire, no
/// valid token; a quiet tenant says "Nothing". The SCIM page's chart totals agree with the
/// admin API's hours, and the page has no inline style.
#[tokio::test]
async fn the_tenants_list_shows_health_and_the_chart_its_totals() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.cli_ok(&["tenant", "create", "Globex", "--expires-in-days", "10"]);
    s.cli_ok(&["tenant", "create", "Initech", "--expires-in-days", "0"]);
    s.create_tenant("Umbrella");
    make_acme_fail(&s, &key).await;
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();

    let page = get(&o, "/console/tenants", &jar)
        .await
        .text()
        .await
        .unwrap();
    let acme = row(&page, "acme");
    assert!(acme.contains("class=\"unhealthy\""), "{acme}");
    assert!(
        acme.contains("class=\"badge bad\" href=\"/console/t/acme/log?outcome=failure&")
            && acme.contains("since="),
        "the failures link to the log filtered to failures: {acme}"
    );
    assert!(acme.contains(" failed</a>"), "{acme}");
    assert!(acme.contains("Holding 1 deactivation"), "{acme}");
    assert!(!acme.contains("never"), "acme had a success: {acme}");
    let globex = row(&page, "globex");
    assert!(
        globex.contains("Token expires in 9 days") || globex.contains("Token expires in 10 days"),
        "{globex}"
    );
    assert!(row(&page, "initech").contains("No valid token"));
    let umbrella = row(&page, "umbrella");
    assert!(
        umbrella.contains("Nothing") && !umbrella.contains("unhealthy"),
        "{umbrella}"
    );

    // The chart: its totals are the API's hours, summed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = s.admin_get(&key, "/tenants/acme/health").await;
        let hours = h["hours"].as_array().unwrap();
        let sum = |f: &str| hours.iter().map(|x| x[f].as_u64().unwrap()).sum::<u64>();
        let (req, fail) = (sum("requests"), sum("failures"));
        let scim = get(&o, "/console/t/acme", &jar).await.text().await.unwrap();
        let summary = scim
            .split("id=\"chart-summary\">")
            .nth(1)
            .and_then(|x| x.split('<').next())
            .unwrap()
            .to_owned();
        if summary == format!("{req} requests, {fail} failed, in the last 7 days.") {
            assert!(fail >= 4 && req > fail, "{summary}");
            assert!(scim.contains("<svg viewBox="), "an inline SVG");
            assert!(scim.contains("role=\"img\" aria-labelledby=\"chart-title chart-desc\""));
            assert!(scim.contains("<div class=\"sr-only\"><table id=\"chart-table\">"));
            assert!(
                scim.contains("class=\"fail\"><rect "),
                "a failure bar is drawn"
            );
            assert!(!scim.contains(" style="), "CSP forbids inline styles");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chart {summary:?} vs API {req}/{fail}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A paused webhook delivers nothing and keeps its position (its lag grows); resumed from the
/// console, it continues where it stopped. Attempts are listed with the receiver's status, in
/// the admin API and on the endpoint's page; the SCIM page shows the endpoint's state and
/// redelivers. An IT admin sees neither the webhooks page nor the section.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn webhook_pause_stops_delivery_and_the_console_shows_it() {
    let s = TestServer::start_with(&["--webhook-poll-ms", "100"]).await;
    let key = s.admin_key();
    let recv = Receiver::new();
    let (addr, running) = recv.start("127.0.0.1:0".parse().unwrap()).await;
    let hook = recv.subscribe(&s, addr);
    let id = hook["id"].as_str().unwrap().to_owned();
    let first = s.feed(&key, 0).await.len() as i64;
    s.user("one").await;
    recv.wait_for_seq(first + 1, Duration::from_secs(30)).await;

    // The attempt is recorded after its delivery.
    let deadline = Instant::now() + Duration::from_secs(10);
    let attempts = loop {
        let a = s.admin_get(&key, &format!("/webhooks/{id}/attempts")).await;
        if !a["attempts"].as_array().unwrap().is_empty() {
            break a;
        }
        assert!(Instant::now() < deadline, "no attempt recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let a = &attempts["attempts"][0];
    assert_eq!(a["delivered"], true, "{a}");
    assert_eq!(a["status"], 204);
    assert_eq!(a["first_seq"], first + 1);
    assert_eq!(a["tenant"], "acme");
    assert!(a["error"].is_null());
    s.admin(
        &key,
        Method::GET,
        &format!("/webhooks/{id}/attempts?limit=0"),
        None,
    )
    .await
    .expect(400);
    s.admin(&key, Method::GET, "/webhooks/wh_nope/attempts", None)
        .await
        .expect(404);

    // Paused: nothing is delivered, the lag grows.
    let r = s
        .admin(&key, Method::POST, &format!("/webhooks/{id}/pause"), None)
        .await;
    r.expect(200);
    assert_eq!(r.json["enabled"], false);
    s.user("two").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        recv.events()
            .iter()
            .all(|e| e["seq"].as_i64().unwrap() <= first + 1),
        "a paused webhook delivers nothing"
    );
    let w = s.admin_get(&key, &format!("/webhooks/{id}")).await;
    assert_eq!(w["streams"][0]["lag"], 1, "{w}");
    assert_eq!(w["streams"][0]["cursor"], first + 1);

    // The console shows it: the list, the endpoint's page with its attempts, the SCIM page.
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let list = get(&o, "/console/webhooks", &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(&format!("http://{addr}/hook")), "{list}");
    assert!(
        list.contains("<span class=\"badge off\">Paused</span>"),
        "{list}"
    );
    let detail = get(&o, &format!("/console/webhooks/{id}"), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(detail.contains("id=\"resume\""), "{detail}");
    assert!(
        detail.contains("<span class=\"badge ok\">204</span>"),
        "{detail}"
    );
    let scim = get(&o, "/console/t/acme", &jar).await.text().await.unwrap();
    let section = scim
        .split("id=\"webhook-state\"")
        .nth(1)
        .expect("the webhook section");
    assert!(
        section.contains("data-label=\"Lag (events)\">1</td>"),
        "{section}"
    );
    assert!(section.contains("Paused"), "{section}");

    // Resumed from the console: it continues with the event it had not delivered.
    let csrf = csrf_of(&detail);
    let r = http()
        .post(format!("{o}/console/webhooks/{id}/resume"))
        .header("cookie", &jar)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&format!("/console/webhooks/{id}?done=resumed")));
    recv.wait_for_seq(first + 2, Duration::from_secs(30)).await;
    // A GET of the POST-only address goes back to the endpoint's page.
    let r = get(&o, &format!("/console/webhooks/{id}/resume"), &jar).await;
    assert_eq!(r.status().as_u16(), 303);
    // Redeliver from the SCIM page.
    let r = http()
        .post(format!("{o}/console/t/acme/webhooks/{id}/redeliver"))
        .header("cookie", &jar)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        "/console/t/acme?done=redelivered#h-webhooks"
    );
    let audit = s.admin_get(&key, "/audit-log").await.to_string();
    for action in ["webhook.pause", "webhook.resume", "webhook.redeliver"] {
        assert!(audit.contains(action), "{action} audited: {audit}");
    }

    // The IT admin: no webhooks page, no webhook section.
    let link = setup_link(&s, "acme");
    let it = set_cookie(&use_setup_link(&o, &link).await).unwrap();
    assert_eq!(
        get(&o, "/console/webhooks", &it).await.status().as_u16(),
        403
    );
    assert_eq!(
        get(&o, &format!("/console/webhooks/{id}"), &it)
            .await
            .status()
            .as_u16(),
        403
    );
    let scim = get(&o, "/console/t/acme", &it).await.text().await.unwrap();
    assert!(scim.contains("id=\"chart\"") && !scim.contains("webhook-state"));
    let r = http()
        .post(format!("{o}/console/t/acme/webhooks/{id}/redeliver"))
        .header("cookie", &it)
        .form(&[("csrf", csrf_of(&scim).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    running.stop().await;
}

/// Adding an endpoint refuses a bad URL and an unknown event type at their fields, as typed;
/// a good one shows its secret once; rotating shows a new one once.
#[tokio::test]
async fn webhook_forms_refuse_at_the_field_and_show_secrets_once() {
    let s = TestServer::start().await;
    let key = s.admin_key();
    let o = s.origin.clone();
    let jar = set_cookie(&sign_in_key(&o, &key).await).unwrap();
    let page = get(&o, "/console/webhooks", &jar)
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let jar = jar.clone();
        async move {
            http()
                .post(&path)
                .header("cookie", jar)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(
        format!("{o}/console/webhooks"),
        vec![
            ("csrf", csrf.clone()),
            ("url", "ftp://x".into()),
            ("events", "user.created, user.nope".into()),
            ("tenant", String::new()),
            ("description", "mine".into()),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"wh-url-error\""), "{html}");
    assert!(html.contains("id=\"wh-events-error\""), "{html}");
    assert!(
        html.contains("value=\"user.created, user.nope\""),
        "as typed"
    );
    assert!(html.contains("2 problems to fix"), "{html}");

    let r = post(
        format!("{o}/console/webhooks"),
        vec![
            ("csrf", csrf.clone()),
            ("url", "http://127.0.0.1:9/hook".into()),
            ("events", "user.created".into()),
            ("tenant", "acme".into()),
            ("description", String::new()),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let shown = get(&o, &to, &jar).await.text().await.unwrap();
    assert!(shown.contains("id=\"new-secret\""), "{shown}");
    assert!(shown.contains("whsec_"));
    let again = get(&o, &to, &jar).await.text().await.unwrap();
    assert!(!again.contains("whsec_") && again.contains("shown once"));
    let id = to
        .trim_start_matches("/console/webhooks/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let r = post(
        format!("{o}/console/webhooks/{id}/rotate"),
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let rotated = get(&o, &to, &jar).await.text().await.unwrap();
    assert!(rotated.contains("whsec_") && rotated.contains("keeps signing too until"));
    // The confirmation dialogs render open without JavaScript.
    let remove = get(&o, &format!("/console/webhooks/{id}?confirm=remove"), &jar)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        remove.contains("aria-describedby=\"dlg-remove-d\" open>"),
        "{remove}"
    );
    let r = post(
        format!("{o}/console/webhooks/{id}/delete"),
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    s.admin(&key, Method::GET, &format!("/webhooks/{id}"), None)
        .await
        .expect(404);
    let v: Value = s.admin_get(&key, "/webhooks").await;
    assert_eq!(v["webhooks"], json!([]));
}

/// In Chromium: the tenants list with a failing tenant, the SCIM page's chart, and the
/// webhooks page (add, refused input, pause, remove in the console's dialog), each page
/// screenshot at 1280 and 390 px (`H01…`) and checked for accessibility.
#[tokio::test]
async fn console_health_in_chromium() {
    let Some(driver) = start_driver() else {
        return;
    };
    let s = TestServer::start().await;
    let key = s.admin_key();
    s.cli_ok(&["tenant", "create", "Globex", "--expires-in-days", "10"]);
    make_acme_fail(&s, &key).await;
    let password = operator(&s, "ops@example.com");
    let c = connect(&driver).await;
    c.set_window_size(1280, 1000).await.unwrap();
    let o = s.origin.clone();

    c.goto(&format!("{o}/console/sign-in")).await.unwrap();
    fill(&c, "#email", "ops@example.com").await;
    fill(&c, "#password", &password).await;
    click(&c, "#sign-in").await;
    css(&c, "#sign-out").await;
    c.goto(&format!("{o}/console/tenants")).await.unwrap();
    css(&c, "#tenants").await;
    let page = source(&c).await;
    assert!(row(&page, "acme").contains(" failed</a>"), "{page}");
    shoot(&c, "H01-tenants-health").await;

    c.goto(&format!("{o}/console/t/acme")).await.unwrap();
    css(&c, "#chart").await;
    let box_w = js(
        &c,
        "return document.getElementById('chart').getBoundingClientRect().width",
    )
    .await;
    assert!(
        box_w.as_f64().unwrap() > 300.0,
        "the chart is drawn: {box_w}"
    );
    shoot(&c, "H02-scim-chart").await;

    c.goto(&format!("{o}/console/webhooks")).await.unwrap();
    css(&c, "#add-webhook").await;
    shoot(&c, "H03-webhooks").await;
    fill(&c, "#wh-url", "not a url").await;
    click(&c, "#add-webhook").await;
    css(&c, "#wh-url-error").await;
    shoot(&c, "H04-webhook-refused").await;
    let url = css(&c, "#wh-url").await;
    url.clear().await.unwrap();
    url.send_keys("http://127.0.0.1:9/hook").await.unwrap();
    click(&c, "#add-webhook").await;
    css(&c, "#new-secret").await;
    assert!(value(&c, "#new-secret").await.starts_with("whsec_"));
    shoot(&c, "H05-webhook-added").await;
    click(&c, "#pause").await;
    wait_text(&c, "Paused: nothing is delivered").await;
    css(&c, "#resume").await;
    shoot(&c, "H06-webhook-paused").await;
    c.goto(&format!("{o}/console/t/acme")).await.unwrap();
    css(&c, "#webhook-state").await;
    shoot(&c, "H07-scim-webhooks").await;
    c.goto(&format!("{o}/console/webhooks")).await.unwrap();
    click(&c, "#webhooks a").await;
    click(&c, "#remove").await;
    css(&c, "#dlg-remove[open]").await;
    click(&c, "#confirm-remove").await;
    wait_text(&c, "Webhook endpoint removed.").await;
    shoot(&c, "H08-webhook-removed").await;
    c.close().await.unwrap();
}
