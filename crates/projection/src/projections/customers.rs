//! `customers` projection → `rm_customers` (one row per customer, R-C1..R-C8) and
//! `rm_customer_keys` (what each is found by, see [`super::customer_index`]).
//!
//! Most events change rows in memory and are written once per batch. A merge or an
//! erasure changes rows the batch may not hold (everything merged into a customer, its
//! search keys), so the rows changed so far are written first and it runs as SQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use kefu_domain::complaint::ComplaintEvent;
use kefu_domain::customer::CustomerEvent;
use kefu_domain::{Confidentiality, PhoneRegion};

use super::customer_index::{self, Reindex};
use super::live_counts::{self, CustomerCounts};
use super::{decode, load_rows, stream_key, upsert_rows, Decoded};
use crate::error::{to_sql, ProjectionError};
use crate::event::Event;
use crate::runner::Projection;
use crate::sql::{DbRow, DbTx, Param};

pub const TABLE: &str = "rm_customers";

pub(super) const COLUMNS: &[&str] = &[
    "customer_id",
    "name",
    "kind",
    "contacts",
    "tier",
    "stars",
    "source_channel",
    "referred_by",
    "confidentiality",
    "confidentiality_rank",
    "agent",
    "registered_at",
    "first_contact_at",
    "last_contact_at",
    "callbacks",
    "last_callback_at",
    "forgotten_at",
    "last_position",
    "merged_into",
];

/// A row of `rm_customers`.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub customer_id: String,
    /// NULL once the customer is forgotten (R-C8).
    pub name: Option<String>,
    pub kind: String,
    /// JSON `{phones, emails, address}`; NULL once forgotten.
    pub contacts: Option<String>,
    pub tier: String,
    pub stars: Option<i64>,
    pub source_channel: String,
    pub referred_by: Option<String>,
    pub confidentiality: String,
    /// 0 public, 1 internal, 2 confidential, 3 secret: compare with a caller's clearance.
    pub confidentiality_rank: i64,
    pub agent: String,
    pub registered_at: DateTime<Utc>,
    pub first_contact_at: Option<DateTime<Utc>>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub callbacks: i64,
    pub last_callback_at: Option<DateTime<Utc>>,
    pub forgotten_at: Option<DateTime<Utc>>,
    pub last_position: i64,
    /// The survivor this duplicate was merged into: it counts nowhere on its own.
    pub merged_into: Option<String>,
}

impl CustomerRow {
    pub(crate) fn from_row(row: &DbRow) -> Result<Self, ProjectionError> {
        Ok(CustomerRow {
            customer_id: row.text("customer_id")?,
            name: row.opt_text("name")?,
            kind: row.text("kind")?,
            contacts: row.opt_text("contacts")?,
            tier: row.text("tier")?,
            stars: row.opt_int("stars")?,
            source_channel: row.text("source_channel")?,
            referred_by: row.opt_text("referred_by")?,
            confidentiality: row.text("confidentiality")?,
            confidentiality_rank: row.int("confidentiality_rank")?,
            agent: row.text("agent")?,
            registered_at: row.time("registered_at")?,
            first_contact_at: row.opt_time("first_contact_at")?,
            last_contact_at: row.opt_time("last_contact_at")?,
            callbacks: row.int("callbacks")?,
            last_callback_at: row.opt_time("last_callback_at")?,
            forgotten_at: row.opt_time("forgotten_at")?,
            last_position: row.int("last_position")?,
            merged_into: row.opt_text("merged_into")?,
        })
    }

    pub(super) fn params(&self) -> Vec<Param> {
        Vec::from(crate::params![
            self.customer_id.as_str(),
            self.name.clone(),
            self.kind.as_str(),
            self.contacts.clone(),
            self.tier.as_str(),
            self.stars,
            self.source_channel.as_str(),
            self.referred_by.clone(),
            self.confidentiality.as_str(),
            self.confidentiality_rank,
            self.agent.as_str(),
            self.registered_at,
            self.first_contact_at,
            self.last_contact_at,
            self.callbacks,
            self.last_callback_at,
            self.forgotten_at,
            self.last_position,
            self.merged_into.clone(),
        ])
    }
}

/// The rank of a confidentiality level, as stored in `confidentiality_rank`.
pub fn confidentiality_rank(level: Confidentiality) -> i64 {
    match level {
        Confidentiality::Public => 0,
        Confidentiality::Internal => 1,
        Confidentiality::Confidential => 2,
        Confidentiality::Secret => 3,
    }
}

/// The `customers` projection. Phone numbers stored as typed (before contacts were
/// normalised) are read in `region` when they carry no country code.
#[derive(Debug, Clone, Copy, Default)]
pub struct Customers {
    pub region: PhoneRegion,
}

impl Projection for Customers {
    fn name(&self) -> &'static str {
        "customers"
    }

    /// 2: search keys, merged duplicates. 3: a source channel outside the taxonomy (a
    /// legacy event's prose) reads as `unlisted` (R-C8). 4: customers per agent and
    /// referrals per referrer (issue 18). 5: customers per graded group, referral totals
    /// per report key (issue 18).
    fn version(&self) -> u32 {
        5
    }

    fn event_types(&self) -> &'static [&'static str] {
        &[
            "CustomerRegistered",
            "CustomerUpdated",
            "CustomerGraded",
            "AgentAssigned",
            "CustomerContacted",
            "CallbackLogged",
            "CustomerForgotten",
            "CustomerMerged",
            "CustomerAbsorbed",
        ]
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            TABLE,
            customer_index::TABLE,
            live_counts::AGENT_CUSTOMERS,
            live_counts::REFERRAL_COUNTS,
            live_counts::GRADE_CUSTOMERS,
            live_counts::REFERRER_TOTALS,
        ]
    }

    fn reads_personal_data(&self) -> bool {
        true
    }

    fn erasures(&self) -> &'static [&'static str] {
        &["CustomerForgotten"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut DbTx,
        events: &'a [&'a Event],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(tx, events, self.region))
    }
}

async fn apply(
    tx: &mut DbTx,
    events: &[&Event],
    region: PhoneRegion,
) -> Result<(), ProjectionError> {
    // Decode once; find the customer each event is about. Merges and erasures end a
    // segment: what came before is written, then they run against the tables.
    let mut segment = Vec::with_capacity(events.len());
    for event in events {
        let (customer_id, change) = match decode(event)? {
            Decoded::Customer(change) => (stream_key(event).to_owned(), Change::Customer(change)),
            // Complaint callbacks count towards the customer's coverage too (R-C5).
            Decoded::Complaint(ComplaintEvent::CallbackLogged(callback)) => {
                (callback.customer_id.to_string(), Change::Callback(callback.called_at))
            }
            Decoded::Complaint(_) | Decoded::Staff(_) | Decoded::Request(_) | Decoded::Other => {
                continue
            }
        };
        let position = to_sql("position", event.position)?;
        match change {
            Change::Customer(CustomerEvent::CustomerMerged(merged)) => {
                apply_segment(tx, std::mem::take(&mut segment), region).await?;
                let survivor = merged.into.to_string();
                customer_index::merged(tx, &customer_id, &survivor, position).await?;
            }
            Change::Customer(CustomerEvent::CustomerForgotten(forgotten)) => {
                apply_segment(tx, std::mem::take(&mut segment), region).await?;
                customer_index::forgotten(tx, &customer_id, forgotten.forgotten_at, position)
                    .await?;
            }
            change => segment.push((position, customer_id, change)),
        }
    }
    apply_segment(tx, segment, region).await
}

/// Loads the rows of `ids` not loaded yet.
async fn load_into(
    tx: &mut DbTx,
    rows: &mut HashMap<String, CustomerRow>,
    mut ids: Vec<String>,
) -> Result<(), ProjectionError> {
    ids.retain(|id| !rows.contains_key(id));
    ids.sort();
    ids.dedup();
    for row in load_rows(tx, TABLE, "customer_id", &ids).await? {
        let row = CustomerRow::from_row(&row)?;
        rows.insert(row.customer_id.clone(), row);
    }
    Ok(())
}

/// Applies changes in memory, then writes the changed rows and their search keys.
async fn apply_segment(
    tx: &mut DbTx,
    decoded: Vec<(i64, String, Change)>,
    region: PhoneRegion,
) -> Result<(), ProjectionError> {
    if decoded.is_empty() {
        return Ok(());
    }
    let mut rows: HashMap<String, CustomerRow> = HashMap::with_capacity(decoded.len());
    load_into(tx, &mut rows, decoded.iter().map(|(_, id, _)| id.clone()).collect()).await?;
    // A merged duplicate's later callbacks (on its old complaints) count for its survivor.
    let survivors = rows.values().filter_map(|row| row.merged_into.clone()).collect();
    load_into(tx, &mut rows, survivors).await?;
    // The rows as the counts hold them now: what changes is taken back from there.
    let before = rows.clone();

    let mut reindex = Reindex::default();
    let mut dirty: Vec<String> = Vec::new();
    for (position, customer_id, change) in decoded {
        let target = match (&change, rows.get(&customer_id)) {
            (
                Change::Callback(_) | Change::Customer(CustomerEvent::CallbackLogged(_)),
                Some(CustomerRow { merged_into: Some(survivor), .. }),
            ) if rows.contains_key(survivor) => survivor.clone(),
            _ => customer_id.clone(),
        };
        if changes_keys(&change) {
            reindex.mark(&customer_id, rows.contains_key(&customer_id));
        }
        let customer_id = target;
        let row = rows.get_mut(&customer_id);
        match (change, row) {
            (Change::Customer(CustomerEvent::CustomerRegistered(e)), None) => {
                rows.insert(
                    customer_id.clone(),
                    CustomerRow {
                        customer_id: customer_id.clone(),
                        name: Some(e.name.to_string()),
                        kind: e.kind.to_string(),
                        contacts: Some(serde_json::to_string(&e.contacts).unwrap_or_default()),
                        tier: e.tier.to_string(),
                        stars: e.stars.map(|stars| i64::from(stars.get())),
                        source_channel: kefu_domain::taxonomy::source_channel_label(
                            e.source_channel.as_str(),
                        )
                        .to_owned(),
                        referred_by: e.referred_by.map(|id| id.to_string()),
                        confidentiality: e.confidentiality.to_string(),
                        confidentiality_rank: confidentiality_rank(e.confidentiality),
                        agent: e.agent.to_string(),
                        registered_at: e.registered_at,
                        first_contact_at: None,
                        last_contact_at: None,
                        callbacks: 0,
                        last_callback_at: None,
                        forgotten_at: None,
                        last_position: position,
                        merged_into: None,
                    },
                );
            }
            // Registered twice, or an event before registration: the domain never writes
            // either; leave the row as it is rather than invent one.
            (Change::Customer(_), None) | (Change::Callback(_), None) => continue,
            (change, Some(row)) => {
                apply_change(row, change);
                row.last_position = position;
            }
        }
        dirty.push(customer_id);
    }
    dirty.sort();
    dirty.dedup();
    let mut counts = CustomerCounts::default();
    for id in &dirty {
        counts.changed(before.get(id), rows.get(id));
    }
    let changed = dirty.iter().filter_map(|id| rows.get(id)).map(CustomerRow::params).collect();
    upsert_rows(tx, TABLE, "customer_id", COLUMNS, changed).await?;
    counts.write(tx).await?;
    reindex.write(tx, &rows, region).await
}

/// Whether a change touches what a customer is found by (name, contacts).
fn changes_keys(change: &Change) -> bool {
    match change {
        Change::Customer(CustomerEvent::CustomerRegistered(_)) => true,
        Change::Customer(CustomerEvent::CustomerUpdated(e)) => {
            e.name.is_some() || e.contacts.is_some()
        }
        _ => false,
    }
}

enum Change {
    Customer(CustomerEvent),
    Callback(DateTime<Utc>),
}

fn apply_change(row: &mut CustomerRow, change: Change) {
    match change {
        Change::Callback(at) => {
            row.callbacks += 1;
            row.last_callback_at = row.last_callback_at.max(Some(at));
        }
        Change::Customer(event) => match event {
            CustomerEvent::CustomerRegistered(_) => {}
            CustomerEvent::CustomerUpdated(e) => {
                if row.forgotten_at.is_none() {
                    if let Some(name) = e.name {
                        row.name = Some(name.to_string());
                    }
                    if let Some(contacts) = e.contacts {
                        row.contacts = Some(serde_json::to_string(&contacts).unwrap_or_default());
                    }
                }
                if let Some(level) = e.confidentiality {
                    row.confidentiality = level.to_string();
                    row.confidentiality_rank = confidentiality_rank(level);
                }
            }
            CustomerEvent::CustomerGraded(e) => {
                row.tier = e.to_tier.to_string();
                row.stars = e.to_stars.map(|stars| i64::from(stars.get()));
            }
            CustomerEvent::AgentAssigned(e) => row.agent = e.agent.to_string(),
            CustomerEvent::CustomerContacted(e) => {
                row.first_contact_at =
                    Some(row.first_contact_at.map_or(e.contacted_at, |at| at.min(e.contacted_at)));
                row.last_contact_at = row.last_contact_at.max(Some(e.contacted_at));
            }
            CustomerEvent::CallbackLogged(e) => {
                row.callbacks += 1;
                row.last_callback_at = row.last_callback_at.max(Some(e.called_at));
            }
            // Run against the tables by `apply` (see `customer_index`); never reach here.
            CustomerEvent::CustomerForgotten(_) | CustomerEvent::CustomerMerged(_) => {}
            // The survivor's side of a merge: the duplicate's side did the work.
            CustomerEvent::CustomerAbsorbed(_) => {}
        },
    }
}
