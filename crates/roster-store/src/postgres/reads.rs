//! (being ported from ../sqlite/reads.rs)
