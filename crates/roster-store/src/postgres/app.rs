//! (being ported from ../sqlite/app.rs)
