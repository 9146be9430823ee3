//! `rm_customer_keys`, the `customers` projection's search index: the keys each customer
//! is found by ([`kefu_domain::search_keys`]), and the SQL of merges and erasures, which
//! move or remove keys and rows beyond the batch in hand.
//!
//! A key row names the customer it finds (`customer_id`: the survivor once merged) and
//! the record it comes from (`source_id`), so a survivor's erasure removes every key that
//! finds it, and a duplicate's own erasure only the duplicate's.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kefu_domain::search_keys::customer_keys;
use kefu_domain::{personal, Contacts, PhoneRegion};

use super::customers::{CustomerRow, TABLE as CUSTOMERS};
use super::live_counts::CustomerCounts;
use super::{insert_rows, load_rows};
use crate::error::ProjectionError;
use crate::params;
use crate::sql::{DbTx, Param};

pub const TABLE: &str = "rm_customer_keys";
const COLUMNS: &[&str] = &["kind", "term", "customer_id", "source_id"];

/// Customers whose keys a segment must write again; `true` when they may have keys
/// already (their row existed before the segment).
#[derive(Debug, Default)]
pub(super) struct Reindex(HashMap<String, bool>);

impl Reindex {
    /// Marks a customer whose name or contacts changed; the first mark of a segment
    /// says whether keys may exist.
    pub(super) fn mark(&mut self, customer_id: &str, existed: bool) {
        self.0.entry(customer_id.to_owned()).or_insert(existed);
    }

    /// Replaces the marked customers' own keys with those of their rows as they are now.
    pub(super) async fn write(
        self,
        tx: &mut DbTx,
        rows: &HashMap<String, CustomerRow>,
        region: PhoneRegion,
    ) -> Result<(), ProjectionError> {
        let mut inserts: Vec<Vec<Param>> = Vec::new();
        let mut marked: Vec<(String, bool)> = self.0.into_iter().collect();
        marked.sort();
        for (source, existed) in marked {
            let Some(row) = rows.get(&source) else { continue };
            let owner = row.merged_into.as_deref().unwrap_or(&source);
            if existed {
                tx.execute(
                    &format!("DELETE FROM {TABLE} WHERE customer_id = $1 AND source_id = $2"),
                    &params![owner, source.as_str()],
                )
                .await?;
            }
            if row.forgotten_at.is_some() {
                continue;
            }
            for key in keys_of(row, region) {
                inserts.push(Vec::from(params![key.kind.code(), key.key, owner, source.as_str()]));
            }
        }
        insert_rows(tx, TABLE, COLUMNS, "ON CONFLICT DO NOTHING", inserts).await
    }
}

/// The keys of a row's name and contacts; erased placeholders (a rebuild over a destroyed
/// key reads them) are never keys.
fn keys_of(row: &CustomerRow, region: PhoneRegion) -> Vec<kefu_domain::search_keys::SearchKey> {
    let name = row.name.as_deref().filter(|name| *name != personal::ERASED_TEXT);
    // Contacts were written by this projection as JSON; unreadable ones index nothing.
    let contacts: Contacts = row
        .contacts
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    customer_keys(name, &contacts, region)
}

/// `duplicate` was merged into `survivor`: the duplicate (and whatever had been merged
/// into it) now belongs to the survivor, its keys find the survivor, and its callbacks
/// and contacts count for the survivor from now on.
pub(super) async fn merged(
    tx: &mut DbTx,
    duplicate: &str,
    survivor: &str,
    position: i64,
) -> Result<(), ProjectionError> {
    let ids = [duplicate.to_owned(), survivor.to_owned()];
    let mut rows: HashMap<String, CustomerRow> = HashMap::new();
    for row in load_rows(tx, CUSTOMERS, "customer_id", &ids).await? {
        let row = CustomerRow::from_row(&row)?;
        rows.insert(row.customer_id.clone(), row);
    }
    let Some(mut dup) = rows.remove(duplicate) else { return Ok(()) };
    // One level of merges only: whatever pointed at the duplicate points at the survivor.
    tx.execute(
        &format!("UPDATE {CUSTOMERS} SET merged_into = $1 WHERE merged_into = $2"),
        &params![survivor, duplicate],
    )
    .await?;
    tx.execute(
        &format!("UPDATE {TABLE} SET customer_id = $1 WHERE customer_id = $2"),
        &params![survivor, duplicate],
    )
    .await?;
    // Rows already merged into the duplicate count nowhere, before and after.
    let mut counts = CustomerCounts::default();
    let before = dup.clone();
    dup.merged_into = Some(survivor.to_owned());
    dup.last_position = position;
    counts.changed(Some(&before), Some(&dup));
    let mut changed = vec![dup.params()];
    if let Some(mut kept) = rows.remove(survivor) {
        let before = kept.clone();
        kept.callbacks += dup.callbacks;
        kept.last_callback_at = kept.last_callback_at.max(dup.last_callback_at);
        kept.first_contact_at = match (kept.first_contact_at, dup.first_contact_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        kept.last_contact_at = kept.last_contact_at.max(dup.last_contact_at);
        counts.changed(Some(&before), Some(&kept));
        changed.push(kept.params());
    }
    super::upsert_rows(tx, CUSTOMERS, "customer_id", super::customers::COLUMNS, changed).await?;
    // After the rows: the referral totals read who is merged into whom.
    counts.write(tx).await
}

/// R-C8: `customer_id` was erased. No plaintext copy survives in its row, in the rows of
/// the duplicates merged into it, or among the search keys, in this same transaction.
/// A duplicate erased on its own takes only its own keys with it.
pub(super) async fn forgotten(
    tx: &mut DbTx,
    customer_id: &str,
    at: DateTime<Utc>,
    position: i64,
) -> Result<(), ProjectionError> {
    let ids = [customer_id.to_owned()];
    let Some(row) = load_rows(tx, CUSTOMERS, "customer_id", &ids).await?.into_iter().next() else {
        return Ok(());
    };
    let row = CustomerRow::from_row(&row)?;
    // Its duplicates, scrubbed below too, count nowhere already.
    let mut counts = CustomerCounts::default();
    let erased = CustomerRow { forgotten_at: row.forgotten_at.or(Some(at)), ..row.clone() };
    counts.changed(Some(&row), Some(&erased));
    counts.write(tx).await?;
    let scrub = format!(
        "UPDATE {CUSTOMERS} SET name = NULL, contacts = NULL, \
         forgotten_at = COALESCE(forgotten_at, $1), last_position = $2 WHERE customer_id = $3"
    );
    tx.execute(&scrub, &params![at, position, customer_id]).await?;
    match &row.merged_into {
        Some(survivor) => {
            tx.execute(
                &format!("DELETE FROM {TABLE} WHERE customer_id = $1 AND source_id = $2"),
                &params![survivor.as_str(), customer_id],
            )
            .await?;
        }
        None => {
            let merged = format!(
                "UPDATE {CUSTOMERS} SET name = NULL, contacts = NULL, \
                 forgotten_at = COALESCE(forgotten_at, $1) WHERE merged_into = $2"
            );
            tx.execute(&merged, &params![at, customer_id]).await?;
            tx.execute(
                &format!("DELETE FROM {TABLE} WHERE customer_id = $1"),
                &params![customer_id],
            )
            .await?;
        }
    }
    Ok(())
}
