//! Server-side sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` over TLS), the signed-in principal and the session's CSRF token kept here,
//! never in the browser, each session ending at its expiry or at sign-out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kefu_api::auth::Principal;
use kefu_api::Clock;

/// The session cookie over plain HTTP (loopback only).
pub const SESSION_COOKIE: &str = "kefu_session";
/// The session cookie over TLS: the `__Host-` prefix makes browsers refuse it unless
/// it is `Secure`, for this host only and for every path.
pub const SESSION_COOKIE_SECURE: &str = "__Host-kefu_session";
/// The sign-in form's token, compared with the form's field (double submit): a page
/// of another site can neither read nor set it, so it cannot sign anyone in.
pub const SIGNIN_COOKIE: &str = "kefu_signin";
/// The sign-in form's token over TLS: `__Host-`, so a sibling subdomain (same site,
/// where `SameSite` does not help) cannot plant a value and post a matching form.
pub const SIGNIN_COOKIE_SECURE: &str = "__Host-kefu_signin";
/// The language chosen with the toggle.
pub const LANG_COOKIE: &str = "kefu_lang";

/// Sessions kept at most; expired ones are dropped first, then the oldest.
const MAX_SESSIONS: usize = 10_000;
/// Sessions one principal keeps at most (a few browsers); a further sign-in ends their
/// own oldest, so nobody's sign-ins can push anyone else's session out of the store.
pub const MAX_SESSIONS_PER_PRINCIPAL: usize = 16;

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// Every form of this session carries it; a form without it changes nothing.
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// The sessions of this process (a restart signs everyone out).
#[derive(Clone)]
pub struct Sessions {
    by_id: Arc<Mutex<HashMap<String, Session>>>,
    clock: Clock,
    ttl: Duration,
}

impl Sessions {
    pub fn new(clock: Clock, ttl: Duration) -> Self {
        Sessions { by_id: Arc::default(), clock, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session for `principal`; its id (for the cookie) and the session.
    pub fn open(&self, principal: Principal) -> Option<(String, Session)> {
        let now = (self.clock)();
        let expires_at = now + chrono::Duration::from_std(self.ttl).ok()?;
        let session = Session { principal, csrf: random_token()?, expires_at };
        let id = random_token()?;
        let mut sessions = self.by_id.lock().ok()?;
        sessions.retain(|_, session| session.expires_at > now);
        let whose = &session.principal.id;
        let theirs = sessions.values().filter(|held| held.principal.id == *whose).count();
        if theirs >= MAX_SESSIONS_PER_PRINCIPAL {
            remove_oldest(&mut sessions, |held| held.principal.id == *whose);
        }
        if sessions.len() >= MAX_SESSIONS {
            remove_oldest(&mut sessions, |_| true);
        }
        sessions.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The live session of `id`; an expired one is removed and is none.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = (self.clock)();
        let mut sessions = self.by_id.lock().ok()?;
        let session = sessions.get(id)?;
        if session.expires_at <= now {
            sessions.remove(id);
            return None;
        }
        Some(session.clone())
    }

    /// Ends the session of `id` (sign-out).
    pub fn close(&self, id: &str) {
        if let Ok(mut sessions) = self.by_id.lock() {
            sessions.remove(id);
        }
    }
}

/// Ends the session that expires first among those `chosen`.
fn remove_oldest(sessions: &mut HashMap<String, Session>, chosen: impl Fn(&Session) -> bool) {
    let oldest = sessions
        .iter()
        .filter(|(_, session)| chosen(session))
        .min_by_key(|(_, session)| session.expires_at)
        .map(|(id, _)| id.clone());
    if let Some(oldest) = oldest {
        sessions.remove(&oldest);
    }
}

/// 32 random bytes from the operating system, as hex.
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` over TLS.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn principal() -> Principal {
        someone("s1")
    }

    fn someone(id: &str) -> Principal {
        Principal {
            id: id.into(),
            roles: vec![kefu_api::auth::Role::Supervisor],
            clearance: kefu_domain::Confidentiality::Internal,
        }
    }

    /// One token holder signing in over and over (10,000 sessions is a few minutes of
    /// posts) must not end anyone else's session, only their own oldest.
    #[test]
    fn one_principals_sign_ins_never_end_another_principals_session() {
        // Each sign-in a millisecond after the last, so "oldest" is never a tie.
        let ticks = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let start = Utc::now();
        let clock: Clock = Arc::new(move || {
            start + chrono::Duration::milliseconds(ticks.fetch_add(1, Ordering::Relaxed))
        });
        let sessions = Sessions::new(clock, Duration::from_secs(3_600));
        let (victim, _) = sessions.open(someone("co1")).unwrap();
        let (first, _) = sessions.open(someone("svc-pub")).unwrap();
        for _ in 0..MAX_SESSIONS + 1 {
            sessions.open(someone("svc-pub")).unwrap();
        }
        assert!(sessions.get(&victim).is_some(), "another principal's session stands");
        assert!(sessions.get(&first).is_none(), "the flooder's own oldest session ended");
        let held = sessions.by_id.lock().unwrap().len();
        assert_eq!(held, MAX_SESSIONS_PER_PRINCIPAL + 1, "the flooder keeps only their share");
    }

    #[test]
    fn a_session_ends_at_its_expiry_and_at_sign_out() {
        let now = Arc::new(Mutex::new(Utc::now()));
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || *clock_now.lock().unwrap());
        let sessions = Sessions::new(clock, Duration::from_secs(3_600));
        let (id, session) = sessions.open(principal()).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, session.csrf, "the CSRF token is not the session id");
        assert!(sessions.get(&id).is_some());
        *now.lock().unwrap() += chrono::Duration::seconds(3_599);
        assert!(sessions.get(&id).is_some(), "a second before its expiry");
        *now.lock().unwrap() += chrono::Duration::seconds(1);
        assert!(sessions.get(&id).is_none(), "at its expiry");
        let (id, _) = sessions.open(principal()).unwrap();
        sessions.close(&id);
        assert!(sessions.get(&id).is_none(), "after sign-out");
    }

    #[test]
    fn cookies_and_secrets_read_exactly() {
        assert_eq!(cookie("a=1; kefu_session=xyz; b=2", "kefu_session"), Some("xyz"));
        assert_eq!(cookie("xkefu_session=1", "kefu_session"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab") && !same_secret("", "a"));
        let secure = set_cookie("n", "v", Duration::from_secs(60), true);
        assert!(secure.contains("HttpOnly") && secure.contains("SameSite=Strict"));
        assert!(secure.ends_with("; Secure") && secure.contains("Max-Age=60"));
        assert!(!set_cookie("n", "v", Duration::from_secs(60), false).contains("Secure"));
    }
}
