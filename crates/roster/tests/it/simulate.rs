//! `roster simulate --concurrency N` and `--initial`: several requests in flight within a step
//! leave the server in the same state as one request at a time.

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::harness::{bin, TestServer};

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

/// The JSON report of a run that must have passed.
#[track_caller]
fn passed(out: &Output, what: &str) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: no JSON report ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success() && r["ok"] == true,
        "{what}: the cycle failed: {r:#}"
    );
    assert_eq!(r["steps_run"], r["steps_total"], "{what}");
    r
}

/// A tenant set to `idp`: (base URL, token).
fn tenant(s: &TestServer, name: &str, idp: &str) -> (String, String) {
    let out = s.cli_ok(&["tenant", "create", name, "--idp", idp, "--json"]);
    let t: Value = serde_json::from_str(out.trim()).unwrap();
    (
        t["scim_base_url"].as_str().unwrap().to_owned(),
        t["token"].as_str().unwrap().to_owned(),
    )
}

async fn list(s: &TestServer, base: &str, token: &str, endpoint: &str) -> Vec<Value> {
    let r = s
        .send(
            s.client
                .get(format!("{base}/{endpoint}"))
                .bearer_auth(token)
                .query(&[("count", "1000")]),
        )
        .await;
    r.expect(200);
    r.json["Resources"].as_array().cloned().unwrap_or_default()
}

/// What a tenant holds, with server-assigned ids and timestamps left out and the run's token
/// replaced, so that two runs of the same cycle compare equal: users by userName (their
/// attributes and the displayNames of their groups), groups by displayName (their attributes
/// and their members' userNames, sorted).
async fn state(s: &TestServer, base: &str, token: &str, run: &str) -> Value {
    let users = list(s, base, token, "Users").await;
    let groups = list(s, base, token, "Groups").await;
    let names: BTreeMap<String, String> = users
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_owned(),
                u["userName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut out_users = BTreeMap::new();
    for u in &users {
        let mut u = u.clone();
        let mut groups: Vec<String> = u["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .map(|g| g["display"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        groups.sort();
        let o = u.as_object_mut().unwrap();
        o.remove("id");
        o.remove("meta");
        o.insert("groups".into(), json!(groups));
        out_users.insert(u["userName"].as_str().unwrap().to_owned(), u);
    }
    let mut out_groups = BTreeMap::new();
    for g in &groups {
        let mut g = g.clone();
        let mut members: Vec<String> = g["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| {
                        names
                            .get(m["value"].as_str().unwrap())
                            .cloned()
                            .unwrap_or_else(|| format!("unknown member {m}"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        members.sort();
        let o = g.as_object_mut().unwrap();
        o.remove("id");
        o.remove("meta");
        o.insert("members".into(), json!(members));
        out_groups.insert(g["displayName"].as_str().unwrap().to_owned(), g);
    }
    let text = json!({"users": out_users, "groups": out_groups}).to_string();
    serde_json::from_str(&text.replace(run, "RUN")).unwrap()
}

#[tokio::test]
async fn concurrent_initial_cycle_leaves_the_same_state_as_a_sequential_one() {
    let s = TestServer::start().await;
    let sizes = [
        "--users",
        "12",
        "--groups",
        "4",
        "--members-per-group",
        "5",
        "--initial",
    ];
    let mut states = Vec::new();
    for n in ["1", "8"] {
        let (base, token) = tenant(&s, &format!("entra {n}"), "entra");
        let mut args = sizes.to_vec();
        args.extend(["--concurrency", n]);
        let r = passed(&simulate(&base, &token, "entra", &args), n);
        assert_eq!(r["concurrency"], n.parse::<u64>().unwrap());
        assert_eq!(r["initial"], true);
        // Only the initial steps ran: matching and creating users and groups, adding members.
        let methods: Vec<&str> = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["method"].as_str().unwrap())
            .collect();
        assert_eq!(methods, ["GET", "POST", "GET", "POST", "PATCH"]);
        assert_eq!(r["requests"], 12 + 12 + 4 + 4 + 4 * 5);
        for step in r["steps"].as_array().unwrap() {
            assert_eq!(step["in_flight"], n.parse::<u64>().unwrap(), "{step}");
        }
        states.push(state(&s, &base, &token, r["run"].as_str().unwrap()).await);
    }
    // The initial cycle leaves what it created: 12 users, 4 groups of 5 members.
    let st = &states[0];
    assert_eq!(st["users"].as_object().unwrap().len(), 12, "{st:#}");
    let groups = st["groups"].as_object().unwrap();
    assert_eq!(groups.len(), 4, "{st:#}");
    for g in groups.values() {
        assert_eq!(g["members"].as_array().unwrap().len(), 5, "{g}");
    }
    assert_eq!(
        st["users"]["sim.RUN.u0@example.com"]["groups"],
        json!(["Sim RUN group 0", "Sim RUN group 2"]),
        "{st:#}"
    );
    assert_eq!(states[0], states[1]);
}

#[tokio::test]
async fn concurrent_full_cycles_pass_and_order_dependent_steps_stay_sequential() {
    let s = TestServer::start().await;
    for idp in ["entra", "jumpcloud"] {
        let (base, token) = tenant(&s, &format!("{idp} parallel"), idp);
        let r = passed(
            &simulate(
                &base,
                &token,
                idp,
                &[
                    "--users",
                    "8",
                    "--groups",
                    "3",
                    "--members-per-group",
                    "4",
                    "--concurrency",
                    "6",
                ],
            ),
            idp,
        );
        for step in r["steps"].as_array().unwrap() {
            // A step capturing one shared value (JumpCloud's connection test) keeps its order.
            let want = if step["name"]
                .as_str()
                .unwrap()
                .starts_with("Test connection: create")
            {
                1
            } else {
                6
            };
            assert_eq!(step["in_flight"], want, "{idp}: {step}");
        }
        // Entra's cycle deletes what it created: nothing is left.
        if idp == "entra" {
            assert!(list(&s, &base, &token, "Users").await.is_empty());
            assert!(list(&s, &base, &token, "Groups").await.is_empty());
        }
    }
}

#[tokio::test]
async fn initial_and_concurrency_are_checked() {
    let s = TestServer::start().await;
    // Okta's recorded cycle marks no initial steps: a clear refusal, no request sent.
    let out = simulate(&s.base, &s.token, "okta", &["--initial"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("marks no initial steps"), "{err}");
    assert!(list(&s, &s.base, &s.token, "Users").await.is_empty());
    for bad in ["0", "257", "x"] {
        let out = simulate(&s.base, &s.token, "entra", &["--concurrency", bad]);
        assert!(!out.status.success(), "--concurrency {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--concurrency"), "{bad}: {err}");
    }
    // The help says what the flags do.
    let out = Command::new(bin())
        .args(["simulate", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--concurrency <CONCURRENCY>"), "{help}");
    assert!(help.contains("--initial"), "{help}");
}
