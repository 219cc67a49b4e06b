//! The host app's commands: `roster users import`, `roster guard status|confirm|reject`,
//! `roster first-sync status|approve|discard` and `roster roles list|add|remove`.
//!
//! Like the other administrative commands they open the database directly, so they work
//! beside a running server, and record what they change in the audit log as `cli:<os user>`.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use roster_server::admin::{self, import};
use roster_server::ops::{first_sync, guard, users};
use roster_server::{AppState, Clock, Settings, SystemClock};
use roster_store::app::GuardDecision;
use roster_store::{Store, StoreError, TenantSettings};
use serde_json::{json, Value};

use crate::ops::{audit, cli_actor};

/// Prints a line on standard output. A closed pipe (`roster users import … | head`) means the
/// reader has gone; that is no reason to panic, and nothing is left to tell anyone.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Lines listed per kind (skipped, errors) in the text summary; `--json` lists them all.
const LISTED: usize = 50;

/// `roster users …`
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Import existing app users (not managed by SCIM) from a JSON lines or CSV file.
    ///
    /// One user a line; see docs/integrating.md for the fields. A userName or id that exists
    /// already is skipped, so importing the same file twice is harmless.
    Import {
        /// Tenant id.
        tenant: String,
        /// The file (`.csv`, or `.jsonl`/`.ndjson`); `-` reads standard input.
        file: String,
        /// The format, when the file name does not say.
        #[arg(long, value_parser = ["csv", "jsonl"])]
        format: Option<String>,
        /// Print one JSON object (imported, skipped, errors) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Erase one deprovisioned user's personal data everywhere Roster keeps it (a
    /// data-protection request): its record, the personal fields of the events about it, and
    /// the bodies, names and details of its provisioning-log rows. Ids stay; audited.
    ///
    /// Refused while the user is live: its identity provider deprovisions it first.
    Erase {
        /// Tenant id.
        tenant: String,
        /// The user's id.
        id: String,
        /// Erase without asking (the erase cannot be undone).
        #[arg(long)]
        yes: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `roster guard …`
#[derive(Subcommand, Debug)]
pub enum GuardCommand {
    /// Show a tenant's mass-deprovisioning guard: state, window, held operations.
    Status {
        /// Tenant id.
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let the held deactivations proceed (the identity provider retries them).
    Confirm {
        /// Tenant id.
        tenant: String,
    },
    /// Refuse the held batch; deactivations stay refused until the identity provider stops.
    Reject {
        /// Tenant id.
        tenant: String,
    },
}

/// `roster roles …`: the role catalogue (see docs/console.md, "Role catalogue").
#[derive(Subcommand, Debug)]
pub enum RolesCommand {
    /// List the roles the host app declares.
    List {
        /// Print JSON (as `GET /api/v1/roles`).
        #[arg(long)]
        json: bool,
    },
    /// Declare a role, or replace its description.
    Add {
        /// The role's name: letters, digits, spaces and _ . : - (a letter or digit first).
        name: String,
        /// What the role allows, shown where people choose roles.
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a role from the catalogue (mappings and users that carry it keep it).
    Remove {
        /// The role's name.
        name: String,
    },
}

/// `roster first-sync …`
#[derive(Subcommand, Debug)]
pub enum FirstSyncCommand {
    /// Show a tenant's first-sync review: what its held events would do, and the users.
    Status {
        /// Tenant id.
        tenant: String,
        /// List the users after this id (the `next_after` of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// Users listed (1–1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deliver the held events to the app, in order, and end the review.
    Approve {
        /// Tenant id.
        tenant: String,
    },
    /// Undo what the review did (delete what it created, put back what it changed), release
    /// nothing, and disable SCIM for the tenant (its tokens stop working).
    Discard {
        /// Tenant id.
        tenant: String,
        /// Confirm: the identity provider's ids of what it created then answer 404.
        #[arg(long)]
        yes: bool,
    },
}

async fn require_tenant(store: &dyn Store, tenant: &str) -> Result<TenantSettings> {
    store
        .get_tenant(tenant)
        .await?
        .map(|t| t.settings)
        .ok_or_else(|| anyhow!("no tenant \"{tenant}\""))
}

/// Runs `roster users …`.
pub async fn users(store: Arc<dyn Store>, cmd: UsersCommand) -> Result<()> {
    match cmd {
        UsersCommand::Import {
            tenant,
            file,
            format,
            json: json_out,
        } => {
            require_tenant(store.as_ref(), &tenant).await?;
            let format = match format.as_deref() {
                Some("csv") => import::Format::Csv,
                Some(_) => import::Format::Jsonl,
                None => import::Format::of_path(&file).ok_or_else(|| {
                    anyhow!("cannot tell the format of {file:?}; pass --format csv|jsonl")
                })?,
            };
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?
            };
            let lines = import::parse(format, &text).map_err(|m| anyhow!("{file}: {m}"))?;
            let bar = indicatif::ProgressBar::new(lines.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} importing [{bar:40}] {pos}/{len} users ({eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let summary = import::run(store.as_ref(), &tenant, lines, SystemClock.now(), |n| {
                bar.set_position(n as u64);
            })
            .await;
            bar.finish_and_clear();
            let summary = match summary {
                Ok(s) => s,
                Err(StoreError::NotFound) => bail!("no tenant \"{tenant}\""),
                Err(e) => return Err(e.into()),
            };
            audit(
                store.as_ref(),
                "users.import",
                Some(&tenant),
                None,
                json!({
                    "file": file,
                    "imported": summary.imported,
                    "skipped": summary.skipped.len(),
                    "errors": summary.errors.len(),
                }),
            )
            .await;
            if json_out {
                out!("{}", summary.to_json());
            } else {
                out!(
                    "imported {} users, skipped {}, {} lines with errors",
                    summary.imported,
                    summary.skipped.len(),
                    summary.errors.len()
                );
                for (line, why) in summary.skipped.iter().take(LISTED) {
                    out!("  line {line}: skipped: {why}");
                }
                if summary.skipped.len() > LISTED {
                    out!(
                        "  … and {} more skipped (--json lists them all)",
                        summary.skipped.len() - LISTED
                    );
                }
                for (line, m) in summary.errors.iter().take(LISTED) {
                    out!("  line {line}: error: {m}");
                }
                if summary.errors.len() > LISTED {
                    out!(
                        "  … and {} more errors (--json lists them all)",
                        summary.errors.len() - LISTED
                    );
                }
            }
        }
        UsersCommand::Erase {
            tenant,
            id,
            yes,
            json: json_out,
        } => {
            require_tenant(store.as_ref(), &tenant).await?;
            if !yes {
                bail!(
                    "erasing user \"{id}\" of \"{tenant}\" removes its personal data for good; \
                     run again with --yes to do it"
                );
            }
            let state = AppState::new(store.clone(), Settings::default());
            let v = users::erase_personal_data(&state, &cli_actor(), &tenant, &id)
                .await
                .map_err(anyhow::Error::from)?;
            if json_out {
                out!("{v}");
            } else {
                out!(
                    "erased user \"{id}\" of \"{tenant}\": record {}, {} events and {} \
                     provisioning-log rows rewritten without personal data",
                    if v["record_erased"] == json!(true) {
                        "removed"
                    } else {
                        "already gone"
                    },
                    v["events_rewritten"],
                    v["log_rows_rewritten"]
                );
            }
        }
    }
    Ok(())
}

fn print_status(v: &Value) {
    let s = |p: &str| {
        v.pointer(p)
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Null => "-".to_owned(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "-".to_owned())
    };
    out!("tenant:        {}", s("/tenant"));
    out!(
        "state:         {}{}",
        s("/state"),
        if v["enabled"] == json!(false) {
            " (guard disabled by the tenant's settings)"
        } else {
            ""
        }
    );
    out!(
        "settings:      more than {}% and more than {} users within {} minutes",
        s("/settings/max_percent"),
        s("/settings/min_count"),
        s("/settings/window_minutes")
    );
    out!(
        "window:        {} counted since {} (threshold {} of {} active users)",
        s("/window/count"),
        s("/window/started_at"),
        s("/window/threshold"),
        s("/window/active_users")
    );
    out!("tripped at:    {}", s("/tripped_at"));
    out!(
        "decided:       {} by {}",
        s("/decided_at"),
        s("/decided_by")
    );
    out!("until:         {}", s("/until"));
    out!("held:          {}", s("/held/count"));
    if let Some(ops) = v.pointer("/held/operations").and_then(Value::as_array) {
        for o in ops {
            out!(
                "  {:<10} {:<38} {} ({} attempts)",
                o["operation"].as_str().unwrap_or(""),
                o["user_id"].as_str().unwrap_or(""),
                o["user_name"].as_str().unwrap_or(""),
                o["attempts"]
            );
        }
    }
}

/// Runs `roster guard …`.
pub async fn guard(store: Arc<dyn Store>, cmd: GuardCommand) -> Result<()> {
    let state = AppState::new(store.clone(), Settings::default());
    match cmd {
        GuardCommand::Status { tenant, json } => {
            require_tenant(store.as_ref(), &tenant).await?;
            let s = store.guard_status(&tenant, SystemClock.now()).await?;
            let v = admin::guard::status_json(&tenant, &s);
            if json {
                out!("{v}");
            } else {
                print_status(&v);
            }
        }
        GuardCommand::Confirm { tenant } => {
            let s = guard::decide(&state, &tenant, GuardDecision::Confirm, &cli_actor())
                .await
                .map_err(anyhow::Error::from)?;
            out!(
                "confirmed: the held deactivations may proceed when the identity provider \
                 retries them; the guard re-arms after {} quiet minutes",
                s.settings.window_minutes
            );
        }
        GuardCommand::Reject { tenant } => {
            let s = guard::decide(&state, &tenant, GuardDecision::Reject, &cli_actor())
                .await
                .map_err(anyhow::Error::from)?;
            out!(
                "rejected: {} held deactivations stay refused; the guard re-arms after the \
                 identity provider has sent none for {} minutes",
                s.held_count,
                s.settings.window_minutes
            );
        }
    }
    Ok(())
}

/// Runs `roster roles …`.
///
/// # Errors
/// A refused name or description, an unknown role, or the database.
pub async fn roles(store: Arc<dyn Store>, cmd: RolesCommand) -> Result<()> {
    let state = AppState::new(store, Settings::default());
    match cmd {
        RolesCommand::List { json } => {
            let all = roster_server::ops::roles::catalogue(&state)
                .await
                .map_err(anyhow::Error::from)?;
            if json {
                let v: Vec<Value> = all
                    .iter()
                    .map(roster_server::ops::roles::catalogue_json)
                    .collect();
                out!("{}", json!({ "roles": v }));
            } else if all.is_empty() {
                out!("the role catalogue is empty: any role name is accepted");
            } else {
                for r in &all {
                    match &r.description {
                        Some(d) => out!("{}\t{d}", r.name),
                        None => out!("{}", r.name),
                    }
                }
            }
        }
        RolesCommand::Add { name, description } => {
            let (_, created) = roster_server::ops::roles::declare(
                &state,
                &cli_actor(),
                &name,
                description.as_deref(),
            )
            .await
            .map_err(anyhow::Error::from)?;
            if created {
                out!("added the role {name}");
            } else {
                out!("the role {name} was declared already: its description is replaced");
            }
        }
        RolesCommand::Remove { name } => {
            roster_server::ops::roles::undeclare(&state, &cli_actor(), &name)
                .await
                .map_err(anyhow::Error::from)?;
            out!("removed the role {name} from the catalogue (mappings and users keep it)");
        }
    }
    Ok(())
}

/// The summary's non-zero counts as `what: n` lines.
fn print_review(v: &Value) {
    if v["open"] != json!(true) {
        out!(
            "{}: no first-sync review is open",
            v["tenant"].as_str().unwrap_or("")
        );
        return;
    }
    out!(
        "{}: first-sync review open, {} events held{}",
        v["tenant"].as_str().unwrap_or(""),
        v["held_events"],
        v["held_since"]
            .as_str()
            .map(|t| format!(" since {t}"))
            .unwrap_or_default()
    );
    if let Some(m) = v["summary"].as_object() {
        for (k, n) in m {
            match n {
                Value::Number(n) if n.as_u64() != Some(0) => out!("  {k}: {n}"),
                Value::Object(roles) => {
                    for (role, n) in roles {
                        out!("  role {role}: {n} users gain it");
                    }
                }
                _ => {}
            }
        }
    }
    out!("users ({} in all):", v["users_total"]);
    for u in v["users"].as_array().into_iter().flatten() {
        let list = |k: &str| {
            u[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        out!(
            "  {}\t{}\t{}\t+[{}] -[{}]",
            u["id"].as_str().unwrap_or(""),
            u["user_name"].as_str().unwrap_or("-"),
            list("actions"),
            list("roles_granted"),
            list("roles_lost")
        );
    }
    if let Some(next) = v["next_after"].as_str() {
        out!("more: --after {next}");
    }
}

/// Runs `roster first-sync …`.
pub async fn first_sync(store: Arc<dyn Store>, cmd: FirstSyncCommand) -> Result<()> {
    let state = AppState::new(store.clone(), Settings::default());
    let decide = |tenant: String, d: first_sync::Decision| {
        let state = state.clone();
        async move {
            first_sync::decide(&state, &tenant, d, &cli_actor())
                .await
                .map_err(anyhow::Error::from)
        }
    };
    match cmd {
        FirstSyncCommand::Status {
            tenant,
            after,
            limit,
            json,
        } => {
            require_tenant(store.as_ref(), &tenant).await?;
            let s = store
                .review_status(&tenant, after.as_deref(), limit)
                .await?;
            let v = admin::first_sync::status_json(&tenant, s.as_ref());
            if json {
                out!("{v}");
            } else {
                print_review(&v);
            }
        }
        FirstSyncCommand::Approve { tenant } => {
            let o = decide(tenant, first_sync::Decision::Approve).await?;
            out!(
                "approved: {} held events delivered to the app, in order",
                o.released
            );
        }
        FirstSyncCommand::Discard { tenant, yes } => {
            if !yes {
                bail!(
                    "discarding deletes what the first sync created, puts back what it changed \
                     and disables SCIM for {tenant} (its tokens stop working); run again with \
                     --yes"
                );
            }
            let o = decide(tenant, first_sync::Decision::Discard).await?;
            out!(
                "discarded: {} created resources deleted, {} restored, {} held events dropped; \
                 SCIM is disabled",
                o.deleted,
                o.restored,
                o.dropped
            );
        }
    }
    Ok(())
}

/// Merges a JSON object into a tenant's settings (hidden: a stop-gap for tests and operators
/// until the tenants API of issue 4 owns settings).
pub async fn set_settings(store: Arc<dyn Store>, tenant: &str, patch: &str) -> Result<()> {
    let current = require_tenant(store.as_ref(), tenant).await?;
    let patch: Value = serde_json::from_str(patch).context("the settings must be JSON")?;
    let Value::Object(patch) = patch else {
        bail!("the settings must be a JSON object");
    };
    let mut merged = serde_json::to_value(&current)?;
    for (k, v) in patch {
        match (merged.get_mut(&k), v) {
            (Some(Value::Object(cur)), Value::Object(new)) => cur.extend(new),
            (_, v) => {
                merged[&k] = v;
            }
        }
    }
    let settings: TenantSettings =
        serde_json::from_value(merged).context("invalid tenant settings")?;
    match store.put_tenant_settings(tenant, &settings).await {
        Ok(()) => {}
        Err(StoreError::EmailDuplicates(d)) => {
            bail!(
                "{}",
                roster_server::ops::error::email_duplicates_message(&d)
            )
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        store.as_ref(),
        "tenant.settings",
        Some(tenant),
        Some(tenant),
        serde_json::to_value(&settings)?,
    )
    .await;
    out!("{}", serde_json::to_value(&settings)?);
    Ok(())
}
