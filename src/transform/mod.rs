//! Transform: matching external contacts to directory entries on the configured field and
//! merging their values per field by priority.

pub mod directory;
pub mod key_index;
pub mod merge;
pub mod policy;

pub use directory::{Directory, DirectoryEntry, DirectoryError};
pub use key_index::{KeyIndex, RowState};
pub use merge::{Arriving, ExternalRow, MergedRow, Merger, Origin, Rejection};
pub use policy::{MergePolicy, Priority, Side, normalise_key};
