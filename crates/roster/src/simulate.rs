//! `roster simulate`: plays an identity provider's provisioning cycle against any SCIM server.
//!
//! The cycle is the identity provider's recorded fixture ([`crate::cycle`]) expanded for the
//! requested number of users and groups: the same requests, in the same shapes and order, as
//! that identity provider sends. Each step's result and timings are printed; the run stops
//! after the first step with a failure (later steps would only fail for the same reason) and
//! the command exits non-zero.
//!
//! Steps run one after the other. Within a step, `--concurrency N` keeps up to N of its
//! requests in flight, as an identity provider does when it creates users or adds members in
//! parallel: a step's instances are independent ([`Step::parallel`]), and the ids they
//! capture are recorded when the step has finished, before the next step reads them. So the
//! end state does not depend on N; only the order in which the server sees one step's
//! requests does.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};

use crate::cycle::{self, Directory, Fixture, Instance, Sizes, Step, TokenUse};

/// Options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `okta`, `entra`, ...
    pub idp: String,
    /// The SCIM base URL.
    pub target: String,
    /// The bearer token.
    pub token: String,
    /// Sizes; `None` fields take the fixture's defaults.
    pub users: Option<usize>,
    /// Groups.
    pub groups: Option<usize>,
    /// Members per group.
    pub members_per_group: Option<usize>,
    /// Requests in flight within a parallel step (at least 1).
    pub concurrency: usize,
    /// Play only the steps of the initial cycle.
    pub initial: bool,
    /// Print one JSON report instead of text.
    pub json: bool,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The outcome of one step (all its instances).
#[derive(Debug, Clone)]
struct StepReport {
    name: String,
    source: String,
    method: String,
    path: String,
    requests: usize,
    statuses: Vec<u16>,
    total: Duration,
    max: Duration,
    /// Wall-clock time of the whole step (less than `total` when requests overlap).
    wall: Duration,
    /// Requests in flight.
    in_flight: usize,
    failures: Vec<String>,
}

/// What one request of a step left: the response body is checked and dropped as soon as it
/// arrives, so that a step of 200,000 requests does not hold 200,000 bodies.
struct Outcome {
    status: Option<u16>,
    elapsed: Duration,
    failures: Vec<String>,
    captures: Vec<(String, String)>,
}

/// Runs the cycle; returns whether every step passed.
///
/// # Errors
/// For a bad fixture name or an unusable target URL; failed steps are reported, not errors.
pub async fn run(opts: Options) -> Result<bool> {
    let mut fixture = cycle::load(&opts.idp)?;
    if opts.initial {
        fixture.keep_initial()?;
    }
    let sizes = Sizes {
        users: opts.users.unwrap_or(fixture.defaults.users),
        groups: opts.groups.unwrap_or(fixture.defaults.groups),
        members_per_group: opts
            .members_per_group
            .unwrap_or(fixture.defaults.members_per_group),
    };
    let target = opts.target.trim_end_matches('/').to_owned();
    reqwest::Url::parse(&target).with_context(|| format!("--target \"{target}\" is not a URL"))?;
    let client = reqwest::Client::builder()
        .timeout(opts.timeout)
        .build()
        .context("building the HTTP client")?;
    let run_id: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut dir = Directory::new(&run_id, sizes);

    let total_requests = fixture.request_count(sizes);
    let pb = if opts.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total_requests as u64)
    };
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} requests  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if !opts.json {
        pb.suspend(|| {
            println!(
                "simulating {}{} against {target}: {} users, {} groups, {} members per group ({} requests, {} in flight, run {run_id})",
                fixture.name,
                if opts.initial { " (initial cycle)" } else { "" },
                sizes.users,
                sizes.groups,
                sizes.members_per_group,
                total_requests,
                opts.concurrency.max(1)
            );
            println!("{}", fixture.description);
        });
    }

    let started = Instant::now();
    let mut reports = Vec::new();
    for step in &fixture.steps {
        pb.set_message(step.name.clone());
        let report = run_step(&client, &opts, &target, &fixture, step, &mut dir, &pb).await;
        let failed = !report.failures.is_empty();
        if !opts.json {
            pb.suspend(|| print_step(&report));
        }
        reports.push(report);
        if failed {
            break;
        }
    }
    pb.finish_and_clear();
    let elapsed = started.elapsed();
    let ok = reports.iter().all(|r| r.failures.is_empty()) && reports.len() == fixture.steps.len();
    let requests: usize = reports.iter().map(|r| r.requests).sum();
    if opts.json {
        let steps: Vec<Value> = reports
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "source": fixture.sources.get(&r.source).unwrap_or(&r.source),
                    "method": r.method,
                    "path": r.path,
                    "requests": r.requests,
                    "statuses": r.statuses,
                    "total_ms": r.total.as_secs_f64() * 1000.0,
                    "max_ms": r.max.as_secs_f64() * 1000.0,
                    "wall_ms": r.wall.as_secs_f64() * 1000.0,
                    "in_flight": r.in_flight,
                    "ok": r.failures.is_empty(),
                    "failures": r.failures,
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "idp": fixture.idp,
                "target": target,
                "run": run_id,
                "users": sizes.users,
                "groups": sizes.groups,
                "members_per_group": sizes.members_per_group,
                "concurrency": opts.concurrency.max(1),
                "initial": opts.initial,
                "ok": ok,
                "steps_total": fixture.steps.len(),
                "steps_run": reports.len(),
                "requests": requests,
                "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
                "steps": steps,
            })
        );
    } else if ok {
        println!(
            "passed: {} steps, {requests} requests in {:.2}s ({:.0} requests/s)",
            reports.len(),
            elapsed.as_secs_f64(),
            requests as f64 / elapsed.as_secs_f64().max(1e-9)
        );
    } else {
        println!(
            "FAILED: stopped after step {} of {} ({requests} requests in {:.2}s)",
            reports.len(),
            fixture.steps.len(),
            elapsed.as_secs_f64()
        );
    }
    Ok(ok)
}

fn print_step(r: &StepReport) {
    let mark = if r.failures.is_empty() {
        "ok  "
    } else {
        "FAIL"
    };
    let mut statuses = r.statuses.clone();
    statuses.sort_unstable();
    statuses.dedup();
    let statuses: Vec<String> = statuses.iter().map(u16::to_string).collect();
    let avg = if r.requests == 0 {
        0.0
    } else {
        r.total.as_secs_f64() * 1000.0 / r.requests as f64
    };
    // Long step names are cut so that the numbers stay in columns.
    let name: String = if r.name.chars().count() > 58 {
        r.name
            .chars()
            .take(57)
            .chain(std::iter::once('…'))
            .collect()
    } else {
        r.name.clone()
    };
    println!(
        "{mark} {name:<58} {:>4}× {:<7} {:<9} avg {avg:>7.1} ms  max {:>7.1} ms  step {:>7.2} s",
        r.requests,
        r.method,
        statuses.join(","),
        r.max.as_secs_f64() * 1000.0,
        r.wall.as_secs_f64()
    );
    for f in r.failures.iter().take(10) {
        println!("       {f}");
    }
    if r.failures.len() > 10 {
        println!("       ... and {} more", r.failures.len() - 10);
    }
}

async fn run_step(
    client: &reqwest::Client,
    opts: &Options,
    target: &str,
    fixture: &Fixture,
    step: &Step,
    dir: &mut Directory,
    pb: &ProgressBar,
) -> StepReport {
    let in_flight = if step.parallel() {
        opts.concurrency.max(1)
    } else {
        1
    };
    let mut report = StepReport {
        name: step.name.clone(),
        source: step.source.clone(),
        method: step.request.method.clone(),
        path: step.request.path.clone(),
        requests: 0,
        statuses: Vec::new(),
        total: Duration::ZERO,
        max: Duration::ZERO,
        wall: Duration::ZERO,
        in_flight,
        failures: Vec::new(),
    };
    let started = Instant::now();
    let shared: &Directory = dir;
    let mut outcomes: Vec<(usize, Instance, Outcome)> =
        futures::stream::iter(shared.instances(step.each).into_iter().enumerate())
            .map(|(k, inst)| async move {
                let outcome = attempt(client, opts, target, fixture, step, shared, inst).await;
                pb.inc(1);
                (k, inst, outcome)
            })
            .buffer_unordered(in_flight)
            .collect()
            .await;
    report.wall = started.elapsed();
    // Reported, and captured, in the instances' order whatever order they completed in.
    outcomes.sort_unstable_by_key(|(k, _, _)| *k);
    for (_, inst, outcome) in outcomes {
        if let Some(status) = outcome.status {
            report.requests += 1;
            report.statuses.push(status);
            report.total += outcome.elapsed;
            report.max = report.max.max(outcome.elapsed);
        }
        report.failures.extend(outcome.failures);
        for (slot, id) in outcome.captures {
            dir.capture(inst, &slot, id);
        }
    }
    report
}

/// Sends one instance of a step and checks its response; the ids to capture are returned,
/// not recorded, because other instances of the step may still be reading the directory.
async fn attempt(
    client: &reqwest::Client,
    opts: &Options,
    target: &str,
    fixture: &Fixture,
    step: &Step,
    dir: &Directory,
    inst: Instance,
) -> Outcome {
    let label = inst.label();
    let prefix = if label.is_empty() {
        String::new()
    } else {
        format!("{label}: ")
    };
    let mut outcome = Outcome {
        status: None,
        elapsed: Duration::ZERO,
        failures: Vec::new(),
        captures: Vec::new(),
    };
    match send(client, opts, target, fixture, step, dir, inst).await {
        Ok((status, elapsed, problems, body)) => {
            outcome.status = Some(status);
            outcome.elapsed = elapsed;
            if problems.is_empty() {
                for (slot, ptr) in &step.expect.capture {
                    match body.pointer(ptr).and_then(Value::as_str) {
                        Some(id) => outcome.captures.push((slot.clone(), id.to_owned())),
                        None => outcome
                            .failures
                            .push(format!("{prefix}no string at {ptr} to capture {slot}")),
                    }
                }
            } else {
                let body_text = short(&body);
                for p in problems {
                    outcome
                        .failures
                        .push(format!("{prefix}{p} — body: {body_text}"));
                }
            }
        }
        Err(e) => outcome.failures.push(format!("{prefix}{e:#}")),
    }
    outcome
}

/// Sends one instance of a step; returns status, time, problems and the parsed body.
async fn send(
    client: &reqwest::Client,
    opts: &Options,
    target: &str,
    fixture: &Fixture,
    step: &Step,
    dir: &Directory,
    inst: Instance,
) -> Result<(u16, Duration, Vec<String>, Value)> {
    let req = &step.request;
    let method = Method::from_bytes(req.method.as_bytes())
        .with_context(|| format!("bad method \"{}\"", req.method))?;
    let path = dir.fill(inst, &req.path)?;
    let mut rb = client.request(method, format!("{target}{path}"));
    if !req.query.is_empty() {
        let mut q = Vec::with_capacity(req.query.len());
        for (k, v) in &req.query {
            q.push((k.clone(), dir.fill(inst, v)?));
        }
        rb = rb.query(&q);
    }
    let token = match req.token {
        TokenUse::Valid => opts.token.clone(),
        TokenUse::Invalid => "rsct_00000000_invalidinvalidinvalidinvalidinvalid0".to_owned(),
    };
    rb = rb.bearer_auth(token);
    for (k, v) in &fixture.headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    if let Some(body) = &req.body {
        for (k, v) in &fixture.body_headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let body = dir.fill_json(inst, body)?;
        rb = rb.body(serde_json::to_vec(&body)?);
    }
    for (k, v) in &req.headers {
        rb = rb.header(k.as_str(), dir.fill(inst, v)?);
    }
    let started = Instant::now();
    let resp = rb.send().await.context("request failed")?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.context("reading the response")?;
    let elapsed = started.elapsed();
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let problems = cycle::check(dir, inst, &step.expect, status, &headers, &body);
    Ok((status, elapsed, problems, body))
}

/// A response body cut to a readable length for failure reports.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 400 {
        let cut: String = s.chars().take(400).collect();
        format!("{cut}…")
    } else {
        s
    }
}
