//! Bearer tokens → principals with roles and a clearance. What each may do is the
//! access table's (`crate::access`).
//!
//! Tokens are stored hashed (SHA-256, hex) in a JSON tokens file:
//! `{"tokens": [{"sha256": "…", "principal": "h1", "roles": ["agent"], "clearance": "internal"}]}`.
//! The principal is the caller's staff code (or service name); it is the actor of every
//! event the caller causes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kefu_domain::{Confidentiality, StaffId};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::error::ApiError;

/// What a caller may do (DESIGN.md, Security; DOMAIN.md, People and roles). Handling a
/// case is not a role but a relationship to the case: its current handler (R-P5),
/// checked against the case by the access table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Agent,
    /// Writes the first written opinion on a complaint (R-P5).
    Specialist,
    Supervisor,
    Director,
    Compliance,
    Analyst,
    Service,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Specialist => "specialist",
            Role::Supervisor => "supervisor",
            Role::Director => "director",
            Role::Compliance => "compliance",
            Role::Analyst => "analyst",
            Role::Service => "service",
            Role::Admin => "admin",
        }
    }

    fn parse(word: &str) -> Option<Role> {
        Some(match word {
            "agent" => Role::Agent,
            "specialist" => Role::Specialist,
            "supervisor" => Role::Supervisor,
            "director" => Role::Director,
            "compliance" => Role::Compliance,
            "analyst" => Role::Analyst,
            "service" => Role::Service,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub roles: Vec<Role>,
    /// The highest customer confidentiality this caller may read (R-C6).
    pub clearance: Confidentiality,
}

impl Principal {
    /// The roles as recorded in event metadata.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|role| role.as_str().to_owned()).collect()
    }

    /// The caller as the staff member acting in events.
    pub fn staff_id(&self) -> Result<StaffId, ApiError> {
        StaffId::new(&self.id).map_err(|_| {
            ApiError::forbidden(format!("principal {:?} is not a staff code", self.id))
        })
    }
}

/// A principal as the staff member it names: staff codes fold case (`RegisterStaff("SUR")`
/// is `sur`), so a principal written `SUR` must be `sur` wherever access compares it with
/// a respondent, handler or drafter. Service names that are not staff codes stay as written.
fn canonical_principal(written: &str) -> Result<String, String> {
    if written.trim().is_empty() {
        return Err("a principal is empty".into());
    }
    Ok(StaffId::new(written).map_or_else(|_| written.to_owned(), |code| code.as_str().to_owned()))
}

/// Why a tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read tokens file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("tokens file {path} has mode {mode:03o}: group and others must have no access; run chmod 600 on it")]
    NotPrivate { path: String, mode: u32 },
    #[error("tokens file {path} is malformed: {reason}")]
    Malformed { path: String, reason: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    sha256: String,
    principal: String,
    roles: Vec<String>,
    clearance: String,
}

/// The known tokens, by hash.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: Arc<HashMap<String, Principal>>,
}

/// The hex SHA-256 under which a token is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// Loads a tokens file, refusing one its group or others may read, write or run:
    /// the hashes are as good as the tokens to whoever can swap them.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let shown = path.display().to_string();
        let metadata = std::fs::metadata(path)
            .map_err(|source| TokensError::Read { path: shown.clone(), source })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(TokensError::NotPrivate { path: shown, mode });
            }
        }
        let _ = metadata;
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokensError::Read { path: shown.clone(), source })?;
        Self::parse(&text).map_err(|reason| TokensError::Malformed { path: shown, reason })
    }

    /// Parses the JSON of a tokens file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: TokensFile = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let mut by_hash = HashMap::new();
        for entry in file.tokens {
            let hash = entry.sha256.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("sha256 of {} is not 64 hex digits", entry.principal));
            }
            let roles = entry
                .roles
                .iter()
                .map(|role| Role::parse(role).ok_or_else(|| format!("unknown role {role:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            let clearance: Confidentiality =
                entry.clearance.parse().map_err(|error| format!("{error}"))?;
            let id = canonical_principal(&entry.principal)?;
            let principal = Principal { id, roles, clearance };
            if let Some(earlier) = by_hash.insert(hash, principal) {
                // Which entry would win is an accident of order: refuse the file.
                return Err(format!(
                    "the sha256 of {} is also the token of {}",
                    entry.principal, earlier.id
                ));
            }
        }
        Ok(Tokens { by_hash: Arc::new(by_hash) })
    }

    /// Every token of `principal` (a staff member may hold several, of different roles
    /// and clearances): what they may be given to own or handle is decided from these by
    /// [`crate::access::duty_clearance`].
    pub fn of<'a>(&'a self, principal: &'a str) -> impl Iterator<Item = &'a Principal> + 'a {
        self.by_hash.values().filter(move |p| p.id == principal)
    }

    /// A single administrator token, for development.
    pub fn single_admin(token: &str) -> Self {
        let principal = Principal {
            id: "dev-admin".into(),
            roles: vec![Role::Admin],
            clearance: Confidentiality::Secret,
        };
        Tokens { by_hash: Arc::new(HashMap::from([(hash_token(token), principal)])) }
    }

    /// The principal of an `authorization: Bearer …` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, ApiError> {
        let header =
            header.ok_or_else(|| ApiError::Unauthenticated("missing bearer token".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty() && token.len() <= 512)
            .ok_or_else(|| ApiError::Unauthenticated("malformed authorization header".into()))?;
        self.by_hash
            .get(&hash_token(token))
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("unknown token".into()))
    }
}

/// Authenticates every call of a service and leaves the [`Principal`] in its extensions.
#[derive(Debug, Clone)]
pub struct Authenticator {
    tokens: Tokens,
    failures: FailedAttempts,
}

impl Authenticator {
    pub fn new(tokens: Tokens) -> Self {
        Authenticator { tokens, failures: FailedAttempts::default() }
    }
}

/// Failed authentications per client address: after [`FAILURE_LIMIT`] within
/// [`FAILURE_WINDOW`], every call from that address is refused until the window ends,
/// so tokens cannot be guessed at line rate. (A valid token from a locked-out address
/// waits too: telling it apart would mean checking the guess.)
#[derive(Debug, Clone, Default)]
pub struct FailedAttempts {
    by_address: Arc<Mutex<HashMap<Option<IpAddr>, Window>>>,
}

/// Failures counted since an instant.
type Window = (u32, Instant);

/// Failed attempts one address may make per window.
pub const FAILURE_LIMIT: u32 = 20;
/// The window failed attempts are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; the oldest windows are dropped beyond it.
const TRACKED_ADDRESSES: usize = 10_000;

impl FailedAttempts {
    /// `Some(seconds to wait)` while `address` is locked out.
    fn locked(&self, address: Option<IpAddr>, now: Instant) -> Option<u64> {
        let map = self.by_address.lock().ok()?;
        let (count, since) = map.get(&address)?;
        let ends = *since + FAILURE_WINDOW;
        (*count >= FAILURE_LIMIT && now < ends).then(|| (ends - now).as_secs().max(1))
    }

    /// Counts a failure; true when this one reached the limit.
    fn record(&self, address: Option<IpAddr>, now: Instant) -> bool {
        let Ok(mut map) = self.by_address.lock() else { return false };
        if map.len() >= TRACKED_ADDRESSES {
            map.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
        }
        let entry = map.entry(address).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        entry.0 == FAILURE_LIMIT
    }
}

impl Authenticator {
    /// The principal of an `authorization` header value from a client at `address`:
    /// a locked-out address is refused before the token is looked at, and a failure
    /// is counted and logged (the peer and the reason, never the token). The one check
    /// of both the gRPC interceptor and the console's sign-in, which share the count
    /// when they share this authenticator (`Api::authenticator`).
    pub fn check(
        &self,
        address: Option<IpAddr>,
        header: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let now = Instant::now();
        if let Some(wait) = self.failures.locked(address, now) {
            return Err(ApiError::ResourceExhausted(format!(
                "too many failed authentications from this address; retry in {wait} s"
            )));
        }
        self.tokens.authenticate(header).inspect_err(|error| {
            let peer = address.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            tracing::warn!(reason = %error, %peer, "authentication failed");
            if self.failures.record(address, now) {
                tracing::warn!(
                    %peer,
                    limit = FAILURE_LIMIT,
                    window_s = FAILURE_WINDOW.as_secs(),
                    "too many failed authentications; address locked out for the window"
                );
            }
        })
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let address = request.remote_addr().map(|addr| addr.ip());
        let header = request.metadata().get("authorization").and_then(|value| value.to_str().ok());
        let principal = self.check(address, header)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The principal the interceptor attached to a request (also noted in the RPC's span).
pub fn principal<T>(request: &Request<T>) -> Result<Principal, ApiError> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthenticated("no authenticated principal".into()))?;
    tracing::Span::current().record("principal", principal.id.as_str());
    Ok(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_by_hash_only() {
        let file = format!(
            r#"{{"tokens":[{{"sha256":"{}","principal":"h1","roles":["agent"],"clearance":"internal"}}]}}"#,
            hash_token("secret-1")
        );
        let tokens = Tokens::parse(&file).unwrap();
        let principal = tokens.authenticate(Some("Bearer secret-1")).unwrap();
        assert_eq!(principal.id, "h1");
        assert_eq!(principal.roles, vec![Role::Agent]);
        for bad in [None, Some("Bearer "), Some("Basic abc"), Some("Bearer secret-2")] {
            assert!(
                matches!(tokens.authenticate(bad), Err(ApiError::Unauthenticated(_))),
                "{bad:?}"
            );
        }
        assert!(!file.contains("secret-1"), "only the hash is stored");
    }

    #[test]
    fn malformed_tokens_files_are_refused() {
        assert!(Tokens::parse(
            r#"{"tokens":[{"sha256":"x","principal":"a","roles":[],"clearance":"public"}]}"#
        )
        .is_err());
        let hash = hash_token("t");
        let unknown_role = format!(
            r#"{{"tokens":[{{"sha256":"{hash}","principal":"a","roles":["king"],"clearance":"public"}}]}}"#
        );
        assert!(Tokens::parse(&unknown_role).is_err());
        assert!(Tokens::parse(r#"{"tokens":[], "extra": 1}"#).is_err());
    }

    fn entry(token: &str, principal: &str, clearance: &str) -> String {
        let hash = hash_token(token);
        format!(
            r#"{{"sha256":"{hash}","principal":"{principal}","roles":["supervisor"],"clearance":"{clearance}"}}"#
        )
    }

    /// The fourth attack: two entries of one token, `p` public and `q` secret, started a
    /// server where the token acted as whichever came last.
    #[test]
    fn one_token_named_twice_is_refused() {
        let file = format!(
            r#"{{"tokens":[{},{}]}}"#,
            entry("same", "p", "public"),
            entry("same", "q", "secret")
        );
        let refused = Tokens::parse(&file).map(|_| ()).expect_err("refused");
        assert!(refused.contains('p') && refused.contains('q'), "{refused}");
    }

    /// Staff codes fold case, so a principal is the staff member it names however its
    /// letters are written (R-P4 compares it with respondents); a service name that is no
    /// staff code stays as written.
    #[test]
    fn a_principal_is_the_staff_code_it_names() {
        let file = format!(
            r#"{{"tokens":[{},{}]}}"#,
            entry("t1", "SUR", "secret"),
            entry("t2", "svc:billing", "public")
        );
        let tokens = Tokens::parse(&file).expect("parse");
        assert_eq!(tokens.authenticate(Some("Bearer t1")).expect("t1").id, "sur");
        assert_eq!(tokens.authenticate(Some("Bearer t2")).expect("t2").id, "svc:billing");
        let sur: Vec<_> = tokens.of("sur").map(|p| p.clearance).collect();
        assert_eq!(sur, [Confidentiality::Secret]);
    }

    #[cfg(unix)]
    #[test]
    fn a_tokens_file_open_to_group_or_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let file = format!(
            r#"{{"tokens":[{{"sha256":"{}","principal":"sp1","roles":["specialist"],"clearance":"internal"}}]}}"#,
            hash_token("t")
        );
        std::fs::write(&path, file).unwrap();
        for mode in [0o640, 0o620, 0o610, 0o604, 0o602, 0o601, 0o660, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = Tokens::load(&path).expect_err("group or others have access");
            assert!(matches!(error, TokensError::NotPrivate { .. }), "{mode:o}: {error}");
            assert!(error.to_string().contains("chmod 600"), "{error}");
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let tokens = Tokens::load(&path).unwrap_or_else(|e| panic!("{mode:o}: {e}"));
            let principal = tokens.authenticate(Some("Bearer t")).unwrap();
            assert_eq!(principal.roles, vec![Role::Specialist]);
        }
    }
}
