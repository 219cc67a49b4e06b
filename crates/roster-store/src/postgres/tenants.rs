//! (being ported from ../sqlite/tenants.rs)
