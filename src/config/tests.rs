//! Tests of the configuration loader (placeholder so the crate compiles; the config module owns this file).
