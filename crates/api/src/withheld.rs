//! A case's state as a caller may read it: the fields of the folded state that came
//! from event fields the event feed and `ReplayCase` withhold from them
//! ([`crate::feed::Reader`], one decision per event) are withheld from the state views
//! too (`GetComplaint`, `GetCaseAsOf`, the states of an exported dossier), with the
//! feed's marker: empty (JSON null) and named in a list of redacted fields.

use std::collections::BTreeSet;

use kefu_event_store::RecordedEvent;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::feed::{Reader, Shown};
use crate::pb;
use crate::services::Ctx;

/// The `Complaint` view's field showing a state field: its name, and how it is emptied.
type ViewField = Option<(&'static str, fn(&mut pb::Complaint))>;

/// Where the case's state keeps an event field: (event type, payload field, JSON pointer
/// into the serialized `Case`, the view's field showing it). Every restricted or
/// personal field a case's state holds is here; the others are only read as events.
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
    ("CallbackLogged", "outcome", "/last_callback_outcome", None),
];

/// The event fields withheld from one reader so far, by event type.
#[derive(Debug, Default)]
pub struct Withheld {
    fields: BTreeSet<(String, String)>,
}

impl Withheld {
    /// Notes what was withheld of one event.
    pub fn note(&mut self, shown: &Shown) {
        for field in &shown.redacted {
            self.fields.insert((shown.event.event_type.clone(), field.clone()));
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

    /// Nulls the withheld fields of a serialized case state.
    pub fn state(&self, state: &mut Value) {
        for (_, _, pointer, _) in self.held() {
            if let Some(value) = state.pointer_mut(pointer) {
                *value = Value::Null;
            }
        }
    }

    /// Empties the withheld fields of a case's view and names them in `redacted_fields`.
    pub fn view(&self, view: &mut pb::Complaint) {
        for (name, clear) in self.held().filter_map(|(_, _, _, shown_as)| *shown_as) {
            clear(view);
            view.redacted_fields.push(name.to_owned());
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
