//! Events as a caller may read them: every field of every event shown in clear or
//! redacted by the access table's field dimension ([`access::may_read`]: R-C6 by the
//! customer's level, R-P11 by role, R-P4 by the case's respondent), and sealed personal
//! fields opened only where shown. The event feed, case replays and the state views of a
//! case (`crate::withheld`) read the log through here.
//!
//! Every event about a customer is read at the customer's current level (R-C6: the
//! information has a level, and changing it is the classifier's decision): raising a
//! level withholds the whole history at once, the raising event included, and a
//! declassification by a cleared classifier releases the record, history included. One
//! level per customer is also what every read model indexes and filters by, so no list,
//! lookup, filter or page token can tell more than the record itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kefu_domain::customer::CustomerRecord;
use kefu_domain::{personal, Aggregate, Customer};
use kefu_domain::{Confidentiality, CustomerId};
use kefu_event_store::{category_of, Direction, RecordedEvent};
use serde_json::Value;

use crate::access::{self, PartInCase};
use crate::auth::Principal;
use crate::commands::{decode, stream};
use crate::error::ApiError;
use crate::services::Ctx;

/// Customers whose level one reader remembers before starting afresh.
const REMEMBERED: usize = 10_000;
/// How long a customer's current level is trusted for events it has already been read
/// past: a reader behind the log learns of a reclassification within this, even before
/// the feed reaches its event. Events past what was read always read the stream again.
const LEVEL_TTL: Duration = Duration::from_secs(1);

/// A customer's level as this reader has read it from the customer's stream.
#[derive(Debug)]
struct Levels {
    /// The record folded so far by the domain's own `evolve` (personal fields erased).
    record: Option<CustomerRecord>,
    version: u64,
    /// The level the stream read so far leaves the customer at (`None`: not registered).
    current: Option<Confidentiality>,
    /// Every event of the stream below this position is folded in.
    complete_below: u64,
    read_at: Instant,
}

/// One reader's view of the log: the customers' levels and the customers of complaint
/// streams, looked up once each and kept up to date.
#[derive(Debug)]
pub struct Reader {
    ctx: Ctx,
    who: Principal,
    levels: HashMap<CustomerId, Levels>,
    /// The customer and respondent of each complaint stream seen (set at filing, they
    /// never change).
    cases: HashMap<String, CaseOf>,
    /// The reader is the current handler of the case it reads (R-P11).
    handles_case: bool,
}

/// What a complaint's filing says about whose it is.
#[derive(Debug, Clone, Default)]
struct CaseOf {
    customer: Option<CustomerId>,
    /// The staff member complained about (R-P3), if any.
    respondent: Option<String>,
}

/// An event as `who` may read it, and the payload fields withheld from them.
#[derive(Debug)]
pub struct Shown {
    pub event: RecordedEvent,
    pub redacted: Vec<String>,
}

/// What a `RequestEscalated` event tells of the complaint it became.
const ESCALATION_FIELDS: [&str; 3] = ["complaint_id", "case_number", "reason"];

impl Reader {
    pub fn new(ctx: Ctx, who: Principal) -> Self {
        Reader { ctx, who, levels: HashMap::new(), cases: HashMap::new(), handles_case: false }
    }

    /// A reader of one case that it handles (`handles`), whom R-P11 lets read its
    /// details: the feed's readers never are.
    pub fn handling(mut self, handles: bool) -> Self {
        self.handles_case = handles;
        self
    }

    /// Whether the reader reads as the current handler of the case of the events it is
    /// given next (a list's rows are each their own case).
    pub fn set_handling(&mut self, handles: bool) {
        self.handles_case = handles;
    }

    /// The payload fields of each of `events` (as stored) withheld from this reader:
    /// the same decision as [`Reader::show`], without opening anything.
    pub async fn withheld_of(
        &mut self,
        events: &[RecordedEvent],
    ) -> Result<Vec<Vec<String>>, ApiError> {
        let horizon = events.iter().map(|event| event.position).max().unwrap_or(0);
        let mut withheld = Vec::with_capacity(events.len());
        for event in events {
            withheld.push(self.redact(&mut event.clone(), horizon).await?);
        }
        Ok(withheld)
    }

    /// Whether `customer_id` is within the reader's clearance now, from the customer's
    /// stream as this reader read it (within this call, so after any read-model query
    /// it made; read now if not yet) at the merged record's governing level: a list row
    /// the read model still holds at a level the customer was just raised from is left
    /// out, not shown emptied. A customer the log does not have is not.
    pub async fn cleared_for(&mut self, customer_id: CustomerId) -> Result<bool, ApiError> {
        let level = self.level(customer_id, 0, 0).await?;
        Ok(level.is_some_and(|level| level <= self.who.clearance))
    }

    /// `events` (as stored, sealed) as this reader may read them.
    pub async fn show(&mut self, mut events: Vec<RecordedEvent>) -> Result<Vec<Shown>, ApiError> {
        let mut redacted = Vec::with_capacity(events.len());
        // Every event below the last one handed to us is committed (the store hands out
        // nothing past a write in flight): streams read now are complete below it.
        let horizon = events.iter().map(|event| event.position).max().unwrap_or(0);
        for event in &mut events {
            redacted.push(self.redact(event, horizon).await?);
        }
        // Only what is still sealed now is shown: nothing withheld is ever decrypted.
        self.ctx.commands.store().open_sealed(&mut events).await?;
        Ok(events
            .into_iter()
            .zip(redacted)
            .map(|(event, redacted)| Shown { event, redacted })
            .collect())
    }

    /// Nulls the fields `who` may not read; returns their names.
    async fn redact(
        &mut self,
        event: &mut RecordedEvent,
        horizon: u64,
    ) -> Result<Vec<String>, ApiError> {
        if personal::declared(&event.event_type).is_none() {
            return Ok(Vec::new());
        }
        let category = category_of(&event.stream_id).to_owned();
        let (subject, part) = match category.as_str() {
            "customer" => (customer_of(&event.stream_id), PartInCase::None),
            // A request is read like a case: its customer from its first event, by its
            // agent only when reading it as such (the feed's readers never are).
            "complaint" | "request" => {
                let case = self.case_of(event).await?;
                // R-P4: the respondent reads nothing of their own case, in any role. The
                // feed serves services and compliance, never a case's handler.
                let respondent = case.respondent.as_deref() == Some(self.who.id.as_str());
                let part = if respondent {
                    PartInCase::Respondent
                } else if self.handles_case {
                    PartInCase::Handler
                } else {
                    PartInCase::None
                };
                (case.customer, part)
            }
            _ => (None, PartInCase::None),
        };
        let level = match subject {
            Some(customer_id) => self.level(customer_id, event.position, horizon).await?,
            None => None,
        };
        // R-P4 (issue 22 F5): a request's escalation names the complaint it became; to
        // that complaint's respondent it names nothing of it.
        let against_reader = event.event_type == "RequestEscalated"
            && self.escalated_against_reader(&event.payload).await?;
        let referrer = event.payload.get("referred_by").and_then(Value::as_str).map(str::to_owned);
        let referrer_hidden = match referrer {
            Some(referrer) => !self.may_know_of(&referrer, horizon).await?,
            None => false,
        };
        let Value::Object(fields) = &mut event.payload else { return Ok(Vec::new()) };
        let mut redacted = Vec::new();
        for (field, value) in fields.iter_mut() {
            let kind = personal::kind(&event.event_type, field);
            let hidden = (field == "referred_by" && referrer_hidden)
                || (against_reader && ESCALATION_FIELDS.contains(&field.as_str()));
            if hidden || !access::may_read(&self.who, &category, kind, level, part) {
                *value = Value::Null;
                redacted.push(field.clone());
            } else if let (Some(label), Value::String(stored)) =
                (taxonomy_label(&event.event_type, field), &*value)
            {
                // R-P3: a legacy event's prose in a code field is shown as `unlisted`.
                let shown = label(stored).to_owned();
                *value = Value::String(shown);
            }
        }
        redacted.sort();
        Ok(redacted)
    }

    /// R-C6: whether the caller may know of `customer` (a referrer named in another
    /// customer's event): one above their clearance is as unknown as one never registered.
    async fn may_know_of(&mut self, customer: &str, horizon: u64) -> Result<bool, ApiError> {
        let Ok(customer_id) = customer.parse::<CustomerId>() else { return Ok(false) };
        let level = self.level(customer_id, horizon, horizon).await?;
        let kind = personal::kind("CustomerRegistered", "referred_by");
        Ok(level.is_some()
            && access::may_read(&self.who, "customer", kind, level, PartInCase::None))
    }

    /// Whether the complaint a `RequestEscalated` payload names is against the reader.
    async fn escalated_against_reader(&mut self, payload: &Value) -> Result<bool, ApiError> {
        let Some(complaint) = payload.get("complaint_id").and_then(Value::as_str) else {
            return Ok(false);
        };
        let case = self.filed(&format!("complaint-{complaint}"), None).await?;
        Ok(case.respondent.as_deref() == Some(self.who.id.as_str()))
    }

    /// Whose the complaint of a complaint stream's event is, from its filing.
    async fn case_of(&mut self, event: &RecordedEvent) -> Result<CaseOf, ApiError> {
        let first = (event.stream_version == 1).then_some(&event.payload);
        self.filed(&event.stream_id.clone(), first).await
    }

    /// Whose the case (or request) of `stream_id` is, from its first event (`first`, if
    /// the caller has it).
    async fn filed(&mut self, stream_id: &str, first: Option<&Value>) -> Result<CaseOf, ApiError> {
        if let Some(known) = self.cases.get(stream_id) {
            return Ok(known.clone());
        }
        let filed = match first {
            Some(payload) => Some(payload.clone()),
            None => {
                let first = self
                    .ctx
                    .commands
                    .store()
                    .read_stream(&stream(stream_id.to_owned())?, 1, Direction::Forward, 1)
                    .await?;
                first.into_iter().next().map(|first| first.payload)
            }
        };
        let field = |name: &str| {
            filed.as_ref().and_then(|payload| Some(payload.get(name)?.as_str()?.to_owned()))
        };
        let case = CaseOf {
            customer: field("customer_id").and_then(|id| id.parse().ok()),
            respondent: field("respondent"),
        };
        if self.cases.len() >= REMEMBERED {
            self.cases.clear();
        }
        self.cases.insert(stream_id.to_owned(), case.clone());
        Ok(case)
    }

    /// The level the event at `position` about `customer_id` is read at: the customer's
    /// current one, read again for any event past what this reader has read of the
    /// stream; `None` when the log does not have the customer (so nothing is shown).
    async fn level(
        &mut self,
        customer_id: CustomerId,
        position: u64,
        horizon: u64,
    ) -> Result<Option<Confidentiality>, ApiError> {
        let fresh = self.levels.get(&customer_id).is_some_and(|levels| {
            position < levels.complete_below && levels.read_at.elapsed() < LEVEL_TTL
        });
        if !fresh {
            self.read_levels(customer_id, horizon).await?;
        }
        let Some(levels) = self.levels.get(&customer_id) else { return Ok(None) };
        match (&levels.record, levels.current) {
            // A merged duplicate's whole history is read at its survivor's level, as every
            // access check and read model reads it ([`Ctx::governing_level`]): a merge
            // never lowers a level (R-C6), and the survivor's classifier governs both.
            (Some(record), Some(_)) if record.merged_into.is_some() => {
                let record = record.clone();
                Ok(Some(self.ctx.governing_level(&record).await?))
            }
            _ => Ok(levels.current),
        }
    }

    /// Folds the customer's events appended since last read into their levels.
    async fn read_levels(&mut self, customer_id: CustomerId, horizon: u64) -> Result<(), ApiError> {
        if self.levels.len() >= REMEMBERED && !self.levels.contains_key(&customer_id) {
            self.levels.clear();
        }
        let levels = self.levels.entry(customer_id).or_insert_with(|| Levels {
            record: None,
            version: 0,
            current: None,
            complete_below: 0,
            read_at: Instant::now(),
        });
        let stream = stream(customer_id.stream_name())?;
        let store = self.ctx.commands.store();
        let mut tail =
            store.read_stream(&stream, levels.version + 1, Direction::Forward, usize::MAX).await?;
        kefu_event_store::show_erased(&mut tail);
        for (recorded, event) in tail.iter().zip(decode::<<Customer as Aggregate>::Event>(&tail)?) {
            let record = Customer::evolve(levels.record.take(), &event);
            if let Some(record) = &record {
                levels.current = Some(record.confidentiality);
            }
            levels.record = record;
            levels.version = recorded.stream_version;
            levels.complete_below = levels.complete_below.max(recorded.position + 1);
        }
        levels.complete_below = levels.complete_below.max(horizon.saturating_add(1));
        levels.read_at = Instant::now();
        Ok(())
    }
}

/// The customer a customer stream is about.
fn customer_of(stream_id: &str) -> Option<CustomerId> {
    stream_id.split_once('-').and_then(|(_, key)| key.parse().ok())
}

/// How a code field of the taxonomy reads (R-P3), for the event types that carry one.
fn taxonomy_label(event_type: &str, field: &str) -> Option<fn(&str) -> &str> {
    match (event_type, field) {
        ("ComplaintFiled", "category") => Some(kefu_domain::taxonomy::category_label),
        ("ComplaintFiled", "cause") => Some(kefu_domain::taxonomy::cause_label),
        ("RequestReceived", "category") => Some(kefu_domain::taxonomy::category_label),
        ("CustomerRegistered", "source_channel") => {
            Some(kefu_domain::taxonomy::source_channel_label)
        }
        _ => None,
    }
}
