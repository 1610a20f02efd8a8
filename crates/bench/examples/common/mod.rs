//! What the examples that measure over generated records share.

use anyhow::{Context, bail};

/// How many records to generate: the first argument, 200,000 if there is none. `noun` names
/// them in the error for an argument that is not a positive number.
pub fn count_argument(noun: &str) -> anyhow::Result<usize> {
    let count: usize = match std::env::args().nth(1) {
        Some(text) => text.parse().with_context(|| format!("expected {noun} count, got {text:?}"))?,
        None => 200_000,
    };
    if count == 0 {
        bail!("the count must be positive");
    }
    Ok(count)
}
