//! Black-box integration tests: each test starts the real `roster` binary on a random loopback
//! port with a temporary SQLite database and speaks SCIM over HTTP to it.

// Test helpers panic on purpose; comparing with `[x.clone()]` reads better than `from_ref`.
#![allow(clippy::unwrap_used, clippy::cloned_ref_to_slice_refs)]

#[allow(dead_code)]
mod harness;

mod adminkeys;
mod appusers;
mod auth;
mod backup;
mod browser;
mod bulk;
mod cli;
mod cluster;
mod config;
mod console;
mod console_brand;
mod console_health;
mod console_lists;
mod console_settings;
mod console_stale;
mod copy;
mod custom_attributes;
mod discovery;
mod emails;
mod erasure;
mod errors;
mod etag;
mod events;
mod filters;
mod first_sync;
mod groups;
mod guard;
mod hosts;
mod idp;
mod lifecycle;
mod limits;
mod listing;
mod login;
mod observability;
mod patch;
mod provlog;
mod ratelimits;
mod roles;
mod server;
mod simulate;
mod tenants;
mod tls;
mod users;
mod webhooks;
