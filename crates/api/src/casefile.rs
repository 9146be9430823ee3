//! A case's compliance file, shared by `AuditService` and the `kefu case` verbs: replay,
//! state as of a moment, hash-chain verification, a self-contained export, and the
//! record of every such inspection (R-P11).
//!
//! Case numbers resolve through the yearly register stream, not the read models, so an
//! audit never depends on a projection being current: the register's version N is the
//! issue of number N (see `kefu_domain::case_register`).

use chrono::{DateTime, Utc};
use kefu_domain::audit::{self, AuditEvent, CaseInspected, Inspection};
use kefu_domain::case_register::{self, CaseRegisterEvent};
use kefu_domain::complaint::{Case, Complaint, ComplaintEvent, Implementation, Material};
use kefu_domain::{Aggregate, CaseNumber, ComplaintId, DomainEvent};
use kefu_event_store::{
    verify_links, Direction, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
    StoredLink, Verification,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commands::{decode, stream, Clock, Commands};
use crate::error::ApiError;
use crate::feed::Reader;
use crate::withheld::Withheld;

/// The format tag of exported dossiers.
pub const DOSSIER_FORMAT: &str = "kefu-case-dossier/1";

/// Who inspects a case, as recorded in the inspection's metadata.
#[derive(Debug, Clone)]
pub struct Inspector {
    pub actor: String,
    pub roles: Vec<String>,
    /// `grpc`, `console` or `cli`.
    pub source: &'static str,
}

/// A moment of a case's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// After this stream version (1 is the filing).
    Version(u64),
    /// Everything recorded at or before this instant.
    Time(DateTime<Utc>),
}

/// The case as it stood at a [`Point`].
#[derive(Debug, Clone)]
pub struct CaseAsOf {
    pub case: Case,
    pub version: u64,
    pub recorded_at: DateTime<Utc>,
    /// The events folded into `case`, opened.
    pub events: Vec<RecordedEvent>,
}

/// A case's complete, self-verifying record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dossier {
    pub format: String,
    pub complaint_id: String,
    pub case_number: String,
    pub stream_id: String,
    pub exported_at: DateTime<Utc>,
    pub exported_by: String,
    pub verification: DossierVerification,
    /// R-P2: every material of the case (superseded ones too), each with the SHA-256
    /// the caller stated, so an auditor can check the documents held elsewhere (kefu
    /// keeps none). After an erasure (R-C8) references and digests read `[erased]`.
    #[serde(default)]
    pub materials: Vec<Material>,
    /// R-P9: every implementation recorded, in every round, in order.
    #[serde(default)]
    pub implementations: Vec<Implementation>,
    pub entries: Vec<DossierEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierVerification {
    pub intact: bool,
    pub events: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&Verification> for DossierVerification {
    fn from(verification: &Verification) -> Self {
        match verification {
            Verification::Intact { events, head_hash } => DossierVerification {
                intact: true,
                events: *events,
                head_hash: Some(hex::encode(head_hash)),
                first_bad_version: None,
                reason: None,
            },
            Verification::Broken { version, reason } => DossierVerification {
                intact: false,
                events: version.saturating_sub(1),
                head_hash: None,
                first_bad_version: Some(*version),
                reason: Some(reason.to_string()),
            },
        }
    }
}

/// One event of a dossier: as stored and hashed, as read, and the state it led to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierEntry {
    pub position: u64,
    pub recorded_at: DateTime<Utc>,
    pub event_type: String,
    pub metadata: Value,
    /// The payload with personal fields opened, or `[erased]` after R-C8.
    pub payload: Value,
    /// The row exactly as hashed (personal fields sealed): re-check with [`verify_links`].
    /// A row with fields withheld from the exporter holds them null too, so it no longer
    /// re-checks (the dossier's `verification` is of the rows as stored).
    pub stored: StoredLink,
    /// The state after this event; fields withheld from the exporter are null.
    pub state_after: Value,
    /// Payload fields withheld from the exporter (R-C6, as the event feed withholds
    /// them): null in `payload` and in `stored`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

impl Dossier {
    /// Re-checks the exported chain from the dossier alone.
    pub fn verify(&self) -> Verification {
        let links: Vec<StoredLink> = self.entries.iter().map(|e| e.stored.clone()).collect();
        verify_links(&self.stream_id, &links)
    }
}

/// The compliance view of the log.
#[derive(Debug, Clone)]
pub struct CaseFiles {
    commands: Commands,
}

impl CaseFiles {
    pub(crate) fn new(commands: Commands) -> Self {
        CaseFiles { commands }
    }

    /// Over the log of `store`, with `clock` stamping inspections.
    pub fn open(store: EventStore, clock: Clock) -> Self {
        CaseFiles { commands: Commands::new(store, clock) }
    }

    /// A complaint named by its id or its case number (`YYYY-NNNNNN`).
    pub async fn resolve(&self, key: &str) -> Result<ComplaintId, ApiError> {
        resolve(&self.commands, key).await
    }

    /// Every event of the case, in order, with personal fields opened.
    async fn history(&self, id: ComplaintId) -> Result<Vec<RecordedEvent>, ApiError> {
        let history = self
            .commands
            .read(&stream(id.stream_name())?, 1, Direction::Forward, usize::MAX)
            .await?;
        if history.is_empty() {
            return Err(ApiError::NotFound { what: "complaint", id: id.to_string() });
        }
        Ok(history)
    }

    /// Records that `who` inspected the case; the inspection fails if this fails.
    async fn record(
        &self,
        id: ComplaintId,
        history: &[RecordedEvent],
        inspection: Inspection,
        detail: Option<String>,
        who: &Inspector,
    ) -> Result<(), ApiError> {
        let case_number = match decode::<ComplaintEvent>(&history[..1]) {
            Ok(events) => match events.into_iter().next() {
                Some(ComplaintEvent::ComplaintFiled(filed)) => Some(filed.case_number),
                _ => None,
            },
            Err(_) => None,
        };
        let event: AuditEvent = CaseInspected {
            complaint_id: id,
            case_number,
            inspection,
            detail,
            inspected_at: self.commands.now(),
        }
        .into();
        let metadata = Metadata {
            actor: Some(who.actor.clone()),
            roles: who.roles.clone(),
            source: Some(who.source.to_owned()),
            ..Metadata::default()
        };
        let new = NewEvent::new(
            uuid::Uuid::now_v7(),
            event.event_type(),
            event.schema_version(),
            event.to_payload(),
        );
        let audit_stream = stream(audit::stream_name(id))?;
        self.commands
            .store()
            .append(&audit_stream, ExpectedVersion::Any, &[new], &metadata)
            .await?;
        tracing::info!(
            actor = %who.actor,
            complaint = %id,
            inspection = inspection.as_str(),
            "case inspected"
        );
        Ok(())
    }

    /// The case's events, recorded as a replay by `who`.
    pub async fn replay(&self, key: &str, who: &Inspector) -> Result<Vec<RecordedEvent>, ApiError> {
        let id = self.resolve(key).await?;
        let history = self.history(id).await?;
        self.record(id, &history, Inspection::Replay, None, who).await?;
        Ok(history)
    }

    /// The case folded up to `point`.
    pub async fn as_of(
        &self,
        key: &str,
        point: Point,
        who: &Inspector,
    ) -> Result<CaseAsOf, ApiError> {
        let id = self.resolve(key).await?;
        let history = self.history(id).await?;
        let upto: Vec<RecordedEvent> = match point {
            Point::Version(version) => {
                if version == 0 || version > history.len() as u64 {
                    return Err(ApiError::field(
                        "version",
                        format!("must be from 1 to {} (the case's last version)", history.len()),
                    ));
                }
                history.iter().take_while(|e| e.stream_version <= version).cloned().collect()
            }
            Point::Time(at) => {
                history.iter().take_while(|e| e.recorded_at <= at).cloned().collect()
            }
        };
        let Some(last) = upto.last() else {
            return Err(ApiError::NotFound {
                what: "complaint at that time",
                id: format!("{key} (filed later)"),
            });
        };
        let (version, recorded_at) = (last.stream_version, last.recorded_at);
        let detail = match point {
            Point::Version(version) => format!("version {version}"),
            Point::Time(at) => format!("as of {}", at.to_rfc3339()),
        };
        self.record(id, &history, Inspection::AsOf, Some(detail), who).await?;
        let case = Complaint::fold(&decode::<ComplaintEvent>(&upto)?).ok_or_else(|| {
            ApiError::Internal("a case stream does not start with its filing".into())
        })?;
        Ok(CaseAsOf { case, version, recorded_at, events: upto })
    }

    /// Recomputes the case's hash chain.
    pub async fn verify(&self, key: &str, who: &Inspector) -> Result<Verification, ApiError> {
        let id = self.resolve(key).await?;
        let history = self.history(id).await?;
        self.record(id, &history, Inspection::Verify, None, who).await?;
        Ok(self.commands.store().verify_stream(&stream(id.stream_name())?).await?)
    }

    /// The case's dossier (see [`Dossier`]), in full (the operator's `kefu case export`).
    pub async fn export(&self, key: &str, who: &Inspector) -> Result<Dossier, ApiError> {
        self.export_as(key, who, None).await
    }

    /// The case's dossier as `reader` may read each of its events, or in full.
    pub(crate) async fn export_as(
        &self,
        key: &str,
        who: &Inspector,
        reader: Option<&mut Reader>,
    ) -> Result<Dossier, ApiError> {
        let id = self.resolve(key).await?;
        let history = self.history(id).await?;
        self.record(id, &history, Inspection::Export, None, who).await?;
        let case_stream = stream(id.stream_name())?;
        let links = self.commands.store().stream_links(&case_stream).await?;
        let verification = verify_links(case_stream.as_str(), &links);
        let mut state = None;
        let mut entries = Vec::with_capacity(history.len());
        let mut case_number = String::new();
        let mut shown = match reader {
            Some(reader) => Some(reader.show(history.clone()).await?.into_iter()),
            None => None,
        };
        let mut withheld = Withheld::default();
        let mut implementations = Vec::new();
        for (recorded, mut stored) in history.into_iter().zip(links) {
            let seen = shown.as_mut().and_then(Iterator::next);
            let withheld_here = seen.as_ref().is_some_and(|seen| !seen.redacted.is_empty());
            // A tampered row may not decode; the dossier still shows it, with the reason.
            let state_after = match decode::<ComplaintEvent>(std::slice::from_ref(&recorded)) {
                Ok(events) => {
                    for event in &events {
                        state = Complaint::evolve(state, event);
                        match event {
                            ComplaintEvent::ComplaintFiled(filed) => {
                                case_number = filed.case_number.to_string();
                            }
                            ComplaintEvent::ImplementationRecorded(e) if !withheld_here => {
                                implementations.push(Implementation {
                                    by: e.by.clone(),
                                    summary: e.summary.clone(),
                                    implemented_at: e.implemented_at,
                                    recorded_at: e.recorded_at,
                                });
                            }
                            _ => {}
                        }
                    }
                    serde_json::to_value(&state).unwrap_or(Value::Null)
                }
                Err(error) => serde_json::json!({ "undecodable": error.to_string() }),
            };
            let (payload, redacted) = match seen {
                Some(seen) => {
                    withheld.note(&seen);
                    (seen.event.payload, seen.redacted)
                }
                None => (recorded.payload, Vec::new()),
            };
            let mut state_after = state_after;
            withheld.state(&mut state_after);
            if !redacted.is_empty() {
                stored.payload = without(&stored.payload, &redacted)?;
            }
            entries.push(DossierEntry {
                position: recorded.position,
                recorded_at: recorded.recorded_at,
                event_type: recorded.event_type,
                metadata: serde_json::to_value(&recorded.metadata).unwrap_or(Value::Null),
                payload,
                stored,
                state_after,
                redacted,
            });
        }
        Ok(Dossier {
            format: DOSSIER_FORMAT.to_owned(),
            complaint_id: id.to_string(),
            case_number,
            stream_id: case_stream.to_string(),
            exported_at: self.commands.now(),
            exported_by: who.actor.clone(),
            verification: DossierVerification::from(&verification),
            materials: state
                .map(|case: Case| case.materials)
                .unwrap_or_default()
                .into_iter()
                .map(|mut material| {
                    // R-C6: one whose event the feed withholds is listed, its
                    // recorded fields withheld like the event's.
                    withheld.material(&mut material);
                    material
                })
                .collect(),
            implementations,
            entries,
        })
    }
}

/// A stored payload's text with `fields` null.
fn without(stored: &str, fields: &[String]) -> Result<String, ApiError> {
    let mut payload: Value = serde_json::from_str(stored)
        .map_err(|error| ApiError::Internal(format!("a stored payload is not JSON: {error}")))?;
    if let Value::Object(object) = &mut payload {
        for field in fields {
            if let Some(value) = object.get_mut(field) {
                *value = Value::Null;
            }
        }
    }
    Ok(payload.to_string())
}

/// A complaint named by its id or its case number (`YYYY-NNNNNN`).
pub(crate) async fn resolve(commands: &Commands, key: &str) -> Result<ComplaintId, ApiError> {
    let key = key.trim();
    if let Ok(id) = key.parse() {
        return Ok(id);
    }
    let not_found = || ApiError::NotFound { what: "complaint", id: key.to_owned() };
    let number: CaseNumber = key.parse().map_err(|_| {
        ApiError::field("complaint", "must be a complaint id or a case number YYYY-NNNNNN")
    })?;
    let register = stream(case_register::stream_name(number.year()))?;
    let issued =
        commands.read(&register, u64::from(number.sequence()), Direction::Forward, 1).await?;
    match decode::<CaseRegisterEvent>(&issued)?.into_iter().next() {
        Some(CaseRegisterEvent::CaseNumberIssued(issued)) if issued.case_number == number => {
            Ok(issued.complaint_id)
        }
        _ => Err(not_found()),
    }
}
