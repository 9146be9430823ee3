//! Events as a caller may read them: every field of every event shown in clear or
//! redacted by the access table's field dimension ([`access::may_read`]: R-C6 by the
//! customer's current level, R-P11 by role), and sealed personal fields opened only
//! where shown. The event feed and case replays read the log through here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kefu_domain::personal;
use kefu_domain::{Confidentiality, CustomerId};
use kefu_event_store::{category_of, Direction, RecordedEvent};
use serde_json::Value;

use crate::access;
use crate::auth::Principal;
use crate::commands::stream;
use crate::error::ApiError;
use crate::services::Ctx;

/// Customers whose level one reader remembers before starting afresh.
const REMEMBERED: usize = 10_000;
/// How long a remembered level is trusted: a live reader behind the log learns of a
/// reclassification within this, even before the feed reaches its event.
const LEVEL_TTL: Duration = Duration::from_secs(1);

/// One reader's view of the log: the customers' current levels and the customers of
/// complaint streams, looked up once each.
#[derive(Debug)]
pub struct Reader {
    ctx: Ctx,
    who: Principal,
    /// A customer's current level (`None`: the log does not have them), and when read.
    levels: HashMap<CustomerId, (Option<Confidentiality>, Instant)>,
    /// The customer of each complaint stream seen (it never changes).
    case_customers: HashMap<String, Option<CustomerId>>,
}

/// An event as `who` may read it, and the payload fields withheld from them.
#[derive(Debug)]
pub struct Shown {
    pub event: RecordedEvent,
    pub redacted: Vec<String>,
}

impl Reader {
    pub fn new(ctx: Ctx, who: Principal) -> Self {
        Reader { ctx, who, levels: HashMap::new(), case_customers: HashMap::new() }
    }

    /// `events` (as stored, sealed) as this reader may read them.
    pub async fn show(&mut self, mut events: Vec<RecordedEvent>) -> Result<Vec<Shown>, ApiError> {
        let mut redacted = Vec::with_capacity(events.len());
        for event in &mut events {
            redacted.push(self.redact(event).await?);
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
    async fn redact(&mut self, event: &mut RecordedEvent) -> Result<Vec<String>, ApiError> {
        if personal::declared(&event.event_type).is_none() {
            return Ok(Vec::new());
        }
        let category = category_of(&event.stream_id).to_owned();
        let subject = self.subject(event).await?;
        let level = match subject {
            Some(customer_id) => self.level(customer_id).await?,
            None => None,
        };
        // A later change of level applies from here on (this reader may be live).
        if category == "customer"
            && matches!(event.event_type.as_str(), "CustomerUpdated" | "CustomerMerged")
        {
            if let Some(customer_id) = subject {
                self.levels.remove(&customer_id);
            }
        }
        let Value::Object(fields) = &mut event.payload else { return Ok(Vec::new()) };
        let mut redacted = Vec::new();
        for (field, value) in fields.iter_mut() {
            let kind = personal::kind(&event.event_type, field);
            // The feed serves services and compliance, never a case's handler.
            if !access::may_read(&self.who, &category, kind, level, false) {
                *value = Value::Null;
                redacted.push(field.clone());
            }
        }
        redacted.sort();
        Ok(redacted)
    }

    /// The customer an event of a customer or complaint stream is about.
    async fn subject(&mut self, event: &RecordedEvent) -> Result<Option<CustomerId>, ApiError> {
        let key = event.stream_id.split_once('-').map_or("", |(_, key)| key);
        match category_of(&event.stream_id) {
            "customer" => Ok(key.parse().ok()),
            "complaint" => {
                if let Some(known) = self.case_customers.get(&event.stream_id) {
                    return Ok(*known);
                }
                let filed = if event.stream_version == 1 {
                    Some(event.payload.clone())
                } else {
                    let first = self
                        .ctx
                        .commands
                        .store()
                        .read_stream(&stream(event.stream_id.clone())?, 1, Direction::Forward, 1)
                        .await?;
                    first.into_iter().next().map(|first| first.payload)
                };
                let customer =
                    filed.and_then(|payload| payload.get("customer_id")?.as_str()?.parse().ok());
                if self.case_customers.len() >= REMEMBERED {
                    self.case_customers.clear();
                }
                self.case_customers.insert(event.stream_id.clone(), customer);
                Ok(customer)
            }
            _ => Ok(None),
        }
    }

    async fn level(
        &mut self,
        customer_id: CustomerId,
    ) -> Result<Option<Confidentiality>, ApiError> {
        if let Some((level, read_at)) = self.levels.get(&customer_id) {
            if read_at.elapsed() < LEVEL_TTL {
                return Ok(*level);
            }
        }
        let (record, _, _) = self
            .ctx
            .commands
            .load_unopened::<kefu_domain::Customer>(&stream(customer_id.stream_name())?)
            .await?;
        // A merged duplicate's history is read at its survivor's level.
        let level = match record {
            Some(record) => Some(self.ctx.governing_level(&record).await?),
            None => None,
        };
        if self.levels.len() >= REMEMBERED {
            self.levels.clear();
        }
        self.levels.insert(customer_id, (level, Instant::now()));
        Ok(level)
    }
}
