//! Row tests of the monitor core.
