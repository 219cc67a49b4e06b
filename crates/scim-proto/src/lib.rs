//! The pure SCIM 2.0 protocol core of Roster (RFC 7643, RFC 7644).
//!
//! Nothing here performs IO or knows about HTTP or SQL: values go in, values come out. That
//! keeps every protocol rule testable with plain data and fuzzable.

pub mod custom;
pub mod dialect;
pub mod diff;
pub mod error;
pub mod filter;
pub mod patch;
pub mod projection;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimType};
