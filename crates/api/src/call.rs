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

    #[tokio::test]
    async fn the_context_is_the_scopes_and_empty_outside() {
        assert_eq!(current(), CallContext::default());
        let context = CallContext::from_caller(Some("ab".repeat(16)), Some("c"), None);
        let seen = scope(context.clone(), async { current() }).await;
        assert_eq!(seen, context);
    }
}
