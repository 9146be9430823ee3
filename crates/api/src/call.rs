//! Where a call comes from across systems: its trace, correlation and causation ids,
//! recorded in the metadata of every event the call writes.
//!
//! The transport (the server's call layer in the `kefu` crate) reads them from the
//! caller's metadata (`traceparent`, `x-correlation-id`, `x-causation-id`) and runs the
//! call inside [`scope`]; command handling reads them back with [`current`]. A
//! task-local keeps them out of every handler's signature; outside a scope (the
//! operator's CLI, tests calling the store directly) the context is empty.

use std::future::Future;

/// Longest accepted correlation or causation id; a longer one is replaced.
const MAX_ID_LEN: usize = 128;

/// The cross-system ids of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// W3C trace id (32 lowercase hex digits) of the trace the call belongs to.
    pub trace_id: Option<String>,
    /// The business flow the call is part of: the caller's `x-correlation-id`, or a
    /// new id when it sent none (or an unusable one).
    pub correlation_id: Option<String>,
    /// What directly caused the call, as the caller named it (`x-causation-id`, e.g.
    /// the id of an event it reacts to); `None` means the command itself, and its
    /// events then name their request id as their cause.
    pub causation_id: Option<String>,
}

impl CallContext {
    /// The context of a call from the caller's header values: usable ids are kept,
    /// a missing or unusable correlation id is replaced by a new one.
    pub fn from_caller(
        trace_id: Option<String>,
        correlation_id: Option<&str>,
        causation_id: Option<&str>,
    ) -> Self {
        let correlation_id = correlation_id
            .filter(|id| usable(id))
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        CallContext {
            trace_id,
            correlation_id: Some(correlation_id),
            causation_id: causation_id.filter(|id| usable(id)).map(str::to_owned),
        }
    }
}

/// An id a caller may put into the log: short, printable ASCII, no spaces.
fn usable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

tokio::task_local! {
    static CALL: CallContext;
}

/// Runs `call` with `context` as the context of the call.
pub async fn scope<F: Future>(context: CallContext, call: F) -> F::Output {
    CALL.scope(context, call).await
}

/// A caller's `grpc-timeout` header (1 to 8 digits and a unit: `H`, `M`, `S`, `m`, `u`,
/// `n`); `None` when malformed. Read once for both users of the deadline: the server's
/// call layer ends the call there as `DEADLINE_EXCEEDED`, and a filing stops retrying
/// contention a margin before it, so it answers first.
pub fn grpc_timeout(value: &[u8]) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount.checked_mul(3_600)?),
        b'M' => Duration::from_secs(amount.checked_mul(60)?),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The context of the call being served; empty outside any call.
pub fn current() -> CallContext {
    CALL.try_with(Clone::clone).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_ids_are_kept_when_usable_and_replaced_when_not() {
        let kept = CallContext::from_caller(None, Some("order-42"), Some("evt-7"));
        assert_eq!(kept.correlation_id.as_deref(), Some("order-42"));
        assert_eq!(kept.causation_id.as_deref(), Some("evt-7"));
        let long = "x".repeat(MAX_ID_LEN + 1);
        for bad in ["", "has space", "line\nbreak", long.as_str(), "名前"] {
            let replaced = CallContext::from_caller(None, Some(bad), Some(bad));
            let correlation = replaced.correlation_id.expect("always a correlation id");
            assert_ne!(correlation, bad);
            assert!(uuid::Uuid::parse_str(&correlation).is_ok(), "{correlation}");
            assert_eq!(replaced.causation_id, None, "{bad:?}");
        }
        let fresh = CallContext::from_caller(None, None, None);
        let other = CallContext::from_caller(None, None, None);
        assert_ne!(fresh.correlation_id, other.correlation_id, "each call gets its own");
    }

    #[test]
    fn grpc_timeouts_are_read_as_the_protocol_writes_them() {
        use std::time::Duration;
        assert_eq!(grpc_timeout(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(grpc_timeout(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(grpc_timeout(b"1H"), Some(Duration::from_secs(3_600)));
        assert_eq!(grpc_timeout(b"99999999H"), Some(Duration::from_secs(99_999_999 * 3_600)));
        for bad in [&b""[..], b"S", b"10", b"123456789S", b"1x", b"-1S", b"+1S", b" 1S"] {
            assert_eq!(grpc_timeout(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn the_context_is_the_scopes_and_empty_outside() {
        assert_eq!(current(), CallContext::default());
        let context = CallContext::from_caller(Some("ab".repeat(16)), Some("c"), None);
        let seen = scope(context.clone(), async { current() }).await;
        assert_eq!(seen, context);
    }
}
