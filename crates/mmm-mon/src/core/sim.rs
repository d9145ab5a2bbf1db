//! Seeded random simulation (STYLE.md "Simulation tests").
