//! The multi-host testbed (placeholder).
