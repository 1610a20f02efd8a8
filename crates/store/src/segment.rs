//! Sealed segments: Parquet files of events, one per (account, Region, UTC date), each with
//! a sidecar lookup index. (Being written: see the contract in the module below.)
