//! The pure core of Trailkeeper: the CloudTrail event model, Event History's lookup
//! vocabulary, the event selectors that decide what each trail delivers, and the Merkle
//! trees (RFC 9162) that make the stored log verifiable.
//!
//! Architecture invariant: nothing in this crate does IO, reads a clock or draws random
//! numbers. Callers pass in what the outside world knows (the time, a fresh event ID).

pub mod body;
pub mod checkpoint;
pub mod digest;
pub mod json;
pub mod logfile;
pub mod lookup;
pub mod merkle;
pub mod prefetch;
pub mod record;
pub mod selectors;
pub mod time;

pub use lookup::{Category, FieldValues, LookupFields, LookupKey, Resource};
pub use record::{ParsedRecord, RecordDefaults, RecordError, parse_record, parse_record_in};
