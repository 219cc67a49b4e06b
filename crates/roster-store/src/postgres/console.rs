//! (being ported from ../sqlite/console.rs)
