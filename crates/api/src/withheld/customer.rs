//! A customer's record as a caller may read it (`GetCustomer`, the rows of
//! `ListCustomers` and `FindCustomers`): a field of the record shows what the last event
//! that set it recorded, so it is withheld exactly when the event feed withholds that
//! field of that event ([`Reader`]: the customer's current level above the caller's
//! clearance, R-C6, a raise the read model has not reached yet included; a referrer the
//! caller may not know of), with the feed's marker: empty and named in `redacted_fields`.

use std::collections::BTreeSet;

use kefu_domain::{Confidentiality, CustomerId};
use kefu_event_store::{Direction, RecordedEvent};

use crate::commands::stream;
use crate::error::ApiError;
use crate::feed::Reader;
use crate::pb;
use crate::services::Ctx;

/// Where a customer's record keeps an event field: (event type, payload field, the
/// `Customer` view's field showing it).
pub(crate) const RECORD_FIELDS: &[(&str, &str, &str)] = &[
    ("CustomerRegistered", "name", "name"),
    ("CustomerRegistered", "kind", "kind"),
    ("CustomerRegistered", "contacts", "contacts"),
    ("CustomerRegistered", "tier", "tier"),
    ("CustomerRegistered", "stars", "stars"),
    ("CustomerRegistered", "source_channel", "source_channel"),
    ("CustomerRegistered", "referred_by", "referred_by"),
    ("CustomerUpdated", "name", "name"),
    ("CustomerUpdated", "contacts", "contacts"),
    ("CustomerGraded", "to_tier", "tier"),
    ("CustomerGraded", "to_stars", "stars"),
];

/// The view's fields withheld from one reader.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecordWithheld {
    fields: BTreeSet<&'static str>,
}

impl RecordWithheld {
    /// From a customer's events as stored, in order, and what the reader may not read
    /// of each: each view field follows the last event that set it.
    pub fn of(events: &[RecordedEvent], redacted: &[Vec<String>]) -> Self {
        let mut fields = BTreeSet::new();
        for (event, redacted) in events.iter().zip(redacted) {
            for (_, field, shown_as) in
                RECORD_FIELDS.iter().filter(|(event_type, _, _)| *event_type == event.event_type)
            {
                let set = event.payload.get(*field).is_some_and(|value| !value.is_null());
                if !set {
                    continue;
                }
                if redacted.iter().any(|withheld| withheld == field) {
                    fields.insert(*shown_as);
                } else {
                    fields.remove(shown_as);
                }
            }
        }
        RecordWithheld { fields }
    }

    /// Whether the view's `field` (e.g. `name`) is withheld.
    pub fn holds(&self, field: &str) -> bool {
        self.fields.contains(field)
    }

    /// Empties the withheld fields of a customer's view and names them.
    pub fn view(&self, view: &mut pb::Customer) {
        for field in &self.fields {
            match *field {
                "name" => view.name.clear(),
                "kind" => view.kind = 0,
                "contacts" => view.contacts = None,
                "tier" => view.tier = 0,
                "stars" => view.stars = 0,
                "source_channel" => view.source_channel.clear(),
                "referred_by" => view.referred_by.clear(),
                _ => {}
            }
            view.redacted_fields.push((*field).to_owned());
        }
        view.redacted_fields.sort();
        view.redacted_fields.dedup();
    }
}

/// What of `customer_id`'s record `reader` may not read. Nothing for a reader cleared
/// for the highest level (`clearance`): no event is read at a level above it.
pub async fn record_withheld(
    ctx: &Ctx,
    reader: &mut Reader,
    clearance: Confidentiality,
    customer_id: CustomerId,
) -> Result<RecordWithheld, ApiError> {
    if clearance == Confidentiality::Secret {
        return Ok(RecordWithheld::default());
    }
    let events = ctx
        .commands
        .store()
        .read_stream(&stream(customer_id.stream_name())?, 1, Direction::Forward, usize::MAX)
        .await?;
    let redacted = reader.withheld_of(&events).await?;
    Ok(RecordWithheld::of(&events, &redacted))
}

/// A list's or lookup's row as the caller may read it: what the feed withholds of the
/// customer's record withheld, or `None` when the customer was raised above the caller's
/// clearance since the read model's query ([`Reader::cleared_for`]).
pub async fn row(
    ctx: &Ctx,
    reader: &mut Reader,
    clearance: Confidentiality,
    mut row: pb::Customer,
) -> Result<Option<pb::Customer>, ApiError> {
    if clearance == Confidentiality::Secret {
        return Ok(Some(row));
    }
    let Ok(customer_id) = row.customer_id.parse::<CustomerId>() else { return Ok(None) };
    // Reads the customer's stream, so the level check below reads nothing again.
    let withheld = record_withheld(ctx, reader, clearance, customer_id).await?;
    if !reader.cleared_for(customer_id).await? {
        return Ok(None);
    }
    withheld.view(&mut row);
    Ok(Some(row))
}

/// [`row`] for each of a list's rows.
pub async fn list_rows(
    ctx: &Ctx,
    reader: &mut Reader,
    clearance: Confidentiality,
    rows: &mut Vec<pb::Customer>,
) -> Result<(), ApiError> {
    let mut shown = Vec::with_capacity(rows.len());
    for listed in rows.drain(..) {
        shown.extend(row(ctx, reader, clearance, listed).await?);
    }
    *rows = shown;
    Ok(())
}
