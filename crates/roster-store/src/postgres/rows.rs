//! (being ported from ../sqlite/rows.rs)
