//! Comparison metrics (THEORY §7).

mod neighbours;

pub use neighbours::{nearest_two, Neighbours};
