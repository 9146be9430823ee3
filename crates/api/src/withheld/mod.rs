//! A case's state as a caller may read it: the fields of the folded state that came
//! from event fields the event feed and `ReplayCase` withhold from them
//! ([`crate::feed::Reader`], one decision per event) are withheld from the state views
//! too (`GetComplaint`, `GetCaseAsOf`, the states of an exported dossier, the rows of
//! `ListComplaints`), with the feed's marker: empty (JSON null) and named in a list of
//! redacted fields. [`customer`] does the same for a customer's record.

pub mod customer;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use kefu_domain::complaint::Material;
use kefu_domain::{ComplaintId, CustomerId};
use kefu_event_store::{Direction, RecordedEvent};
use serde_json::Value;

use crate::auth::Principal;
use crate::commands::stream;
use crate::convert as cv;
use crate::error::ApiError;
use crate::feed::{Reader, Shown};
use crate::pb;
use crate::services::Ctx;

/// The `Complaint` view's field showing a state field: its name, and how it is emptied.
type ViewField = Option<(&'static str, fn(&mut pb::Complaint))>;

/// Where the case's state keeps an event field: (event type, payload field, JSON pointer
/// into the serialized `Case`, the view's field showing it). Every restricted or
/// personal field a case's state holds is here or in [`ITEM_FIELDS`] (the test
/// `every_field_the_state_keeps_is_withheld_with_its_event` folds one of every event
/// and checks it); the others are only read as events.
const STATE_FIELDS: &[(&str, &str, &str, ViewField)] = &[
    ("ComplaintFiled", "category", "/category", Some(("category", |v| v.category.clear()))),
    ("ComplaintFiled", "cause", "/cause", Some(("cause", |v| v.cause.clear()))),
    (
        "ComplaintFiled",
        "description",
        "/description",
        Some(("description", |v| v.description.clear())),
    ),
    ("ComplaintFiled", "respondent", "/respondent", Some(("respondent", |v| v.respondent.clear()))),
    ("ComplaintFiled", "attachments", "/attachments", None),
    (
        "OpinionSigned",
        "meeting",
        "/round/signature/meeting",
        Some(("meeting", |v| v.meeting = None)),
    ),
    // Whether the opinion promised a remedy is what its (personal) remedy says.
    (
        "OpinionSigned",
        "remedy",
        "/round/signature/remedy_promised",
        Some(("remedy_promised", |v| v.remedy_promised = false)),
    ),
    ("CallbackLogged", "outcome", "/last_callback_outcome", None),
];

/// Event fields the state keeps per item (one material, one implementation record):
/// withheld item by item, with the event that recorded the item (see [`Withheld::state`]
/// and [`Withheld::view`]; listed for the completeness test).
#[cfg_attr(not(test), allow(dead_code))]
const ITEM_FIELDS: &[(&str, &str)] = &[
    ("ComplaintFiled", "attachments"),
    ("MaterialAdded", "reference"),
    ("MaterialAdded", "media_type"),
    ("MaterialAdded", "size_bytes"),
    ("MaterialAdded", "sha256"),
    ("MaterialAdded", "reason"),
    ("ImplementationRecorded", "summary"),
];

/// A material's fields that came from the event recording it (the rest is the record
/// of handling: number, who added it and when, what it supersedes).
const MATERIAL_TEXT: &[&str] = &["reference", "media_type", "size_bytes", "sha256", "reason"];

/// The event fields withheld from one reader so far, by event type.
#[derive(Debug, Default)]
pub struct Withheld {
    fields: BTreeSet<(String, String)>,
    /// Materials recorded by a withheld `MaterialAdded`, by number.
    materials: BTreeSet<u32>,
    /// The filing's attachments (the materials nobody added since) were withheld.
    attachments: bool,
    /// Implementation records withheld, by when they were recorded.
    implementations: BTreeSet<DateTime<Utc>>,
}

impl Withheld {
    /// Notes what was withheld of one event.
    pub fn note(&mut self, shown: &Shown) {
        self.note_fields(&shown.event, &shown.redacted);
    }

    /// Notes that `redacted` of `event` (its plain fields readable) were withheld.
    fn note_fields(&mut self, event: &RecordedEvent, redacted: &[String]) {
        if redacted.is_empty() {
            return;
        }
        for field in redacted {
            self.fields.insert((event.event_type.clone(), field.clone()));
        }
        let plain = |field: &str| event.payload.get(field).cloned().unwrap_or(Value::Null);
        match event.event_type.as_str() {
            "ComplaintFiled" if redacted.iter().any(|field| field == "attachments") => {
                self.attachments = true;
            }
            "MaterialAdded" => {
                let number = plain("number").as_u64().and_then(|n| u32::try_from(n).ok());
                self.materials.extend(number);
            }
            "ImplementationRecorded" => {
                let at = serde_json::from_value::<DateTime<Utc>>(plain("recorded_at"));
                self.implementations.extend(at.ok());
            }
            _ => {}
        }
    }

    fn held(
        &self,
    ) -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str, ViewField)> + '_
    {
        STATE_FIELDS.iter().filter(|(event_type, field, _, _)| {
            self.fields.contains(&((*event_type).to_owned(), (*field).to_owned()))
        })
    }

    /// Whether a material (number, attached at filing) came from a withheld event.
    fn hides_material(&self, number: u32, attached: bool) -> bool {
        self.materials.contains(&number) || (attached && self.attachments)
    }

    /// Empties the fields of a material that its withheld event recorded.
    pub fn material(&self, material: &mut Material) {
        if self.hides_material(material.number, material.added_by.is_none()) {
            material.reference.clear();
            material.media_type = None;
            material.size_bytes = None;
            material.sha256 = None;
            material.reason = None;
        }
    }

    /// Whether the implementation record made at `recorded_at` was withheld.
    pub fn hides_implementation(&self, recorded_at: DateTime<Utc>) -> bool {
        self.implementations.contains(&recorded_at)
    }

    /// Nulls the withheld fields of a serialized case state.
    pub fn state(&self, state: &mut Value) {
        for (_, _, pointer, _) in self.held() {
            if let Some(value) = state.pointer_mut(pointer) {
                *value = Value::Null;
            }
        }
        if let Some(Value::Array(materials)) = state.pointer_mut("/materials") {
            for material in materials.iter_mut() {
                let number = material.get("number").and_then(Value::as_u64).unwrap_or(0);
                let attached = material.get("added_by").is_none_or(Value::is_null);
                if self.hides_material(u32::try_from(number).unwrap_or(0), attached) {
                    for field in MATERIAL_TEXT {
                        if let Some(value) = material.get_mut(*field) {
                            *value = Value::Null;
                        }
                    }
                }
            }
        }
        if let Some(Value::Array(records)) = state.pointer_mut("/round/implementations") {
            for record in records.iter_mut() {
                let at = record.get("recorded_at").cloned().unwrap_or(Value::Null);
                let at = serde_json::from_value::<DateTime<Utc>>(at).ok();
                if at.is_some_and(|at| self.hides_implementation(at)) {
                    if let Some(summary) = record.get_mut("summary") {
                        *summary = Value::Null;
                    }
                }
            }
        }
    }

    /// Empties the withheld fields of a case's view and names them in `redacted_fields`.
    pub fn view(&self, view: &mut pb::Complaint) {
        for (name, clear) in self.held().filter_map(|(_, _, _, shown_as)| *shown_as) {
            clear(view);
            view.redacted_fields.push(name.to_owned());
        }
        for material in &mut view.materials {
            if self.hides_material(material.number, material.added_by.is_empty()) {
                material.reference.clear();
                material.media_type.clear();
                material.size_bytes = None;
                material.sha256.clear();
                material.reason.clear();
                view.redacted_fields.push("materials".to_owned());
            }
        }
        for record in &mut view.implementations {
            let hidden = self
                .implementations
                .iter()
                .any(|at| Some(cv::timestamp(*at)) == record.recorded_at);
            if hidden {
                record.summary.clear();
                view.redacted_fields.push("implementations".to_owned());
            }
        }
        view.redacted_fields.sort();
        view.redacted_fields.dedup();
    }
}

/// What of a case's state `who` may not read, from its events (opened, in order):
/// each read as the event feed reads it. `handles`: `who` is its current handler, whom
/// R-P11 lets read their own case's details.
pub async fn withheld(
    ctx: &Ctx,
    who: &Principal,
    handles: bool,
    events: &[RecordedEvent],
) -> Result<Withheld, ApiError> {
    let mut reader = Reader::new(ctx.clone(), who.clone()).handling(handles);
    let mut withheld = Withheld::default();
    for event in &reader.show(events.to_vec()).await? {
        withheld.note(event);
    }
    Ok(withheld)
}

/// The rows of a case list as `reader` may read them: a row shows what the case's
/// filing recorded (category, cause, respondent), so each row withholds what the feed
/// withholds of that filing, with the same marker. `who_id` handles the rows whose
/// handler it is (R-P11). Rows that a `category` filter matched on a withheld category
/// are left out: being listed would tell the category; so are rows whose customer was
/// raised above the caller's clearance since the query ([`Reader::cleared_for`]).
pub async fn list_rows(
    ctx: &Ctx,
    reader: &mut Reader,
    who_id: &str,
    rows: Vec<pb::Complaint>,
    filtered_by_category: bool,
) -> Result<Vec<pb::Complaint>, ApiError> {
    let mut shown = Vec::with_capacity(rows.len());
    for mut row in rows {
        let Ok(complaint_id) = row.complaint_id.parse::<ComplaintId>() else { continue };
        // Its customer raised above the caller since the read model's query: left out.
        let customer = row.customer_id.parse::<CustomerId>().ok();
        match customer {
            Some(customer) if reader.cleared_for(customer).await? => {}
            _ => continue,
        }
        let case_stream = stream(complaint_id.stream_name())?;
        let filing =
            ctx.commands.store().read_stream(&case_stream, 1, Direction::Forward, 1).await?;
        reader.set_handling(row.handler == who_id);
        let mut withheld = Withheld::default();
        for (event, redacted) in filing.iter().zip(reader.withheld_of(&filing).await?) {
            withheld.note_fields(event, &redacted);
        }
        withheld.view(&mut row);
        if filtered_by_category && row.redacted_fields.iter().any(|field| field == "category") {
            continue;
        }
        shown.push(row);
    }
    Ok(shown)
}
