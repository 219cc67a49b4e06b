//! Operator commands: admin keys, webhooks, the provisioning log and the event feed.
//!
//! Like the tenant and token commands, they open the database directly, so they work beside a
//! running server; the server's webhook worker notices changes within its poll interval.
//! Every administrative change is recorded in the audit log as `cli:<os user>`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use roster_server::admin::{logs, webhooks};
use roster_server::ops::keys;
use roster_server::secretbox::KeyRing;
use roster_server::{Clock, SystemClock};
use roster_store::{LogQuery, Outcome, ReadQuery, Store, StoreError};
use serde_json::json;

/// How often `--follow` reads the database again.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// `roster admin-key …`
#[derive(Subcommand, Debug)]
pub enum AdminKeyCommand {
    /// Create an operator API key for the admin API and print it (shown once).
    Create {
        /// A label for the key.
        #[arg(long)]
        name: Option<String>,
        /// Days until the key stops working (0–3650; 0 = at once, for tests); announced in the
        /// audit log and the server log 14 days before [default: never].
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=3650))]
        expires_in_days: Option<u32>,
        /// Limit the key to these scopes (repeat or comma-separate): login-decision,
        /// events:read, users:read, users:write, tenants:admin, metrics:read [default: every
        /// scope; only such a key signs in to the console].
        #[arg(long = "scope", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Print one JSON object `{"key": …, "prefix": …, "expires_at": …, "scopes": …}`.
        #[arg(long)]
        json: bool,
    },
    /// List admin keys (prefix, created, last used; never the key).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an admin key by its prefix.
    Revoke {
        /// The key's prefix (`rsak_XXXXXXXX`).
        prefix: String,
    },
}

/// `roster webhook …`
#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Add a webhook endpoint and print its signing secret (shown once).
    Add {
        /// Where events are POSTed.
        url: String,
        /// Only this tenant's events (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Only these event types, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// A label.
        #[arg(long)]
        description: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List webhooks and the state of their delivery streams.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new signing secret; the old one keeps signing for 24 hours.
    RotateSecret {
        /// Webhook id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Resume a parked or failing stream now, optionally from a given seq.
    Redeliver {
        /// Webhook id.
        id: String,
        /// Only this tenant's stream (default: all of the webhook's streams).
        #[arg(long)]
        tenant: Option<String>,
        /// Re-send events from this seq on (1 or more).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        from_seq: Option<i64>,
    },
    /// Remove a webhook.
    Remove {
        /// Webhook id.
        id: String,
    },
}

/// Who the audit log says acted: `cli:<os user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn fmt(t: time::OffsetDateTime) -> String {
    roster_server::ops::fmt_time(t)
}

/// Records an action of the command line in the audit log.
pub async fn audit(
    store: &dyn Store,
    action: &str,
    tenant: Option<&str>,
    target: Option<&str>,
    details: serde_json::Value,
) {
    roster_server::ops::audit(
        store,
        SystemClock.now(),
        &cli_actor(),
        action,
        tenant,
        target,
        details,
    )
    .await;
}

/// Runs `roster admin-key …`.
pub async fn admin_key(store: Arc<dyn Store>, cmd: AdminKeyCommand) -> Result<()> {
    match cmd {
        AdminKeyCommand::Create {
            name,
            expires_in_days,
            scopes,
            json,
        } => {
            keys::check_scopes(&scopes).map_err(|e| anyhow::anyhow!(e))?;
            let now = SystemClock.now();
            // At most 3650 days (clap checked): no overflow.
            let expires_at = expires_in_days.map(|d| now + time::Duration::days(i64::from(d)));
            let scopes = (!scopes.is_empty()).then(|| {
                let mut s = scopes;
                s.sort();
                s.dedup();
                s
            });
            let issued = keys::issue_limited(name.clone(), now, expires_at, scopes.clone());
            store.insert_admin_key(&issued.record).await?;
            let expires = expires_at.map(fmt);
            audit(
                store.as_ref(),
                "admin_key.create",
                None,
                Some(&issued.record.prefix),
                json!({"name": name, "expires_at": expires, "scopes": scopes}),
            )
            .await;
            if json {
                println!(
                    "{}",
                    json!({"key": issued.secret, "prefix": issued.record.prefix,
                           "expires_at": expires, "scopes": scopes})
                );
            } else {
                println!("admin key: {}", issued.secret);
                println!("prefix:    {}", issued.record.prefix);
                println!("expires:   {}", expires.as_deref().unwrap_or("never"));
                println!(
                    "scopes:    {}",
                    scopes.map_or_else(|| "all".to_owned(), |s| s.join(", "))
                );
                println!("The key is shown only once: store it in your secret manager now.");
            }
        }
        AdminKeyCommand::List { json } => {
            let list = store.list_admin_keys().await?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|k| {
                        json!({
                            "prefix": k.prefix,
                            "name": k.name,
                            "created_at": fmt(k.created_at),
                            "last_used_at": k.last_used_at.map(fmt),
                            "revoked_at": k.revoked_at.map(fmt),
                            "expires_at": k.expires_at.map(fmt),
                            "scopes": k.scopes,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!(
                    "{:<14} {:<26} {:<26} {:<26} {:<8} {:<24} NAME",
                    "PREFIX", "CREATED", "LAST USED", "EXPIRES", "STATUS", "SCOPES"
                );
                let now = SystemClock.now();
                for k in list {
                    let status = if k.revoked_at.is_some() {
                        "revoked"
                    } else if k.expires_at.is_some_and(|e| e <= now) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<14} {:<26} {:<26} {:<26} {:<8} {:<24} {}",
                        k.prefix,
                        fmt(k.created_at),
                        k.last_used_at.map_or_else(|| "never".to_owned(), fmt),
                        k.expires_at.map_or_else(|| "never".to_owned(), fmt),
                        status,
                        k.scopes.map_or_else(|| "all".to_owned(), |s| s.join(",")),
                        k.name.unwrap_or_default()
                    );
                }
            }
        }
        AdminKeyCommand::Revoke { prefix } => {
            match store.revoke_admin_key(&prefix, SystemClock.now()).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => bail!("no active admin key with prefix \"{prefix}\""),
                Err(e) => return Err(e.into()),
            }
            audit(
                store.as_ref(),
                "admin_key.revoke",
                None,
                Some(&prefix),
                json!({}),
            )
            .await;
            println!("revoked {prefix}");
        }
    }
    Ok(())
}

/// Runs `roster webhook …`; new secrets are sealed with `keys`.
pub async fn webhook(
    store: Arc<dyn Store>,
    keys: &KeyRing,
    cmd: WebhookCommand,
    allow_private: bool,
) -> Result<()> {
    let s = store.as_ref();
    match cmd {
        WebhookCommand::Add {
            url,
            tenant,
            events,
            description,
            json,
        } => {
            let hook = webhooks::create(
                s,
                keys,
                SystemClock.now(),
                webhooks::NewWebhook {
                    url,
                    tenant,
                    event_types: events,
                    description,
                },
                allow_private,
            )
            .await?;
            audit(
                s,
                "webhook.create",
                hook.tenant_id.as_deref(),
                Some(&hook.id),
                json!({"url": hook.url, "event_types": hook.event_types}),
            )
            .await;
            if json {
                let mut v = webhooks::webhook_json(&hook, &[]);
                v["secret"] = json!(hook.secret);
                println!("{v}");
            } else {
                println!("webhook: {}", hook.id);
                println!("secret:  {}", hook.secret);
                println!("The secret is shown only once: configure it in the receiver now.");
            }
        }
        WebhookCommand::List { json } => {
            let hooks = s.list_webhooks().await?;
            let streams = s.list_streams(None).await?;
            if json {
                let v: Vec<_> = hooks
                    .iter()
                    .map(|w| webhooks::webhook_json(w, &streams))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                for w in hooks {
                    println!(
                        "{}  {}  tenant={}  events={}",
                        w.id,
                        w.url,
                        w.tenant_id.as_deref().unwrap_or("*"),
                        if w.event_types.is_empty() {
                            "*".to_owned()
                        } else {
                            w.event_types.join(",")
                        }
                    );
                    for st in streams.iter().filter(|st| st.webhook_id == w.id) {
                        let v = webhooks::stream_json(st);
                        println!(
                            "    {:<20} {:<8} delivered up to seq {}{}",
                            st.tenant_id,
                            v["status"].as_str().unwrap_or(""),
                            st.cursor,
                            st.last_error
                                .as_deref()
                                .filter(|_| st.attempts > 0
                                    || st.state == roster_store::StreamState::Parked)
                                .map(|e| format!(
                                    "; failing since {}: {e}",
                                    st.failing_since.map(fmt).unwrap_or_default()
                                ))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
        WebhookCommand::RotateSecret { id, json } => {
            let (secret, until) = webhooks::rotate(
                s,
                keys,
                SystemClock.now(),
                &id,
                roster_server::webhooks::WebhookSettings::default().rotation_overlap,
            )
            .await?;
            audit(
                s,
                "webhook.rotate_secret",
                None,
                Some(&id),
                json!({"previous_secret_valid_until": fmt(until)}),
            )
            .await;
            if json {
                println!(
                    "{}",
                    json!({"id": id, "secret": secret, "previous_secret_valid_until": fmt(until)})
                );
            } else {
                println!("secret: {secret}");
                println!("The previous secret keeps signing until {}.", fmt(until));
            }
        }
        WebhookCommand::Redeliver {
            id,
            tenant,
            from_seq,
        } => {
            if from_seq.is_some_and(|n| n < 1) {
                bail!("--from-seq must be 1 or more");
            }
            let streams = match s.redeliver(&id, tenant.as_deref(), from_seq).await {
                Err(StoreError::NotFound) => bail!("no webhook \"{id}\""),
                r => r?,
            };
            audit(
                s,
                "webhook.redeliver",
                tenant.as_deref(),
                Some(&id),
                json!({"from_seq": from_seq}),
            )
            .await;
            for st in streams {
                println!(
                    "{}: resumes after seq {} (the running server picks it up within a second)",
                    st.tenant_id, st.cursor
                );
            }
        }
        WebhookCommand::Remove { id } => {
            match s.delete_webhook(&id).await {
                Err(StoreError::NotFound) => bail!("no webhook \"{id}\""),
                r => r?,
            }
            audit(s, "webhook.delete", None, Some(&id), json!({})).await;
            println!("removed {id}");
        }
    }
    Ok(())
}

async fn require_tenant(store: &dyn Store, tenant: &str) -> Result<()> {
    store
        .get_tenant(tenant)
        .await?
        .map(|_| ())
        .ok_or_else(|| anyhow!("no tenant \"{tenant}\""))
}

fn print_entry(e: &roster_store::ProvisioningEntry, json_out: bool) {
    if json_out {
        println!("{}", logs::entry_json(e));
        return;
    }
    let what = e
        .name
        .as_deref()
        .or(e.resource_id.as_deref())
        .unwrap_or("-");
    println!(
        "{} {} {:<6} {} {} ({}) {}ms",
        fmt(e.at),
        e.status,
        e.method,
        e.path,
        what,
        e.idp.as_deref().unwrap_or("-"),
        e.duration_ms
    );
    if e.status >= 400 {
        if let Some(d) = &e.detail {
            println!(
                "    {}{d}",
                e.scim_type
                    .as_deref()
                    .map(|t| format!("{t}: "))
                    .unwrap_or_default()
            );
        }
        if let Some(h) = &e.hint {
            println!("    what to do: {h}");
        }
        if let Some(p) = e.token_prefix.as_ref().filter(|_| e.status == 401) {
            println!(
                "    token prefix {p}, from {}",
                e.source_addr.as_deref().unwrap_or("?")
            );
        }
    }
}

/// Runs `roster log TENANT [--follow] [--failures]`: the latest rows oldest first, then (with
/// `--follow`) new rows as they are written.
pub async fn log(
    store: Arc<dyn Store>,
    tenant: &str,
    follow: bool,
    failures: bool,
    limit: u64,
    json_out: bool,
) -> Result<()> {
    let s = store.as_ref();
    require_tenant(s, tenant).await?;
    let outcome = failures.then_some(Outcome::Failure);
    let mut latest = s
        .list_provisioning(
            tenant,
            &LogQuery {
                outcome,
                limit: limit.max(1),
                ..LogQuery::default()
            },
        )
        .await?;
    latest.reverse();
    let mut last = latest.last().map_or(0, |e| e.id);
    for e in &latest {
        print_entry(e, json_out);
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        let rows = s
            .list_provisioning(
                tenant,
                &LogQuery {
                    outcome,
                    after: Some(last),
                    limit: 1000,
                    ..LogQuery::default()
                },
            )
            .await?;
        for e in &rows {
            print_entry(e, json_out);
            last = e.id;
        }
    }
}

/// Runs `roster log TENANT --reads`: the latest per-minute read counts, oldest first, then the
/// number of log rows dropped (queue full) within the retained period.
pub async fn log_reads(
    store: Arc<dyn Store>,
    tenant: &str,
    limit: u64,
    json_out: bool,
) -> Result<()> {
    let s = store.as_ref();
    require_tenant(s, tenant).await?;
    let mut rows = s
        .list_read_counts(
            tenant,
            &ReadQuery {
                limit: limit.max(1),
                ..ReadQuery::default()
            },
        )
        .await?;
    rows.reverse();
    for r in &rows {
        if json_out {
            println!("{}", logs::read_json(r));
        } else {
            println!(
                "{} {:>6} x {} (last {} at {})",
                fmt(r.minute),
                r.count,
                r.route,
                r.last_status,
                fmt(r.last_at)
            );
        }
    }
    let dropped = s.count_dropped(tenant, None, None).await?;
    if dropped > 0 && !json_out {
        println!(
            "{dropped} request(s) could not be recorded in the provisioning log (its queue \
             stayed full); see the server log's warnings"
        );
    }
    Ok(())
}

/// Runs `roster events TENANT [--after N] [--follow]`: one JSON event per line, as delivered
/// by webhooks and the feed.
pub async fn events(store: Arc<dyn Store>, tenant: &str, after: i64, follow: bool) -> Result<()> {
    let s = store.as_ref();
    require_tenant(s, tenant).await?;
    let mut cursor = after;
    loop {
        let batch = s.list_events(tenant, cursor, &[], 1000).await?;
        for e in &batch {
            println!("{}", roster_server::webhooks::payload(e));
            cursor = e.seq;
        }
        if batch.len() == 1000 {
            continue;
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}
