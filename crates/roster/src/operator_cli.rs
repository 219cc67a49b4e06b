//! `roster operator …`: the accounts operators sign in to the web console with.

use std::io::BufRead;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use roster_server::ops::operators;
use roster_server::{Clock, SystemClock};
use roster_store::Store;
use serde_json::json;

use crate::ops::audit;

/// Operator account commands.
#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Create an operator account. Without --password-stdin a random password is generated
    /// and printed once.
    Add {
        /// The operator's email (the sign-in name).
        email: String,
        /// Read the password from the first line of standard input (at least 12 characters).
        #[arg(long)]
        password_stdin: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List operator accounts (never their passwords).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a new password; the operator's console sessions end at once.
    SetPassword {
        /// The operator's email.
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove an operator account; its console sessions end at once.
    Remove {
        /// The operator's email.
        email: String,
    },
}

/// The password from stdin, or a generated one (and whether it was generated).
fn password(from_stdin: bool) -> Result<(String, bool)> {
    if !from_stdin {
        return Ok((operators::generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        bail!("no password on standard input");
    }
    Ok((p, false))
}

fn print_password(json: bool, email: &str, password: &str, generated: bool) {
    if json {
        let mut v = json!({"email": email});
        if generated {
            v["password"] = json!(password);
        }
        println!("{v}");
    } else if generated {
        println!("operator: {email}");
        println!("password: {password}");
        println!("The password is shown only once. Sign in at /console/sign-in.");
    } else {
        println!("operator: {email}");
    }
}

/// Runs `roster operator …`.
pub async fn operator(store: Arc<dyn Store>, cmd: OperatorCommand) -> Result<()> {
    let s = store.as_ref();
    match cmd {
        OperatorCommand::Add {
            email,
            password_stdin,
            json,
        } => {
            let (pw, generated) = password(password_stdin)?;
            let op = operators::add(s, SystemClock.now(), &email, &pw).await?;
            audit(s, "operator.create", None, Some(&op.email), json!({})).await;
            print_password(json, &op.email, &pw, generated);
        }
        OperatorCommand::List { json } => {
            let list = s.list_operators().await?;
            let fmt = roster_server::ops::fmt_time;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|o| {
                        json!({
                            "email": o.email,
                            "created_at": fmt(o.created_at),
                            "password_changed_at": fmt(o.password_changed_at),
                            "last_sign_in_at": o.last_sign_in_at.map(fmt),
                            "locked_until": o.locked_until.map(fmt),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else if list.is_empty() {
                println!("no operators; add one with `roster operator add EMAIL`");
            } else {
                for o in list {
                    println!(
                        "{}  created {}  last sign-in {}",
                        o.email,
                        fmt(o.created_at),
                        o.last_sign_in_at.map_or_else(|| "never".to_owned(), fmt)
                    );
                }
            }
        }
        OperatorCommand::SetPassword {
            email,
            password_stdin,
            json,
        } => {
            let (pw, generated) = password(password_stdin)?;
            operators::set_password(s, SystemClock.now(), &email, &pw).await?;
            let email = operators::normalize_email(&email).unwrap_or(email);
            audit(s, "operator.set_password", None, Some(&email), json!({})).await;
            print_password(json, &email, &pw, generated);
        }
        OperatorCommand::Remove { email } => {
            operators::remove(s, &email).await?;
            let email = operators::normalize_email(&email).unwrap_or(email);
            audit(s, "operator.remove", None, Some(&email), json!({})).await;
            println!("removed {email}; its console sessions have ended");
        }
    }
    Ok(())
}
