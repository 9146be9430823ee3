//! Crypto-shredding: per-subject data keys outside the log, and sealed payload fields.
//!
//! A writer seals the personal fields of a payload with its subject's key
//! ([`DataKey::seal_fields`]) before appending; the stored field becomes an envelope
//!
//! ```json
//! {"sealed": {"alg": "A256GCM", "subject": "…", "data": "<base64 nonce‖ciphertext>", "erased": …}}
//! ```
//!
//! that names its subject and carries what readers see once the key is gone, so opening
//! ([`EventStore::open_sealed`]) needs no knowledge of event types. The hash chain covers
//! the envelope, not the plaintext: destroying a key erases the person and leaves every
//! event, and the chain's verification, untouched.
//!
//! A key also makes keyed digests ([`DataKey::digest`]): a value that can be matched
//! against a later one but, without the key, confirms no guess of what it was made from,
//! and after the key's destruction confirms nothing at all. The installation's own key
//! ([`INSTALLATION_SUBJECT`], never destroyed) does the same for what has no subject.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::error::StoreError;
use crate::store::{Database, EventStore};
use crate::types::RecordedEvent;

const ENVELOPE: &str = "sealed";
const ALGORITHM: &str = "A256GCM";
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
/// Subjects whose sealing keys one process keeps at hand.
const SEALING_KEY_CACHE: usize = 10_000;
/// Domain separation of the digest keys derived from a data key (never change it).
const DIGEST_CONTEXT: &str = "kefu-digest-v1";

/// The subject of the installation's own key, for keyed digests of what concerns no
/// data subject. It is no customer id (those are UUIDs), so no erasure destroys it.
pub const INSTALLATION_SUBJECT: &str = "kefu-installation";

type HmacSha256 = Hmac<Sha256>;

/// One subject's key, ready to seal fields and make keyed digests.
#[derive(Clone)]
pub struct DataKey {
    subject: String,
    cipher: Aes256Gcm,
    /// HMAC-SHA256 keyed with the key's bytes, the root of [`DataKey::digest`]'s keys.
    digests: HmacSha256,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey").field("subject", &self.subject).finish_non_exhaustive()
    }
}

impl DataKey {
    pub(crate) fn from_bytes(subject: &str, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        Some(DataKey {
            subject: subject.to_owned(),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
            digests: <HmacSha256 as Mac>::new_from_slice(bytes).ok()?,
        })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A keyed digest of `parts` for `purpose`: HMAC-SHA256 under a key derived for the
    /// purpose, `F = HMAC-SHA256(key, "kefu-digest-v1\n" ‖ purpose)`, over the parts
    /// joined by nothing. Equal inputs give equal digests under the same key; without
    /// the key a digest confirms no guess of its input, and destroying the key makes
    /// every digest it made unmatchable for good.
    pub fn digest(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut derive = self.digests.clone();
        derive.update(DIGEST_CONTEXT.as_bytes());
        derive.update(b"\n");
        derive.update(purpose.as_bytes());
        let derived = derive.finalize().into_bytes();
        // HMAC takes a key of any length; a 32-byte one always.
        let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(&derived) else { return [0; 32] };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Replaces each present, non-null field of `payload` named in `fields` by its sealed
    /// envelope; `erased(field)` is what readers will see after the key is destroyed.
    pub fn seal_fields(
        &self,
        payload: &mut Value,
        fields: &[&str],
        erased: impl Fn(&str) -> Value,
    ) {
        let Value::Object(object) = payload else { return };
        for field in fields {
            if let Some(value) = object.get_mut(*field) {
                if !value.is_null() && !is_sealed(value) {
                    *value = self.seal(field, value, erased(field));
                }
            }
        }
    }

    fn seal(&self, field: &str, value: &Value, erased: Value) -> Value {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let plaintext = value.to_string();
        let aad = associated_data(&self.subject, field);
        // Encryption fails only for inputs beyond AES-GCM's 64 GiB limit.
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: &aad })
            .unwrap_or_default();
        let mut data = nonce.to_vec();
        data.extend_from_slice(&ciphertext);
        json!({ ENVELOPE: {
            "alg": ALGORITHM,
            "subject": self.subject,
            "data": BASE64.encode(data),
            "erased": erased,
        }})
    }

    fn open(&self, field: &str, data: &str) -> Option<Value> {
        serde_json::from_slice(&self.decrypt(field, data)?).ok()
    }

    /// [`DataKey::open`] to JSON text, with no tree: for decoding straight from text.
    pub(crate) fn open_text(&self, field: &str, data: &str) -> Option<Box<RawValue>> {
        RawValue::from_string(String::from_utf8(self.decrypt(field, data)?).ok()?).ok()
    }

    /// The plaintext of `field`'s sealed `data` (base64 of nonce and ciphertext), if it
    /// opens under this key.
    fn decrypt(&self, field: &str, data: &str) -> Option<Vec<u8>> {
        let data = BASE64.decode(data).ok()?;
        if data.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let aad = associated_data(&self.subject, field);
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad }).ok()
    }
}

/// Binds a ciphertext to its subject and field, so it cannot be moved to another.
fn associated_data(subject: &str, field: &str) -> Vec<u8> {
    format!("kefu-sealed-v1\n{subject}\n{field}").into_bytes()
}

fn envelope(value: &Value) -> Option<&Map<String, Value>> {
    match value {
        Value::Object(object) if object.len() == 1 => object.get(ENVELOPE)?.as_object(),
        _ => None,
    }
}

fn is_sealed(value: &Value) -> bool {
    envelope(value).is_some()
}

/// The subjects whose keys a payload's sealed fields need.
fn subjects_of(payload: &Value) -> impl Iterator<Item = &str> {
    payload
        .as_object()
        .into_iter()
        .flat_map(|object| object.values())
        .filter_map(|value| envelope(value)?.get("subject")?.as_str())
}

/// Replaces every sealed field by its erased placeholder, without asking for keys: for
/// decisions that never read personal data (one query fewer than opening).
pub fn show_erased(events: &mut [RecordedEvent]) {
    for event in events {
        show_erased_payload(&mut event.payload);
    }
}

/// [`show_erased`] for one payload.
pub fn show_erased_payload(payload: &mut Value) {
    let Value::Object(object) = payload else { return };
    for value in object.values_mut() {
        if let Some(erased) = envelope(value).and_then(|sealed| sealed.get("erased")).cloned() {
            *value = erased;
        }
    }
}

/// The subjects whose keys a payload's sealed fields need ([`EventStore::live_keys_of`]).
pub fn sealed_subjects(payload: &Value) -> impl Iterator<Item = &str> {
    subjects_of(payload)
}

/// The live keys of some subjects ([`EventStore::live_keys_of`]): what opens their
/// sealed fields; a subject without one (destroyed) reads as erased.
#[derive(Debug, Default)]
pub struct LiveKeys(pub(crate) HashMap<String, DataKey>);

impl LiveKeys {
    pub(crate) fn get(&self, subject: &str) -> Option<&DataKey> {
        self.0.get(subject)
    }

    /// Opens the sealed fields of the payload of the event at `position` in place: the
    /// plaintext where the subject's key is here, the erased placeholder where not.
    pub fn open_payload(&self, position: u64, payload: &mut Value) -> Result<(), StoreError> {
        let Value::Object(object) = payload else { return Ok(()) };
        for (field, value) in object.iter_mut() {
            let Some(sealed) = envelope(value) else { continue };
            let subject = sealed.get("subject").and_then(Value::as_str).unwrap_or_default();
            let data = sealed.get("data").and_then(Value::as_str).unwrap_or_default();
            let opened = match self.0.get(subject) {
                Some(key) => key.open(field, data).ok_or_else(|| StoreError::Corrupt {
                    position: i64::try_from(position).unwrap_or(i64::MAX),
                    reason: format!("sealed field {field} does not open with its key"),
                })?,
                None => sealed.get("erased").cloned().unwrap_or(Value::Null),
            };
            *value = opened;
        }
        Ok(())
    }
}

/// Whether a subject's key exists, was destroyed, or was never issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Live,
    Destroyed,
    Missing,
}

impl EventStore {
    /// The subject's key, issued on first use. A destroyed key is never re-issued:
    /// sealing new data for a forgotten subject fails with [`StoreError::KeyDestroyed`].
    ///
    /// Keys are cached for sealing only (opening always asks the database): a key
    /// destroyed by another node may still seal here for a while, and what it seals is
    /// as unreadable as everything else of that subject.
    pub async fn data_key(&self, subject: &str) -> Result<DataKey, StoreError> {
        if let Some(key) = self.cached_key(subject) {
            return Ok(key);
        }
        let key = self.load_data_key(subject).await?;
        if let Ok(mut cache) = self.inner.sealing_keys.lock() {
            if cache.len() >= SEALING_KEY_CACHE {
                cache.clear();
            }
            cache.insert(subject.to_owned(), key.clone());
        }
        Ok(key)
    }

    fn cached_key(&self, subject: &str) -> Option<DataKey> {
        self.inner.sealing_keys.lock().ok()?.get(subject).cloned()
    }

    /// The subject's row in `data_keys`: `None` when no key was ever issued,
    /// `Some(None)` for a tombstone, `Some(Some(bytes))` for a live key.
    async fn stored_key(&self, subject: &str) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        Ok(match self.database() {
            Database::Sqlite { readers, .. } => {
                sqlx::query_scalar("SELECT key_bytes FROM data_keys WHERE subject = ?")
                    .bind(subject)
                    .fetch_optional(&readers)
                    .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar("SELECT key_bytes FROM data_keys WHERE subject = $1")
                    .bind(subject)
                    .fetch_optional(&pool)
                    .await?
            }
        })
    }

    async fn load_data_key(&self, subject: &str) -> Result<DataKey, StoreError> {
        let known = self.stored_key(subject).await?;
        // Issuing is a durable write; most calls find the key and need none.
        let stored = match known {
            Some(stored) => stored,
            None => self.issue_data_key(subject).await?,
        };
        let bytes = stored.ok_or_else(|| StoreError::KeyDestroyed(subject.to_owned()))?;
        DataKey::from_bytes(subject, &bytes).ok_or_else(|| StoreError::Corrupt {
            position: 0,
            reason: format!("data key of {subject} has the wrong length"),
        })
    }

    /// Inserts a fresh key unless one (or a tombstone) exists; returns what is stored.
    async fn issue_data_key(&self, subject: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let fresh = Aes256Gcm::generate_key(&mut OsRng);
        let now = Utc::now();
        Ok(match self.database() {
            Database::Sqlite { writer, .. } => {
                sqlx::query(
                    "INSERT INTO data_keys (subject, key_bytes, created_at) VALUES (?, ?, ?) \
                     ON CONFLICT (subject) DO NOTHING",
                )
                .bind(subject)
                .bind(&fresh[..])
                .bind(now.to_rfc3339())
                .execute(&writer)
                .await?;
                sqlx::query_scalar("SELECT key_bytes FROM data_keys WHERE subject = ?")
                    .bind(subject)
                    .fetch_one(&writer)
                    .await?
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO data_keys (subject, key_bytes, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (subject) DO NOTHING",
                )
                .bind(subject)
                .bind(&fresh[..])
                .bind(now)
                .execute(&pool)
                .await?;
                sqlx::query_scalar("SELECT key_bytes FROM data_keys WHERE subject = $1")
                    .bind(subject)
                    .fetch_one(&pool)
                    .await?
            }
        })
    }

    /// Destroys the subject's key (leaving a tombstone), then asks the database to drop
    /// the old bytes from its files. Returns whether a live key was destroyed now.
    pub async fn destroy_data_key(&self, subject: &str) -> Result<bool, StoreError> {
        if let Ok(mut cache) = self.inner.sealing_keys.lock() {
            cache.remove(subject);
        }
        let now = Utc::now();
        let destroyed = match self.database() {
            Database::Sqlite { writer, .. } => {
                let live: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar("SELECT key_bytes FROM data_keys WHERE subject = ?")
                        .bind(subject)
                        .fetch_optional(&writer)
                        .await?;
                sqlx::query(
                    "INSERT INTO data_keys (subject, key_bytes, created_at, destroyed_at) \
                     VALUES (?1, NULL, ?2, ?2) ON CONFLICT (subject) DO UPDATE \
                     SET key_bytes = NULL, destroyed_at = COALESCE(destroyed_at, ?2)",
                )
                .bind(subject)
                .bind(now.to_rfc3339())
                .execute(&writer)
                .await?;
                live.flatten().is_some()
            }
            Database::Postgres(pool) => {
                let live: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar("SELECT key_bytes FROM data_keys WHERE subject = $1")
                        .bind(subject)
                        .fetch_optional(&pool)
                        .await?;
                sqlx::query(
                    "INSERT INTO data_keys (subject, key_bytes, created_at, destroyed_at) \
                     VALUES ($1, NULL, $2, $2) ON CONFLICT (subject) DO UPDATE \
                     SET key_bytes = NULL, \
                         destroyed_at = COALESCE(data_keys.destroyed_at, excluded.destroyed_at)",
                )
                .bind(subject)
                .bind(now)
                .execute(&pool)
                .await?;
                live.flatten().is_some()
            }
        };
        self.purge_deleted(&["data_keys"]).await;
        Ok(destroyed)
    }

    /// The subject's key if it is live, without issuing one: `None` once destroyed (or
    /// never issued). For matching digests made earlier, which a destroyed key can no
    /// longer match.
    pub async fn live_data_key(&self, subject: &str) -> Result<Option<DataKey>, StoreError> {
        let Some(Some(bytes)) = self.stored_key(subject).await? else { return Ok(None) };
        Ok(DataKey::from_bytes(subject, &bytes))
    }

    /// Whether the subject's key is live, destroyed, or was never issued.
    pub async fn data_key_state(&self, subject: &str) -> Result<KeyState, StoreError> {
        let found = self.stored_key(subject).await?;
        Ok(match found {
            None => KeyState::Missing,
            Some(None) => KeyState::Destroyed,
            Some(Some(_)) => KeyState::Live,
        })
    }

    /// Removes overwritten rows from the database files after an erasure: SQLite (with
    /// `secure_delete` on) checkpoints and truncates its WAL, which still holds old page
    /// images, in the background until readers on older snapshots let it
    /// ([`truncate_until_done`]); PostgreSQL vacuums and analyses `tables` so their dead
    /// tuples and the planner's samples of them go.
    /// A failure is logged, never fatal: what was erased is already unreadable.
    pub async fn purge_deleted(&self, tables: &[&str]) {
        let outcome = match self.database() {
            Database::Sqlite { writer, .. } => {
                match crate::sqlite::checkpoint_truncate(&writer, PURGE_WAIT_MS).await {
                    Ok(false) => {
                        let purge = self.inner.purge.clone();
                        if purge.ask() {
                            tokio::spawn(truncate_until_done(writer, purge));
                        }
                        Ok(())
                    }
                    done => done.map(drop),
                }
            }
            Database::Postgres(pool) => {
                // Table names come from our code, never from a caller. ANALYZE too: the
                // planner's statistics (`pg_statistic`) sample column values, erased
                // ones included, until the table is analysed again.
                let vacuum = format!("VACUUM (ANALYZE) {}", tables.join(", "));
                sqlx::raw_sql(&vacuum).execute(&pool).await.map(drop)
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not purge deleted rows after an erasure");
        }
    }

    /// Opens the sealed fields of `events` in place: the plaintext where the subject's
    /// key exists, the envelope's erased placeholder where it was destroyed.
    pub async fn open_sealed(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        let subjects: HashSet<&str> = events.iter().flat_map(|e| subjects_of(&e.payload)).collect();
        if subjects.is_empty() {
            return Ok(());
        }
        let subjects: Vec<String> = subjects.into_iter().map(str::to_owned).collect();
        let keys = self.live_keys_of(&subjects).await?;
        for event in events {
            keys.open_payload(event.position, &mut event.payload)?;
        }
        Ok(())
    }

    /// The live keys of `subjects` (repeats allowed), read in a few queries: for a reader
    /// that opens many payloads itself ([`LiveKeys::open_payload`],
    /// [`crate::PayloadFields::open`]).
    pub async fn live_keys_of(&self, subjects: &[String]) -> Result<LiveKeys, StoreError> {
        if subjects.is_empty() {
            return Ok(LiveKeys::default());
        }
        Ok(LiveKeys(self.live_keys(subjects).await?))
    }

    async fn live_keys(&self, subjects: &[String]) -> Result<HashMap<String, DataKey>, StoreError> {
        let mut keys = HashMap::with_capacity(subjects.len());
        for chunk in subjects.chunks(500) {
            let rows: Vec<(String, Vec<u8>)> = match self.database() {
                Database::Sqlite { readers, .. } => {
                    // One JSON array parameter instead of hundreds of placeholders.
                    sqlx::query_as(
                        "SELECT subject, key_bytes FROM data_keys \
                         WHERE key_bytes IS NOT NULL AND subject IN (SELECT value FROM json_each(?))",
                    )
                    .bind(serde_json::to_string(chunk).unwrap_or_default())
                    .fetch_all(&readers)
                    .await?
                }
                Database::Postgres(pool) => {
                    sqlx::query_as(
                        "SELECT subject, key_bytes FROM data_keys \
                         WHERE key_bytes IS NOT NULL AND subject = ANY($1)",
                    )
                    .bind(chunk)
                    .fetch_all(&pool)
                    .await?
                }
            };
            for (subject, bytes) in rows {
                if let Some(key) = DataKey::from_bytes(&subject, &bytes) {
                    keys.insert(subject, key);
                }
            }
        }
        Ok(keys)
    }
}

/// How long an erasure's WAL truncation keeps trying while readers hold older snapshots.
const PURGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);
/// Between two tries, and how long each waits for readers (milliseconds).
const PURGE_RETRY: std::time::Duration = std::time::Duration::from_millis(100);
const PURGE_WAIT_MS: u32 = 50;

/// Truncates the SQLite WAL once no reader holds an older snapshot. A single try gave
/// up whenever a read was in flight (busy is a result, not an error), so under load the
/// erased rows' old page images stayed in the WAL until it next passed its size limit.
async fn truncate_until_done(writer: sqlx::SqlitePool, purge: std::sync::Arc<PurgeState>) {
    let mut started = std::time::Instant::now();
    loop {
        let asked = purge.asked.load(Ordering::Acquire);
        tokio::time::sleep(PURGE_RETRY).await;
        match crate::sqlite::checkpoint_truncate(&writer, PURGE_WAIT_MS).await {
            Ok(false) if started.elapsed() < PURGE_PATIENCE => continue,
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("WAL still held by readers after an erasure; truncated later");
            }
            Err(error) => tracing::warn!(%error, "could not truncate the WAL after an erasure"),
        }
        if purge.done(asked) {
            return;
        }
        // Another erasure asked meanwhile: its rows may postdate this truncation.
        started = std::time::Instant::now();
    }
}

/// One WAL-truncation retrier per store at a time (each try holds the writer for up to
/// [`PURGE_WAIT_MS`]), serving every erasure that asks while it runs.
#[derive(Debug, Default)]
pub(crate) struct PurgeState {
    running: AtomicBool,
    /// Erasures that asked, ever: a retrier ends only when none asked since its try.
    asked: AtomicU64,
}

impl PurgeState {
    /// Notes an erasure's ask; whether the caller must start the retrier.
    fn ask(&self) -> bool {
        self.asked.fetch_add(1, Ordering::AcqRel);
        !self.running.swap(true, Ordering::AcqRel)
    }

    /// After a try that began when `asked` asks had been made: whether the retrier may
    /// end (no ask since, or a newer retrier took over).
    fn done(&self, asked: u64) -> bool {
        self.running.store(false, Ordering::Release);
        if self.asked.load(Ordering::Acquire) == asked {
            return true;
        }
        // Asked meanwhile: go on, unless an asker already started a new retrier.
        self.running.swap(true, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_wal_retrier_serves_every_erasure_that_asks_while_it_runs() {
        let purge = PurgeState::default();
        assert!(purge.ask(), "the first erasure starts the retrier");
        assert!(!purge.ask(), "a second one while it runs does not");
        let before_try = purge.asked.load(Ordering::Acquire);
        assert!(purge.done(before_try), "no erasure since its try: it ends");
        assert!(purge.ask(), "the next erasure starts a new one");
        let before_try = purge.asked.load(Ordering::Acquire);
        assert!(!purge.ask());
        assert!(!purge.done(before_try), "asked after its try began: it tries again");
        assert!(!purge.ask(), "and it is still the one running");
    }

    fn key(subject: &str) -> DataKey {
        DataKey::from_bytes(subject, &[7; KEY_LEN]).unwrap()
    }

    #[test]
    fn a_sealed_field_opens_only_with_its_subject_and_field() {
        let mut payload = json!({ "name": "Li Lei", "tier": "vip", "note": null });
        key("c1").seal_fields(&mut payload, &["name", "note"], |_| json!("[erased]"));
        assert_eq!(payload["tier"], "vip");
        assert!(payload["note"].is_null(), "absent values stay absent");
        assert!(!payload.to_string().contains("Li Lei"));
        let data = envelope(&payload["name"]).unwrap()["data"].as_str().unwrap().to_owned();
        assert_eq!(key("c1").open("name", &data), Some(json!("Li Lei")));
        assert_eq!(key("c2").open("name", &data), None, "another subject's key");
        assert_eq!(key("c1").open("note", &data), None, "moved to another field");
        assert_eq!(subjects_of(&payload).collect::<Vec<_>>(), ["c1"]);
    }

    #[test]
    fn a_digest_matches_only_under_its_key_and_purpose() {
        let digest = key("c1").digest("fingerprint", &[b"RecordContact\n", b"note"]);
        assert_eq!(digest, key("c1").digest("fingerprint", &[b"RecordContact\nnote"]));
        assert_ne!(digest, key("c1").digest("fingerprint", &[b"RecordContact\nnote!"]));
        assert_ne!(digest, key("c1").digest("other", &[b"RecordContact\nnote"]));
        let other = DataKey::from_bytes("c1", &[8; KEY_LEN]).unwrap();
        assert_ne!(digest, other.digest("fingerprint", &[b"RecordContact\nnote"]));
    }
}
