//! Command handling: load the stream, `decide`, append with the loaded version; retry on
//! a concurrent change; answer a retried request with its first answer.
//!
//! Event ids are derived from the caller and its `request_id` (UUID v5), so the same
//! request always produces the same ids. A command is tried as new; whenever it writes
//! nothing now (a no-op, a repeat, a refusal), the handler looks those ids up: if they
//! are stored, the request already happened and its original result is returned — even
//! when deciding again would now be refused (a retried `CloseComplaint` on a closed case
//! still answers with the close).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use kefu_domain::{personal, Aggregate, DomainError, DomainEvent};
use kefu_event_store::{
    Append, AppendResult, Condition, DataKey, Direction, EventStore, ExpectedVersion, Metadata,
    NewEvent, RecordedEvent, StoreError, StreamId, INSTALLATION_SUBJECT,
};
use uuid::Uuid;

use crate::auth::Principal;
use crate::call::CallContext;
use crate::error::ApiError;

/// The time source: the wall clock in production, a fixed one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Namespace of derived event ids (a fixed random UUID; never change it).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6b65_6675_2d65_7665_6e74_2d69_6473_0001);
/// The most events one command ever writes to one stream.
const MAX_EVENTS_PER_COMMAND: usize = 4;
/// How often a command is re-decided after losing a race, when the caller gave no
/// `expected_version`.
const CONFLICT_RETRIES: usize = 8;
/// Every tag a request may write under. A key used under one tag and then presented
/// under an unrelated one is a reused key (see [`Commands::repeated`]).
const TAGS: [&str; 6] = ["", "register", "complaint", "merged", "absorbed", "escalated"];
/// Longest accepted `request_id`.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of the `index`th event a principal's request writes under `tag`: the same
/// request always produces the same ids (UUID v5).
pub fn event_id(principal: &str, request_id: &str, tag: &str, index: usize) -> Uuid {
    let name = format!("{principal}\n{request_id}\n{tag}\n{index}");
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes())
}

/// What a request was, so that a key presented again with another request is refused
/// instead of answered with the first request's result (`REQUEST_ID_REUSED`).
///
/// In memory it is the RPC and the SHA-256 of the whole encoded message (request id and
/// expectation included: a retry resends the same message). That digest is never stored:
/// unkeyed, it would let whoever holds the log confirm a guessed request (a name, a
/// phone, a note), even after the person is forgotten (R-C8). What the events record is
/// keyed ([`Fingerprint::keyed`]): `<rpc>:<subject>:<tag>`, the tag a
/// [`DataKey::digest`] under the key of the stream's data subject, which erasure
/// destroys, or under the installation's key for streams without one (staff, case
/// register). docs/compliance.md has the construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    rpc: &'static str,
    /// SHA-256 of the encoded message; `None` for [`Fingerprint::internal`].
    digest: Option<[u8; 32]>,
}

/// The RPC whose fingerprint outlives its subject's key (see
/// `Commands::recorded_fingerprint`).
pub const FORGET_CUSTOMER: &str = "ForgetCustomer";

/// The purpose of the keyed digests that fingerprints are (see [`DataKey::digest`]).
const FINGERPRINT_PURPOSE: &str = "request-fingerprint";

/// A recorded fingerprint, as read back.
#[derive(Debug, PartialEq, Eq)]
enum Recorded<'a> {
    /// `<what>`: a command a request issues on its own behalf ([`Fingerprint::internal`]).
    Internal(&'a str),
    /// `<rpc>:<subject>:<tag>`.
    Keyed { rpc: &'a str, subject: &'a str, tag: &'a str },
    /// `<rpc>:<digest>`: unkeyed, as recorded before fingerprints were keyed.
    Unkeyed { rpc: &'a str },
}

impl<'a> Recorded<'a> {
    fn parse(recorded: &'a str) -> Self {
        let mut parts = recorded.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(rpc), Some(subject), Some(tag)) => Recorded::Keyed { rpc, subject, tag },
            (Some(rpc), Some(_), None) => Recorded::Unkeyed { rpc },
            _ => Recorded::Internal(recorded),
        }
    }
}

impl Fingerprint {
    /// The fingerprint of `message`, a request of `rpc`. Protobuf encoding is
    /// deterministic for our messages (no maps), so a retry matches.
    pub fn of(rpc: &'static str, message: &impl prost::Message) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(message.encode_to_vec());
        Fingerprint { rpc, digest: Some(digest.into()) }
    }

    /// For the commands a request issues on its own behalf under derived keys (a
    /// departure's handovers, an archive's cases): what they are is in the key.
    pub fn internal(what: &'static str) -> Self {
        Fingerprint { rpc: what, digest: None }
    }

    /// What the events record, made with `key` (the data subject's or the installation's).
    pub fn keyed(&self, key: &DataKey) -> String {
        match self.tag(key) {
            Some(tag) => format!("{}:{}:{tag}", self.rpc, key.subject()),
            None => self.rpc.to_owned(),
        }
    }

    /// The first 16 bytes, in hex, of the keyed digest of `rpc ‖ "\n" ‖ digest`.
    fn tag(&self, key: &DataKey) -> Option<String> {
        let digest = self.digest?;
        let parts: [&[u8]; 3] = [self.rpc.as_bytes(), b"\n", &digest];
        Some(hex::encode(&key.digest(FINGERPRINT_PURPOSE, &parts)[..16]))
    }
}

/// Who asks, under which idempotency key, with which expectation.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub request_id: &'a str,
    /// What the request is (see [`Fingerprint`]).
    pub fingerprint: Fingerprint,
    /// `tag` separates the writes of one request to several streams.
    pub tag: &'static str,
    pub expected_version: Option<u64>,
    /// The capacity the actor acts in, recorded in the metadata (signing).
    pub capacity: Option<String>,
    /// The call's trace, correlation and causation ids, for the events' metadata.
    pub call: CallContext,
}

impl<'a> Request<'a> {
    pub fn new(
        principal: &'a Principal,
        fingerprint: Fingerprint,
        request_id: &'a str,
        expected_version: Option<u64>,
    ) -> Result<Self, ApiError> {
        let trimmed = request_id.trim();
        if trimmed.is_empty() {
            return Err(ApiError::field(
                "request_id",
                "is required (an idempotency key, e.g. a UUID)",
            ));
        }
        if request_id.len() > MAX_REQUEST_ID_LEN || request_id.chars().any(char::is_control) {
            return Err(ApiError::field("request_id", "must be at most 128 printable characters"));
        }
        if expected_version.is_some_and(|version| i64::try_from(version).is_err()) {
            return Err(ApiError::field("expected_version", "is beyond any stream's version"));
        }
        // The caller's key, a field of the call's span (its principal is already there:
        // `auth::principal` put it). A field recorded twice would print twice.
        tracing::Span::current().record("request_id", request_id);
        Ok(Self::derived(principal, fingerprint, request_id, expected_version))
    }

    /// A request the server derives from the caller's (one per item of a batch, under
    /// a key built from the caller's): checked by the server, not noted in the span.
    pub fn derived(
        principal: &'a Principal,
        fingerprint: Fingerprint,
        request_id: &'a str,
        expected_version: Option<u64>,
    ) -> Self {
        let call = crate::call::current();
        Request {
            principal,
            request_id,
            fingerprint,
            tag: "",
            expected_version,
            capacity: None,
            call,
        }
    }

    pub fn tagged(&self, tag: &'static str) -> Self {
        Request { tag, ..self.clone() }
    }

    fn event_id(&self, index: usize) -> Uuid {
        self.tagged_event_id(self.tag, index)
    }

    fn tagged_event_id(&self, tag: &str, index: usize) -> Uuid {
        event_id(&self.principal.id, self.request_id, tag, index)
    }

    /// The first id this request's key writes under each tag unrelated to this one:
    /// stored, it means the key was used for another request (every request that
    /// writes anything writes its first event).
    pub fn unrelated_ids(&self) -> Vec<Uuid> {
        TAGS.iter()
            .filter(|tag| !self.related(tag))
            .map(|tag| self.tagged_event_id(tag, 0))
            .collect()
    }

    /// Tags one request legitimately writes under together (a filing issues a case
    /// number in the register, then files the complaint).
    fn related(&self, tag: &str) -> bool {
        tag == self.tag
            || matches!(
                (tag, self.tag),
                ("register", "complaint")
                    | ("complaint", "register")
                    // An escalation numbers and files a complaint and marks its request.
                    | ("escalated", "register" | "complaint")
                    | ("register" | "complaint", "escalated")
                    // A merge writes the duplicate's and the survivor's streams.
                    | ("merged", "absorbed")
                    | ("absorbed", "merged")
            )
    }

    /// The metadata of this request's events; `fingerprint` as [`Fingerprint::keyed`].
    fn metadata(&self, fingerprint: String) -> Metadata {
        Metadata {
            actor: Some(self.principal.id.clone()),
            roles: self
                .principal
                .roles
                .iter()
                .map(|role| format!("{role:?}").to_lowercase())
                .collect(),
            capacity: self.capacity.clone(),
            request_id: Some(self.request_id.to_owned()),
            request_fingerprint: Some(fingerprint),
            correlation_id: self.call.correlation_id.clone(),
            // Named by the caller, or else the command itself caused its events.
            causation_id: Some(
                self.call.causation_id.clone().unwrap_or_else(|| self.request_id.to_owned()),
            ),
            trace_id: self.call.trace_id.clone(),
            ..Metadata::default()
        }
    }
}

/// What a command wrote (or, for a retry, had written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub stream: String,
    pub version: u64,
    pub position: u64,
    /// The event types written now; empty for a repeat or a no-op.
    pub event_types: Vec<&'static str>,
    /// True when the request's events were stored already (a retry): nothing was
    /// written now, and `stream`/`version`/`position` say where they are.
    pub repeated: bool,
}

impl Written {
    /// Logs an answer that repeats a request's first one: nothing was written now.
    /// (Who asked and under which key are fields of the call's span.)
    pub fn log_repeat(&self) {
        tracing::info!(
            stream = %self.stream,
            version = self.version,
            position = self.position,
            "request repeated: nothing written, answered with its first result"
        );
    }
}

/// What a request's key already wrote, by tag.
#[derive(Debug, Clone)]
pub struct Lookup {
    found: Vec<(&'static str, kefu_event_store::EventLocation)>,
}

impl Lookup {
    /// What was written under `tag`, if anything; written to two streams is a reused key.
    pub fn written(&self, tag: &str, request: &Request<'_>) -> Result<Option<Written>, ApiError> {
        let own: Vec<_> =
            self.found.iter().filter(|(t, _)| *t == tag).map(|(_, location)| location).collect();
        let Some(first) = own.first() else { return Ok(None) };
        if own.iter().any(|location| location.stream_id != first.stream_id) {
            return Err(ApiError::RequestIdReused(request.request_id.to_owned()));
        }
        let version = own.iter().map(|l| l.stream_version).max().unwrap_or_default();
        let position = own.iter().map(|l| l.position).max().unwrap_or_default();
        Ok(Some(Written {
            stream: first.stream_id.clone(),
            version,
            position,
            event_types: Vec::new(),
            repeated: true,
        }))
    }
}

/// An append decided and sealed, waiting to be submitted ([`Commands::prepare`]).
#[derive(Debug)]
pub struct Prepared {
    append: Append,
    answer: Answer,
}

/// What a [`Prepared`] append's outcome is reported with.
#[derive(Debug)]
struct Answer {
    stream: String,
    event_types: Vec<&'static str>,
}

impl Answer {
    /// What the append wrote, counted and logged. A repeat is only noted here: the
    /// handler answers it from the lookup of its ids, which logs it
    /// ([`Commands::earlier`]).
    fn written(self, result: AppendResult) -> Written {
        let event_types = if result.repeated { Vec::new() } else { self.event_types };
        if result.repeated {
            tracing::debug!(stream = %self.stream, "append was stored already");
        } else {
            metrics::counter!("kefu_events_appended_total")
                .increment(u64::try_from(event_types.len()).unwrap_or(0));
            tracing::info!(
                stream = %self.stream,
                version = result.last_version,
                position = result.last_position,
                events = event_types.len(),
                "command applied"
            );
        }
        Written {
            stream: self.stream,
            version: result.last_version,
            position: result.last_position,
            event_types,
            repeated: result.repeated,
        }
    }
}

/// Runs commands against the log.
#[derive(Clone)]
pub struct Commands {
    store: EventStore,
    clock: Clock,
    /// Folded states of recently commanded streams (see [`Commands::load_for_command`]).
    states: Arc<std::sync::Mutex<HashMap<String, CachedState>>>,
}

/// A stream's state as of a version: the log is append-only, so it stays true and
/// only the events after it need reading.
struct CachedState {
    state: Box<dyn Any + Send + Sync>,
    version: u64,
    position: u64,
}

/// Streams whose folded state one process keeps for commands.
const STATE_CACHE: usize = 10_000;

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

impl Commands {
    pub fn new(store: EventStore, clock: Clock) -> Self {
        Commands { store, clock, states: Arc::default() }
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// The earlier result of this request (under its own tag), wherever it was written.
    /// A key the caller already used for a different request is refused.
    pub async fn earlier(&self, request: &Request<'_>) -> Result<Option<Written>, ApiError> {
        let earlier = self.lookup(request).await?.written(request.tag, request)?;
        if let Some(earlier) = &earlier {
            earlier.log_repeat();
        }
        Ok(earlier)
    }

    /// Everything this request's key wrote, under any tag (one query).
    pub async fn lookup(&self, request: &Request<'_>) -> Result<Lookup, ApiError> {
        let mut ids = Vec::with_capacity(TAGS.len() * MAX_EVENTS_PER_COMMAND);
        for tag in TAGS {
            for index in 0..MAX_EVENTS_PER_COMMAND {
                ids.push((request.tagged_event_id(tag, index), tag));
            }
        }
        let all: Vec<Uuid> = ids.iter().map(|(id, _)| *id).collect();
        let found = self.store.locate(&all).await?;
        let tag_of = |id: Uuid| {
            ids.iter().find(|(candidate, _)| *candidate == id).map_or("", |(_, tag)| *tag)
        };
        if found.iter().any(|location| !request.related(tag_of(location.event_id))) {
            return Err(ApiError::RequestIdReused(request.request_id.to_owned()));
        }
        // The same key, another request: refused, never answered with the first's
        // result. Events from before fingerprints were recorded carry none.
        let mut keys = HashMap::new();
        for location in &found {
            let Some(recorded) = location.request_fingerprint.as_deref() else { continue };
            match self.same_request(&request.fingerprint, recorded, &mut keys).await? {
                Some(true) => {}
                Some(false) => {
                    return Err(ApiError::RequestIdReused(request.request_id.to_owned()))
                }
                None => return Err(ApiError::RequestSubjectErased(request.request_id.to_owned())),
            }
        }
        Ok(Lookup {
            found: found
                .into_iter()
                .map(|location| (tag_of(location.event_id), location))
                .collect(),
        })
    }

    /// Whether `recorded` is the fingerprint of the request `fingerprint` describes;
    /// `None` when that can no longer be told: its key was destroyed (its subject was
    /// forgotten), and by design nothing can tell any more what a forgotten person's
    /// request said (R-C8). The caller refuses then (fail closed): answering with the
    /// first request's result could hide another command. Recorded unkeyed by an
    /// earlier release, only the RPC can be compared.
    async fn same_request(
        &self,
        fingerprint: &Fingerprint,
        recorded: &str,
        keys: &mut HashMap<String, Option<DataKey>>,
    ) -> Result<Option<bool>, ApiError> {
        let (rpc, subject, tag) = match Recorded::parse(recorded) {
            Recorded::Internal(what) => {
                return Ok(Some(fingerprint.digest.is_none() && what == fingerprint.rpc))
            }
            Recorded::Unkeyed { rpc } => return Ok(Some(rpc == fingerprint.rpc)),
            Recorded::Keyed { rpc, subject, tag } => (rpc, subject, tag),
        };
        if rpc != fingerprint.rpc {
            return Ok(Some(false));
        }
        let key = match keys.get(subject) {
            Some(key) => key.clone(),
            None => {
                let key = self.store.live_data_key(subject).await?;
                keys.insert(subject.to_owned(), key.clone());
                key
            }
        };
        Ok(key.map(|key| fingerprint.tag(&key).as_deref() == Some(tag)))
    }

    /// The fingerprint a write records on a stream whose data subject is `subject`:
    /// keyed with the subject's key, destroyed by erasure, or the installation's key
    /// where there is no subject. A forgotten subject's key is gone; what is still
    /// written about them then carries nothing personal (sealing refuses it), so the
    /// installation's key serves.
    async fn recorded_fingerprint(
        &self,
        fingerprint: &Fingerprint,
        subject: Option<kefu_domain::CustomerId>,
    ) -> Result<String, ApiError> {
        if fingerprint.digest.is_none() {
            return Ok(fingerprint.rpc.to_owned());
        }
        // An erasure's own request is keyed with the installation's key: its retry
        // must still be told apart from another request after the subject's key is
        // gone, and it says nothing about the person beyond their id.
        let subject = subject.filter(|_| fingerprint.rpc != FORGET_CUSTOMER);
        let key = match subject {
            Some(subject) => match self.store.data_key(&subject.to_string()).await {
                Err(StoreError::KeyDestroyed(_)) => None,
                key => Some(key?),
            },
            None => None,
        };
        let key = match key {
            Some(key) => key,
            None => self.store.data_key(INSTALLATION_SUBJECT).await?,
        };
        Ok(fingerprint.keyed(&key))
    }

    /// The earlier result of this request on `stream`, if it already happened there;
    /// a request id already used on another stream is refused.
    pub async fn repeated(
        &self,
        stream: &StreamId,
        request: &Request<'_>,
    ) -> Result<Option<Written>, ApiError> {
        match self.earlier(request).await? {
            Some(written) if written.stream != stream.as_str() => {
                Err(ApiError::RequestIdReused(request.request_id.to_owned()))
            }
            earlier => Ok(earlier),
        }
    }

    /// Loads and folds a stream: its state, version and the position of its last event.
    pub async fn load<A>(&self, stream: &StreamId) -> Result<(A::State, u64, u64), ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
    {
        let recorded = if A::STATE_FROM_LAST_EVENT {
            self.read(stream, u64::MAX, Direction::Backward, 1).await?
        } else {
            self.read(stream, 1, Direction::Forward, usize::MAX).await?
        };
        fold::<A>(&recorded)
    }

    /// [`Commands::load`] with personal fields read as erased, for decisions that never
    /// look at them (no key lookup).
    pub async fn load_unopened<A>(
        &self,
        stream: &StreamId,
    ) -> Result<(A::State, u64, u64), ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
    {
        let mut recorded =
            self.store.read_stream(stream, 1, Direction::Forward, usize::MAX).await?;
        kefu_event_store::show_erased(&mut recorded);
        fold::<A>(&recorded)
    }

    /// The state a command decides on: the cached fold of the stream plus the events
    /// appended since (usually none), so deciding costs the same at version 5 and 500.
    /// Correct across nodes: the tail is always read from the log. Reads (`Get…`) use
    /// [`Commands::load`] instead, so what they show honours an erasure at once.
    async fn load_for_command<A>(&self, stream: &StreamId) -> Result<(A::State, u64, u64), ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
        A::State: Send + Sync + 'static,
    {
        if A::STATE_FROM_LAST_EVENT {
            return self.load::<A>(stream).await;
        }
        let cached = self.states.lock().ok().and_then(|states| {
            let cached = states.get(stream.as_str())?;
            let state = cached.state.downcast_ref::<A::State>()?;
            Some((state.clone(), cached.version, cached.position))
        });
        let (mut state, mut version, mut position) = cached.unwrap_or_default();
        let tail = self.read(stream, version + 1, Direction::Forward, usize::MAX).await?;
        for event in decode::<A::Event>(&tail)? {
            state = A::evolve(state, &event);
        }
        if let Some(last) = tail.last() {
            (version, position) = (last.stream_version, last.position);
        }
        Ok((state, version, position))
    }

    fn remember<A>(&self, stream: &StreamId, state: A::State, version: u64, position: u64)
    where
        A: Aggregate,
        A::State: Send + Sync + 'static,
    {
        if let Ok(mut states) = self.states.lock() {
            if states.len() >= STATE_CACHE {
                states.clear();
            }
            let entry = CachedState { state: Box::new(state), version, position };
            states.insert(stream.to_string(), entry);
        }
    }

    /// Reads a stream with its sealed personal fields opened (or shown as erased).
    pub async fn read(
        &self,
        stream: &StreamId,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ApiError> {
        let mut recorded = self.store.read_stream(stream, from_version, direction, limit).await?;
        self.store.open_sealed(&mut recorded).await?;
        Ok(recorded)
    }

    /// The events to append, their personal fields sealed with the data subject's key
    /// (R-C8). A forgotten subject has no key any more: nothing new is recorded for them.
    async fn sealed<A>(
        &self,
        state: &A::State,
        events: &[A::Event],
        request: &Request<'_>,
    ) -> Result<Vec<NewEvent>, ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
    {
        let personal = events.iter().any(|e| !personal::fields(e.event_type()).is_empty());
        let key = match A::data_subject(state, events) {
            Some(subject) if personal => match self.store.data_key(&subject.to_string()).await {
                Err(StoreError::KeyDestroyed(_)) => {
                    return Err(DomainError::CustomerForgotten.into())
                }
                key => Some(key?),
            },
            None if personal => {
                return Err(ApiError::Internal("personal data without a data subject".into()))
            }
            _ => None,
        };
        Ok(events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut payload = e.to_payload();
                if let Some(key) = &key {
                    key.seal_fields(
                        &mut payload,
                        &personal::fields(e.event_type()),
                        personal::erased,
                    );
                }
                NewEvent::new(request.event_id(i), e.event_type(), e.schema_version(), payload)
            })
            .collect())
    }

    /// Seals and queues `events`, decided on a stream at `version`, and returns the
    /// wait for their commit. The append is queued when this returns, so a caller may
    /// release a lock before waiting and the next one can queue behind it (see
    /// `EventStore::submit`). A lost race is the caller's to retry.
    pub async fn submit<A>(
        &self,
        stream: &StreamId,
        request: &Request<'_>,
        state: &A::State,
        events: &[A::Event],
        version: u64,
    ) -> Result<impl std::future::Future<Output = Result<Written, ApiError>> + use<A>, ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
    {
        let prepared =
            self.prepare::<A>(stream, request, state, events, version, Vec::new()).await?;
        self.submit_one(prepared)
    }

    /// A group of one: the wait for its commit.
    fn submit_one(
        &self,
        prepared: Prepared,
    ) -> Result<impl std::future::Future<Output = Result<Written, ApiError>> + use<>, ApiError>
    {
        let pending = self.submit_group(vec![prepared])?;
        Ok(async move {
            let outcome = pending.await.pop();
            outcome
                .unwrap_or_else(|| Err(StoreError::CommitFailed("append unanswered".into())))
                .map_err(ApiError::from)
        })
    }

    /// `events`, decided on a stream at `version`, sealed and made an append that is
    /// written only if `conditions` hold (see [`Condition`]), for [`Commands::submit_group`].
    pub async fn prepare<A>(
        &self,
        stream: &StreamId,
        request: &Request<'_>,
        state: &A::State,
        events: &[A::Event],
        version: u64,
        conditions: Vec<Condition>,
    ) -> Result<Prepared, ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
    {
        let expected =
            if version == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(version) };
        let events_to_append = self.sealed::<A>(state, events, request).await?;
        let subject = A::data_subject(state, events);
        let fingerprint = self.recorded_fingerprint(&request.fingerprint, subject).await?;
        Ok(Prepared {
            append: Append {
                stream_id: stream.clone(),
                expected,
                events: events_to_append,
                metadata: request.metadata(fingerprint),
                conditions,
            },
            answer: Answer {
                stream: stream.to_string(),
                event_types: events.iter().map(DomainEvent::event_type).collect(),
            },
        })
    }

    /// Queues prepared appends to be written together or not at all, and returns the
    /// wait for their outcomes, one each, in order (see `EventStore::submit_group`).
    /// Outcomes keep the store's reasons, so a caller can tell the member that was
    /// refused from its partners ([`StoreError::GroupIncomplete`]).
    pub fn submit_group(
        &self,
        prepared: Vec<Prepared>,
    ) -> Result<impl std::future::Future<Output = Vec<Result<Written, StoreError>>>, ApiError> {
        let (appends, answers): (Vec<Append>, Vec<Answer>) =
            prepared.into_iter().map(|prepared| (prepared.append, prepared.answer)).unzip();
        let pending = self.store.submit_group(&appends)?;
        let started = std::time::Instant::now();
        Ok(async move {
            let outcomes = pending.await;
            let elapsed = started.elapsed().as_secs_f64();
            answers
                .into_iter()
                .zip(outcomes)
                .map(|(answer, outcome)| {
                    metrics::histogram!("kefu_append_duration_seconds").record(elapsed);
                    outcome.map(|result| answer.written(result))
                })
                .collect()
        })
    }

    /// Load → decide → append, retrying a lost race when the caller set no expectation.
    /// `command` builds the command from the current state (so it can use it).
    ///
    /// A request is almost always new, so it is tried as new first, its append
    /// conditioned on the key's other uses being absent. Only when nothing is written
    /// now (a no-op, a repeat, a refusal) are its ids looked up: a retried request gets
    /// its first answer, even where deciding again would now be refused.
    pub async fn execute<A>(
        &self,
        stream: &StreamId,
        request: &Request<'_>,
        command: impl Fn(&A::State) -> Result<A::Command, ApiError>,
    ) -> Result<Written, ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
        A::State: Send + Sync + 'static,
    {
        self.execute_if::<A>(stream, request, Vec::new(), command).await
    }

    /// [`Commands::execute`], written only while `conditions` hold: what the command
    /// read from other streams (an assignee still active) stays true until it commits.
    /// A broken condition is [`ApiError::Contended`] naming the stream that changed.
    pub async fn execute_if<A>(
        &self,
        stream: &StreamId,
        request: &Request<'_>,
        conditions: Vec<Condition>,
        command: impl Fn(&A::State) -> Result<A::Command, ApiError>,
    ) -> Result<Written, ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
        A::State: Send + Sync + 'static,
    {
        let outcome = self.attempt::<A>(stream, request, conditions, command).await;
        // Written now: a repeat or a no-op lists no event types.
        if outcome.as_ref().is_ok_and(|written| !written.event_types.is_empty()) {
            return outcome;
        }
        match self.repeated(stream, request).await? {
            Some(earlier) => Ok(earlier),
            None => outcome,
        }
    }

    /// [`Commands::execute`] as if the request were new: load, decide, append on
    /// condition that the key served no other request; a lost race is decided again.
    async fn attempt<A>(
        &self,
        stream: &StreamId,
        request: &Request<'_>,
        conditions: Vec<Condition>,
        command: impl Fn(&A::State) -> Result<A::Command, ApiError>,
    ) -> Result<Written, ApiError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
        A::State: Send + Sync + 'static,
    {
        let mut unused = conditions;
        unused.push(Condition::Absent(request.unrelated_ids()));
        for attempt in 1..=CONFLICT_RETRIES {
            let (state, version, position) = self.load_for_command::<A>(stream).await?;
            // The caller's checks of the target (access, clearance) come before the
            // version: a refused caller learns no version (no oracle).
            let command = command(&state)?;
            if let Some(expected) = request.expected_version {
                if expected != version {
                    return Err(ApiError::Conflict {
                        stream: stream.to_string(),
                        expected: format!("version {expected}"),
                        actual: version,
                    });
                }
            }
            let events = A::decide(&state, command, self.now())?;
            if events.is_empty() {
                return Ok(Written {
                    stream: stream.to_string(),
                    version,
                    position,
                    event_types: Vec::new(),
                    repeated: false,
                });
            }
            let prepared = self
                .prepare::<A>(stream, request, &state, &events, version, unused.clone())
                .await?;
            match self.submit_one(prepared)?.await {
                Ok(written) => {
                    // A repeat's events were decided on another state: nothing to remember.
                    if !written.repeated {
                        let after =
                            events.iter().fold(state, |state, event| A::evolve(state, event));
                        self.remember::<A>(stream, after, written.version, written.position);
                    }
                    return Ok(written);
                }
                Err(ApiError::Conflict { .. }) if request.expected_version.is_none() => {
                    // Racers that all reload at once collide again: spread them out.
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |t| t.subsec_nanos() % 1_000);
                    let attempt = u64::try_from(attempt).unwrap_or(1);
                    let pause = std::time::Duration::from_micros(attempt * u64::from(jitter));
                    tokio::time::sleep(pause).await;
                }
                Err(error) => return Err(error),
            }
        }
        Err(ApiError::Contended { stream: stream.to_string() })
    }
}

/// A whole stream's state, version and last position.
fn fold<A>(recorded: &[RecordedEvent]) -> Result<(A::State, u64, u64), ApiError>
where
    A: Aggregate,
    A::Event: DomainEvent,
{
    let events = decode::<A::Event>(recorded)?;
    let last = recorded.last();
    Ok((A::fold(&events), last.map_or(0, |e| e.stream_version), last.map_or(0, |e| e.position)))
}

/// Decodes stored events of one aggregate; a failure is corruption, not the caller's fault.
pub fn decode<E: DomainEvent>(recorded: &[RecordedEvent]) -> Result<Vec<E>, ApiError> {
    recorded
        .iter()
        .map(|e| {
            E::from_stored(&e.event_type, e.schema_version, &e.payload).map_err(|error| {
                ApiError::Internal(format!("{} v{}: {error}", e.stream_id, e.stream_version))
            })
        })
        .collect()
}

/// A stream id built from a domain id; our ids always make valid stream names.
pub fn stream(name: String) -> Result<StreamId, ApiError> {
    StreamId::new(name).map_err(|error| ApiError::Internal(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_fingerprints_read_back_in_each_form() {
        let keyed = "RecordContact:0193a5e0-0000-7000-8000-0000000000c1:00ff";
        assert_eq!(
            Recorded::parse(keyed),
            Recorded::Keyed {
                rpc: "RecordContact",
                subject: "0193a5e0-0000-7000-8000-0000000000c1",
                tag: "00ff"
            }
        );
        assert_eq!(
            Recorded::parse("RecordContact:abcd"),
            Recorded::Unkeyed { rpc: "RecordContact" }
        );
        assert_eq!(Recorded::parse("ArchiveCases/case"), Recorded::Internal("ArchiveCases/case"));
    }

    #[test]
    fn a_retry_has_the_same_fingerprint_and_another_rpc_another() {
        let request = crate::pb::ForgetCustomerRequest {
            request_id: "r1".into(),
            customer_id: "c1".into(),
            reason: "asked".into(),
        };
        let fingerprint = Fingerprint::of("ForgetCustomer", &request);
        assert_eq!(fingerprint, Fingerprint::of("ForgetCustomer", &request.clone()));
        assert_ne!(fingerprint, Fingerprint::of("RecordContact", &request));
        // Internal commands record what they are and nothing else.
        assert_eq!(Fingerprint::internal("ArchiveCases/case").digest, None);
    }
}
