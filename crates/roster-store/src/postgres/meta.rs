//! (being ported from ../sqlite/meta.rs)
