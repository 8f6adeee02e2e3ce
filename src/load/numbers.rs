//! The number index of caller-ID lookup (migration 0010: `contact_numbers`, `number_index`):
//! what both backends' runs share to keep it. A run writes the keys of each row it inserts
//! or updates ([`crate::numbers::NumberPlan::keys`]) and deletes those of each row it
//! updates or deletes, in its transaction; a run that finds the index built with another
//! region than its pipeline's (or not built: a table from before version 10) builds it again
//! from the table first, a page of rows at a time.

use crate::fields::empty_values;
use crate::load::LoadError;
use crate::numbers::{NumberKey, NumberPlan};
use crate::transform::{MergedRow, Origin};

/// The region the index was built with (no row: not built).
pub const SELECT_REGION_SQL: &str = "SELECT region FROM number_index";
/// Forgets the index before it is built again.
pub const CLEAR_SQL: &str = "DELETE FROM contact_numbers; DELETE FROM number_index;";
/// Records the region the index was built with (parameter: the region).
pub const RECORD_REGION_SQL: &str = "INSERT INTO number_index (region) VALUES ($1)";
/// A page of the table's rows with their numbers, after id `$1`, in id order.
pub const SELECT_PAGE_SQL: &str = "SELECT id, origin, extension, mobile_number, home_number, \
     fax_number FROM contacts WHERE id > $1 ORDER BY id LIMIT 4096";
/// The keys of one contact (parameter: its id).
pub const DELETE_CONTACT_SQL: &str = "DELETE FROM contact_numbers WHERE contact_id = $1";
/// The index a lookup reads; dropped while a run loads an empty table and built again
/// (sorted) before it commits, like the search indexes (see `crate::load::run`).
pub const DROP_BY_NUMBER_SQL: &str = "DROP INDEX contact_numbers_by_number;";
pub const CREATE_BY_NUMBER_SQL: &str =
    "CREATE INDEX contact_numbers_by_number ON contact_numbers (number, rank, contact_id);";

/// A key of a contact's numbers, ready to be written.
pub type ContactKey = (i64, NumberKey);

/// One row of a [`SELECT_PAGE_SQL`] page: id, origin, extension, mobile, home, fax.
pub struct PageRow<'r> {
    pub id: i64,
    pub origin: &'r str,
    pub numbers: [Option<&'r str>; 4],
}

/// Appends the keys of a page row to `out`.
pub fn page_row_keys(plan: &NumberPlan, row: &PageRow<'_>, out: &mut Vec<ContactKey>) {
    let mut values = empty_values();
    for (&field, number) in crate::numbers::LOOKUP_FIELDS.iter().zip(row.numbers) {
        values[field] = number.map(str::to_owned);
    }
    let origin = Origin::parse(row.origin).unwrap_or(Origin::Directory);
    values_keys(plan, row.id, &values, origin, out);
}

/// Appends the keys of row `id` to `out`: those the merge thread computed (taken from the
/// row), or computed now.
pub fn row_keys(plan: &NumberPlan, id: i64, row: &mut MergedRow, out: &mut Vec<ContactKey>) {
    match row.number_keys.take() {
        Some(keys) => out.extend(keys.into_iter().map(|key| (id, key))),
        None => values_keys(plan, id, &row.values, row.origin, out),
    }
}

/// Computes the keys of a row before it is written (see [`MergedRow::number_keys`]).
pub fn attach_keys(plan: &NumberPlan, row: &mut MergedRow) {
    let mut keys = Vec::new();
    plan.keys(&row.values, row.origin, &mut keys);
    row.number_keys = Some(keys);
}

/// Appends the keys of a row's values to `out`.
fn values_keys(
    plan: &NumberPlan,
    id: i64,
    values: &crate::fields::FieldValues,
    origin: Origin,
    out: &mut Vec<ContactKey>,
) {
    let mut keys = Vec::new();
    plan.keys(values, origin, &mut keys);
    out.extend(keys.into_iter().map(|key| (id, key)));
}

/// Whether the index must be built again: not built, or built with another region.
pub fn needs_rebuild(plan: &NumberPlan, built_with: Option<&str>) -> bool {
    built_with != Some(plan.region().as_str())
}

/// The region the store's number index was built with; None when it is not built.
pub async fn built_with(store: &crate::load::Store) -> Result<Option<String>, LoadError> {
    crate::load::on_pool!(store, |pool| sqlx::query_scalar(SELECT_REGION_SQL)
        .fetch_optional(pool)
        .await
        .map_err(|e| store.error(e)))
}

/// Builds the store's number index now if it is not built for the store's region, in a
/// transaction of its own holding the run lock (as a run would at its start). Returns
/// whether it was built.
pub async fn ensure(store: &crate::load::Store) -> Result<bool, LoadError> {
    if !needs_rebuild(&store.numbers, built_with(store).await?.as_deref()) {
        return Ok(false);
    }
    let writer = store.clone();
    tokio::task::spawn_blocking(move || writer.begin_run(crate::load::now())?.commit())
        .await
        .expect("the number index task does not panic")?;
    Ok(true)
}
