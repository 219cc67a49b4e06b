//! `roster tenant …`, `roster scim …` and `roster token …`: the tenant lifecycle, SCIM
//! enablement and tokens from the command line.
//!
//! Every command runs the same operation as the admin API (`roster_server::ops::tenants` and
//! `::tokens`) on the database directly, so the rules are the same (at most two live tokens,
//! the tenant's token lifetime, confirmation before disabling) and each change is recorded in
//! the audit log as `cli:<os user>`.

use std::sync::Arc;

use anyhow::{bail, Result};
use clap::Subcommand;
use roster_server::admin;
use roster_server::ops::{self as shared, tenants, tokens};
use roster_server::{Clock, SystemClock};
use roster_store::{Store, TenantDataMode};
use serde_json::{json, Map, Value};

use crate::ops::{audit, cli_actor};

/// The identity providers `--idp` accepts.
const IDPS: [&str; 7] = [
    "okta",
    "entra",
    "onelogin",
    "jumpcloud",
    "google",
    "ping",
    "generic",
];

/// `roster tenant …`
/// What `roster tenant setup-link` does besides creating a link.
#[derive(Subcommand, Debug)]
pub enum SetupLinkAction {
    /// End the tenant's unused setup links (they answer "expired") and sign out every session
    /// opened with one of its links.
    Revoke {
        /// Tenant id.
        tenant: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant and print its SCIM base URL and a new token (shown once).
    Create {
        /// The tenant's name; its id is derived from it (lowercase letters, digits, dashes).
        name: String,
        /// The tenant id (default: derived from the name).
        #[arg(long)]
        id: Option<String>,
        /// The identity provider the tenant uses.
        #[arg(long, default_value = "generic", value_parser = IDPS)]
        idp: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Lifetime of the first token, in days (default: the tenant's `token_ttl_days`, 365);
        /// at most 3650, and 0 issues a token that has already expired (to test a client's
        /// handling).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=3650))]
        expires_in_days: Option<u32>,
        /// Create the tenant with SCIM disabled and no token (`roster scim enable` later).
        #[arg(long)]
        no_scim: bool,
    },
    /// List tenants.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time, time-limited link that opens the web console for this tenant only
    /// (for the customer's IT admin). Shown once. `setup-link revoke TENANT` ends the tenant's
    /// unused links and every session opened with one.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    SetupLink {
        #[command(subcommand)]
        action: Option<SetupLinkAction>,
        /// Tenant id.
        #[arg(required = true)]
        tenant: Option<String>,
        /// Lifetime: `7d`, `12h` or `30m` (at most 90 days).
        #[arg(long, default_value = "7d")]
        expires: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show a tenant: name, identity provider, SCIM base URL and settings.
    Show {
        /// Tenant id.
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a tenant's name or identity provider.
    Update {
        /// Tenant id.
        tenant: String,
        /// The new name.
        #[arg(long)]
        name: Option<String>,
        /// The new identity provider.
        #[arg(long, value_parser = IDPS)]
        idp: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a tenant: every token stops working at once.
    Delete {
        /// Tenant id.
        tenant: String,
        /// `retain` keeps its users, groups, events and logs (for audit; the id stays
        /// reserved), `erase` removes them. Erasing also works on a tenant deleted earlier with
        /// `retain`.
        #[arg(long, value_parser = ["retain", "erase"])]
        data: String,
        /// Confirm: the tenant's identity provider can no longer sync.
        #[arg(long)]
        yes: bool,
    },
    /// Show a tenant's settings, or change them with `--set KEY=VALUE`.
    Settings {
        /// Tenant id.
        tenant: String,
        /// Set a setting; KEY may be dotted (`deprovision_guard.max_percent=30`), VALUE is JSON
        /// (`false`, `30`, `"erase"`) or else a string (`erase`); `null` restores the default.
        /// Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a tenant's custom schema extensions (its host app's own attributes, such as
    /// `costCenter`), or replace them all from a JSON file (`-` for standard input): the body
    /// of `PUT /api/v1/tenants/{tenant}/custom-schemas`, `{"schemas": [...]}`.
    #[command(name = "custom-schemas")]
    CustomSchemas {
        /// Tenant id.
        tenant: String,
        /// Replace the declarations with those in FILE.
        #[arg(long, value_name = "FILE", conflicts_with = "clear")]
        set: Option<std::path::PathBuf>,
        /// Remove every declaration (refused while attributes hold values, unless forced).
        #[arg(long)]
        clear: bool,
        /// Make the change even when removed or retyped attributes hold values: those values
        /// are converted to the new type where they keep their meaning, and erased otherwise.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Reads `{"schemas": [...]}` from `path` (`-`: standard input).
fn read_declarations(path: &std::path::Path) -> Result<Vec<scim_proto::custom::CustomSchema>> {
    use anyhow::Context as _;
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let body: roster_server::ops::custom_schemas::Declarations = serde_json::from_str(&text)
        .with_context(|| format!("{} is not {{\"schemas\": [...]}}", path.display()))?;
    Ok(body.schemas)
}

/// `roster scim …`
#[derive(Subcommand, Debug)]
pub enum ScimCommand {
    /// Enable SCIM for a tenant and print its SCIM base URL and a new token (shown once).
    Enable {
        /// Tenant id.
        tenant: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Lifetime of the token, in days (default: the tenant's `token_ttl_days`); at most
        /// 3650, and 0 issues a token that has already expired (to test a client's handling).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=3650))]
        expires_in_days: Option<u32>,
    },
    /// Disable SCIM for a tenant: every token stops working at once.
    Disable {
        /// Tenant id.
        tenant: String,
        /// Confirm: the identity provider's syncs fail until SCIM is enabled again.
        #[arg(long)]
        yes: bool,
    },
}

/// `roster token …`
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// List a tenant's tokens (prefix, created, expires, last used; never the secret).
    List {
        /// Tenant id.
        tenant: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue an additional token (a tenant has at most two live tokens), shown once.
    Create {
        /// Tenant id.
        tenant: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Lifetime of the new token, in days (default: the tenant's `token_ttl_days`); at most
        /// 3650, and 0 issues a token that has already expired (to test a client's handling).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=3650))]
        expires_in_days: Option<u32>,
    },
    /// Issue a new token and revoke the old one(s) at once: every live token of the tenant, or
    /// only `--prefix`.
    Rotate {
        /// Tenant id.
        tenant: String,
        /// Replace only this token (default: every live token).
        #[arg(long)]
        prefix: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Lifetime of the new token, in days (default: the tenant's `token_ttl_days`); at most
        /// 3650, and 0 issues a token that has already expired (to test a client's handling).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=3650))]
        expires_in_days: Option<u32>,
    },
    /// Revoke one token by its prefix.
    Revoke {
        /// Tenant id.
        tenant: String,
        /// The token's prefix, as shown by `roster token list`.
        prefix: String,
    },
}

fn fmt(t: time::OffsetDateTime) -> String {
    shared::fmt_time(t)
}

fn base_url(origin: &str, tenant: &str) -> String {
    format!("{origin}/scim/v2/{tenant}")
}

fn print_token(json_out: bool, origin: &str, issued: &tokens::IssuedToken) {
    let tenant = &issued.record.tenant_id;
    let base = base_url(origin, tenant);
    let expires = fmt(issued.record.expires_at);
    if json_out {
        println!(
            "{}",
            json!({
                "tenant": tenant,
                "scim_base_url": base,
                "token": issued.secret,
                "expires_at": expires,
            })
        );
    } else {
        println!("tenant:        {tenant}");
        println!("SCIM base URL: {base}");
        println!("token:         {}", issued.secret);
        println!("expires at:    {expires}");
        println!("The token is shown only once: store it in your identity provider now.");
    }
}

fn print_tenant(json_out: bool, origin: &str, t: &roster_store::Tenant) {
    if json_out {
        println!(
            "{}",
            admin::tenants::tenant_json(t, &base_url(origin, &t.id))
        );
    } else {
        println!("id:            {}", t.id);
        println!("name:          {}", t.name);
        println!("idp:           {}", t.idp);
        println!("created at:    {}", fmt(t.created_at));
        println!("SCIM base URL: {}", base_url(origin, &t.id));
        println!("settings:");
        print_settings(t);
    }
}

fn print_settings(t: &roster_store::Tenant) {
    if let Value::Object(m) = admin::tenants::settings_json(t) {
        for (k, v) in m {
            println!("  {k}: {v}");
        }
    }
}

/// Turns `--set KEY=VALUE` arguments into one merge patch.
fn settings_patch(sets: &[String]) -> Result<Value> {
    let mut patch = Value::Object(Map::new());
    for s in sets {
        let Some((key, raw)) = s.split_once('=') else {
            bail!("--set takes KEY=VALUE, not {s:?}");
        };
        let value: Value =
            serde_json::from_str(raw.trim()).unwrap_or_else(|_| Value::String(raw.to_owned()));
        let mut one = value;
        for part in key.trim().rsplit('.') {
            if part.is_empty() {
                bail!("--set: empty name in key {key:?}");
            }
            let mut m = Map::new();
            m.insert(part.to_owned(), one);
            one = Value::Object(m);
        }
        // Several --set of one object (guard.a=1, guard.b=2) merge; null still resets.
        merge_keep_null(&mut patch, one);
    }
    Ok(patch)
}

fn merge_keep_null(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_keep_null(existing, v);
                    }
                    _ => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

/// Runs `roster tenant …`.
pub async fn tenant(store: Arc<dyn Store>, origin: &str, cmd: TenantCommand) -> Result<()> {
    let s = store.as_ref();
    let now = SystemClock.now();
    match cmd {
        TenantCommand::Create {
            name,
            id,
            idp,
            json,
            expires_in_days,
            no_scim,
        } => {
            let req = tenants::NewTenant {
                name,
                id,
                idp: Some(idp),
                settings: None,
                enable_scim: !no_scim,
            };
            let (t, issued) = tenants::create(s, now, &cli_actor(), req, expires_in_days).await?;
            match issued {
                Some(i) => print_token(json, origin, &i),
                None => print_tenant(json, origin, &t),
            }
        }
        TenantCommand::SetupLink {
            action: Some(SetupLinkAction::Revoke { tenant, json }),
            ..
        } => {
            let (links, sessions) =
                shared::setup_links::revoke(s, now, &tenant, &cli_actor()).await?;
            if json {
                println!(
                    "{}",
                    json!({"tenant": tenant, "links_revoked": links, "sessions_ended": sessions})
                );
            } else {
                println!("{links} unused setup link(s) revoked, {sessions} session(s) ended for {tenant}");
            }
        }
        TenantCommand::SetupLink { tenant: None, .. } => {
            bail!("name the tenant: roster tenant setup-link TENANT")
        }
        TenantCommand::SetupLink {
            tenant: Some(tenant),
            expires,
            json,
            ..
        } => {
            let ttl = shared::setup_links::parse_ttl(&expires).map_err(|e| anyhow::anyhow!(e))?;
            let (token, expires_at) =
                shared::setup_links::create_setup_link(s, now, &tenant, ttl, "cli", &cli_actor())
                    .await?;
            let at = shared::fmt_time(expires_at);
            let url = shared::setup_links::setup_url(origin, &token);
            if json {
                println!(
                    "{}",
                    json!({"tenant": tenant, "url": url, "expires_at": at})
                );
            } else {
                println!("setup link: {url}");
                println!("expires:    {at}");
                println!(
                    "The link works once and is shown only once: send it to the tenant's IT admin."
                );
            }
        }
        TenantCommand::List { json } => {
            let list = s.list_tenants().await?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id,
                            "name": t.name,
                            "idp": t.idp,
                            "created_at": fmt(t.created_at),
                            "scim_enabled": t.settings.scim_enabled,
                        })
                    })
                    .collect();
                println!("{}", Value::Array(v));
            } else {
                println!(
                    "{:<24} {:<10} {:<6} {:<26} NAME",
                    "ID", "IDP", "SCIM", "CREATED"
                );
                for t in list {
                    println!(
                        "{:<24} {:<10} {:<6} {:<26} {}",
                        t.id,
                        t.idp,
                        if t.settings.scim_enabled { "on" } else { "off" },
                        fmt(t.created_at),
                        t.name
                    );
                }
            }
        }
        TenantCommand::Show { tenant, json } => {
            let t = shared::live_tenant(s, &tenant).await?;
            print_tenant(json, origin, &t);
        }
        TenantCommand::Update {
            tenant,
            name,
            idp,
            json,
        } => {
            if name.is_none() && idp.is_none() {
                bail!("nothing to change: give --name and/or --idp");
            }
            let req = tenants::TenantUpdate {
                name,
                idp,
                settings: None,
            };
            let t = tenants::update(s, now, &cli_actor(), &tenant, req).await?;
            print_tenant(json, origin, &t);
        }
        TenantCommand::Delete { tenant, data, yes } => {
            let mode = admin::tenants::data_mode(Some(&data))?;
            if !yes {
                bail!(
                    "deleting tenant \"{tenant}\" stops every one of its tokens at once{}; \
                     run again with --yes to confirm",
                    if mode == TenantDataMode::Erase {
                        " and erases its users, groups, events and logs"
                    } else {
                        ""
                    }
                );
            }
            tenants::delete(s, now, &tenant, mode, &cli_actor()).await?;
            println!("deleted tenant {tenant} (data: {data})");
        }
        TenantCommand::Settings { tenant, set, json } => {
            let t = if set.is_empty() {
                shared::live_tenant(s, &tenant).await?
            } else {
                let patch = settings_patch(&set)?;
                let req = tenants::TenantUpdate {
                    settings: Some(patch.clone()),
                    ..tenants::TenantUpdate::default()
                };
                let t = tenants::update(s, now, &cli_actor(), &tenant, req).await?;
                t
            };
            if json {
                println!("{}", admin::tenants::settings_json(&t));
            } else {
                print_settings(&t);
            }
        }
        TenantCommand::CustomSchemas {
            tenant,
            set,
            clear,
            force,
            json,
        } => {
            let new = match (&set, clear) {
                (Some(path), _) => Some(read_declarations(path)?),
                (None, true) => Some(Vec::new()),
                (None, false) => None,
            };
            let t = match new {
                None => shared::live_tenant(s, &tenant).await?,
                Some(schemas) => {
                    let now = SystemClock.now();
                    let (t, lost) = roster_server::ops::custom_schemas::replace(
                        s,
                        &tenant,
                        schemas.clone(),
                        force,
                        now,
                    )
                    .await?;
                    let values = admin::custom_schemas::values_json(&lost);
                    audit(
                        s,
                        "tenant.custom_schemas",
                        Some(&tenant),
                        Some(&tenant),
                        json!({"schemas": schemas, "force": force, "values": values}),
                    )
                    .await;
                    for l in &lost {
                        eprintln!(
                            "{}:{} {}: {} resources, {} values converted, {} erased",
                            l.urn, l.attribute, l.change, l.resources, l.converted, l.erased
                        );
                    }
                    t
                }
            };
            let declared = &t.settings.custom_schemas;
            let indexes = admin::custom_schemas::indexes_json(s, &tenant).await?;
            if json {
                println!("{}", json!({"schemas": declared, "indexes": indexes}));
            } else {
                print_schemas(&tenant, declared);
                for ix in indexes.as_array().into_iter().flatten() {
                    println!(
                        "index of {}:{}: {}{}",
                        ix["schema"].as_str().unwrap_or_default(),
                        ix["attribute"].as_str().unwrap_or_default(),
                        ix["state"].as_str().unwrap_or_default(),
                        match ix["failed_values"].as_i64() {
                            Some(n) if n > 0 => format!(" ({n} values too long to index)"),
                            _ => String::new(),
                        }
                    );
                }
            }
        }
    }
    Ok(())
}

/// Prints declarations as `URN (resource)` lines with their attributes.
fn print_schemas(scope: &str, declared: &[scim_proto::custom::CustomSchema]) {
    if declared.is_empty() {
        println!("{scope}: no custom schemas");
    }
    for sc in declared {
        println!("{} ({:?})", sc.urn, sc.resource);
        for a in &sc.attributes {
            println!(
                "  {}: {}{}{}",
                a.name,
                a.attr_type.attr_type().as_str(),
                if a.multi_valued {
                    " (multi-valued)"
                } else {
                    ""
                },
                if a.indexed { " (indexed)" } else { "" }
            );
        }
    }
}

/// Runs `roster custom-schemas`: shows or replaces the custom schemas declared for every
/// tenant (`PUT /api/v1/custom-schemas`).
pub async fn global_custom_schemas(
    store: Arc<dyn Store>,
    set: Option<std::path::PathBuf>,
    clear: bool,
    force: bool,
    json: bool,
) -> Result<()> {
    let s = store.as_ref();
    let new = match (&set, clear) {
        (Some(path), _) => Some(read_declarations(path)?),
        (None, true) => Some(Vec::new()),
        (None, false) => None,
    };
    if let Some(schemas) = new {
        let now = SystemClock.now();
        let lost =
            roster_server::ops::custom_schemas::replace_global(s, schemas.clone(), force, now)
                .await?;
        let values = admin::custom_schemas::values_json(&lost);
        audit(
            s,
            "custom_schemas",
            None,
            None,
            json!({"schemas": schemas, "force": force, "values": values}),
        )
        .await;
        for l in &lost {
            eprintln!(
                "{}: {}:{} {}: {} resources, {} values converted, {} erased",
                l.tenant, l.urn, l.attribute, l.change, l.resources, l.converted, l.erased
            );
        }
    }
    let declared = roster_store::global_custom_schemas();
    if json {
        println!("{}", json!({"schemas": *declared}));
    } else {
        print_schemas("every tenant", &declared);
    }
    Ok(())
}

/// Runs `roster scim …`.
pub async fn scim(store: Arc<dyn Store>, origin: &str, cmd: ScimCommand) -> Result<()> {
    let s = store.as_ref();
    let now = SystemClock.now();
    match cmd {
        ScimCommand::Enable {
            tenant,
            json,
            expires_in_days,
        } => {
            let issued =
                tenants::enable_scim(s, now, &tenant, expires_in_days, &cli_actor()).await?;
            print_token(json, origin, &issued);
        }
        ScimCommand::Disable { tenant, yes } => {
            shared::live_tenant(s, &tenant).await?;
            if !yes {
                bail!(
                    "disabling SCIM for \"{tenant}\" stops every one of its tokens at once and \
                     the identity provider's syncs fail until SCIM is enabled again; run again \
                     with --yes to confirm"
                );
            }
            let revoked = tenants::disable_scim(s, now, &tenant, &cli_actor()).await?;
            println!(
                "SCIM disabled for {tenant}; revoked {} token(s){}",
                revoked.len(),
                if revoked.is_empty() {
                    String::new()
                } else {
                    format!(": {}", revoked.join(", "))
                }
            );
        }
    }
    Ok(())
}

/// Runs `roster token …`.
pub async fn token(store: Arc<dyn Store>, origin: &str, cmd: TokenCommand) -> Result<()> {
    let s = store.as_ref();
    let now = SystemClock.now();
    match cmd {
        TokenCommand::List { tenant, json } => {
            let list = tokens::list(s, &tenant).await?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|t| admin::tokens::token_json(t, now))
                    .collect();
                println!("{}", Value::Array(v));
            } else {
                println!(
                    "{:<14} {:<26} {:<26} {:<26} STATUS",
                    "PREFIX", "CREATED", "EXPIRES", "LAST USED"
                );
                for t in list {
                    println!(
                        "{:<14} {:<26} {:<26} {:<26} {}",
                        t.prefix,
                        fmt(t.created_at),
                        fmt(t.expires_at),
                        t.last_used_at.map_or_else(|| "never".to_owned(), fmt),
                        tokens::status(&t, now),
                    );
                }
            }
        }
        TokenCommand::Create {
            tenant,
            json,
            expires_in_days,
        } => {
            let issued = tokens::create(s, now, &tenant, expires_in_days, &cli_actor()).await?;
            print_token(json, origin, &issued);
        }
        TokenCommand::Rotate {
            tenant,
            prefix,
            json,
            expires_in_days,
        } => {
            let (issued, _revoked) = tokens::rotate(
                s,
                now,
                &tenant,
                prefix.as_deref(),
                expires_in_days,
                &cli_actor(),
            )
            .await?;
            print_token(json, origin, &issued);
        }
        TokenCommand::Revoke { tenant, prefix } => {
            tokens::revoke(s, now, &tenant, &prefix, &cli_actor()).await?;
            println!("revoked {prefix}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_arguments_become_one_merge_patch() {
        let p = settings_patch(&[
            "groups_enabled=false".into(),
            "deprovision_on_delete=erase".into(),
            "deprovision_guard.max_percent=30".into(),
            "deprovision_guard.min_count=5".into(),
            "idp=\"okta\"".into(),
            "welcome_email=null".into(),
        ])
        .unwrap();
        assert_eq!(
            p,
            json!({
                "groups_enabled": false,
                "deprovision_on_delete": "erase",
                "deprovision_guard": {"max_percent": 30, "min_count": 5},
                "idp": "okta",
                "welcome_email": null,
            })
        );
        assert!(settings_patch(&["novalue".into()]).is_err());
        assert!(settings_patch(&["a..b=1".into()]).is_err());
    }
}
