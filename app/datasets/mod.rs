//! Readers for the data sets Loupe opens. Each returns plain data plus a list of
//! per-record problems, so one bad record never hides the rest of a file.

pub mod ann;
pub mod biomedica;
pub mod embeddings;
pub mod evaluation;
pub mod export;
pub mod generic_jsonl;
pub mod metrics;
pub mod mig_bench;
pub mod predictions;
pub mod review;
pub mod review_autosave;
pub mod uco3d;

/// A problem with one record of a file, located precisely enough to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {location}: {message}")]
pub struct RecordError {
    pub file: String,
    /// e.g. "item 12" or "line 40".
    pub location: String,
    pub message: String,
}
