//! Load: the database holding the directory, the merged contacts table and the run history,
//! on SQLite (the embedded default) or PostgreSQL. The schema comes from `migrations/sqlite`
//! or `migrations/postgres` (the same tables, applied automatically); a run's change set is
//! applied atomically by [`run::RunTransaction`] (the one door to the two
//! backends' transactions, `sqlite_run` and `postgres_run`, which share `contacts`, `numbers`,
//! `plans` and `provenance` below them); listings, exports and the fetch stage's
//! metadata go through sqlx with SQL that reads the same on both backends.

pub mod contacts;
mod error;
pub mod numbers;
pub mod plans;
pub mod postgres_run;
mod provenance;
pub mod run;
pub mod runs;
pub mod sqlite_run;
pub mod staged;
mod store;

pub use crate::timestamps::{now, stored_time};
pub use contacts::{ExistingRows, Op};
pub(crate) use error::run_error;
pub use error::{BeginError, LoadError, RunError};
pub use provenance::{side_bits, sides_of};
pub use run::RunTransaction;
pub(crate) use store::on_pool;
pub use store::{Backend, DEFAULT_LOCK_WAIT, POOL_CONNECTIONS, Store, mask_database_url};
