//! (being ported from ../sqlite/ops.rs)
