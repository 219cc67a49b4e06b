//! `roster branding …`: the vendor's branding of the IT admin's console pages (brand name,
//! logo, accent colour), stored in the database so that every `roster serve` on it shows the
//! same; the operations of `GET`/`PUT /api/v1/branding` ([`roster_server::ops::branding`]).

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use roster_server::admin::branding::branding_json;
use roster_server::ops::branding::{self, Branding};
use roster_server::{Clock, SystemClock};
use roster_store::Store;

use crate::ops::cli_actor;

/// Branding commands.
#[derive(Subcommand, Debug)]
pub enum BrandingCommand {
    /// Show the branding.
    Show {
        /// Print JSON (the shape of `GET /api/v1/branding`).
        #[arg(long)]
        json: bool,
    },
    /// Set the brand name and/or the accent colour; what is not given stays.
    Set {
        /// The brand name an IT admin sees ("Acme Cloud"), at most 80 characters.
        #[arg(long)]
        name: Option<String>,
        /// The accent colour, `#rrggbb`.
        #[arg(long)]
        accent: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set the logo from an image file (PNG, JPEG, GIF, WebP or SVG, at most 256 KiB), or
    /// remove it with --remove.
    Logo {
        /// The image file.
        #[arg(required_unless_present = "remove")]
        file: Option<std::path::PathBuf>,
        /// Remove the logo.
        #[arg(long, conflicts_with = "file")]
        remove: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove all branding (name, accent colour and logo).
    Clear,
}

fn print(b: &Branding, json: bool) {
    if json {
        println!("{}", branding_json(b));
        return;
    }
    println!("name:   {}", b.name.as_deref().unwrap_or("(none)"));
    println!("accent: {}", b.accent.as_deref().unwrap_or("(none)"));
    match &b.logo {
        Some(l) => println!(
            "logo:   {}, {} bytes, sha256 {}…",
            l.content_type, l.bytes, l.sha256
        ),
        None => println!("logo:   (none)"),
    }
}

/// Runs `roster branding …`.
pub async fn branding(store: Arc<dyn Store>, cmd: BrandingCommand) -> Result<()> {
    let s = store.as_ref();
    let now = SystemClock.now();
    match cmd {
        BrandingCommand::Show { json } => print(&branding::stored(s).await?, json),
        BrandingCommand::Set { name, accent, json } => {
            if name.is_none() && accent.is_none() {
                bail!("nothing to set: give --name, --accent or both");
            }
            let old = branding::stored(s).await?;
            let name = name.or(old.name);
            let accent = accent.or(old.accent);
            let b = branding::set(s, now, &cli_actor(), name.as_deref(), accent.as_deref()).await?;
            print(&b, json);
        }
        BrandingCommand::Logo { file, remove, json } => {
            let b = match (file, remove) {
                (_, true) => branding::clear_logo(s, now, &cli_actor()).await?,
                (Some(path), false) => {
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    branding::set_logo(s, now, &cli_actor(), &bytes).await?
                }
                (None, false) => bail!("give an image file, or --remove"),
            };
            print(&b, json);
        }
        BrandingCommand::Clear => {
            branding::clear(s, now, &cli_actor()).await?;
            println!("branding removed");
        }
    }
    Ok(())
}
