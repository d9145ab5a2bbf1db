//! MMM's configuration language (spec §2): file lookup, parsing, templates, validation per
//! program class, and the typed model every program reads.
//!
//! Layout: `model.rs` (typed config), `parse.rs` (line syntax, includes, sections),
//! `validate.rs` (defaults, required entries, refvalues, per-class rules).
//! Entry point: [`load`] (by base name, MMM's lookup) or [`load_file`].

pub mod model;

pub use model::*;
