//! Live updates of the operations page: the SLA watch (`WatchSla`, R-T5), called as
//! the signed-in person, sent as server-sent events. The stream ends when the session
//! does (expiry or sign-out, checked at least every [`SESSION_CHECK`]) and when the
//! server drains.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kefu_api::pb;
use kefu_api::pb::reporting_service_server::ReportingService;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::pages::operations::{rule_name, state_name};
use crate::web::{refusal, when, Signed, REPORTS};
use crate::Shared;

/// How often a live stream checks that its session still stands.
const SESSION_CHECK: Duration = Duration::from_secs(5);

/// `GET /operations/live`: `sla` events (one item each), then `ready` once the items of
/// the moment have all been sent.
pub async fn stream(State(state): State<Shared>, signed: Signed) -> Response {
    let reports = state.services.reporting();
    let pass = match signed.admit(&state, REPORTS) {
        Ok(pass) => pass,
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    let watch = reports.watch_sla(signed.request(pb::WatchSlaRequest::default()));
    let mut items = match watch.await {
        Ok(answer) => Box::pin(answer.into_inner()),
        Err(status) => return refusal(signed.lang, Some(&signed), &status),
    };
    // Open for as long as the page is: it holds its call slot and its principal's
    // share like a gRPC stream, not the expensive-read slot.
    let pass = pass.answered();
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(16);
    let zone = state.config.time_zone;
    let t = signed.lang.texts();
    let mut draining = state.draining.clone();
    tokio::spawn(async move {
        let _pass = pass;
        let mut check = tokio::time::interval(SESSION_CHECK);
        loop {
            let next = tokio::select! {
                next = items.next() => next,
                _ = check.tick() => {
                    if state.sessions.get(&signed.id).is_none() { break }
                    continue;
                }
                _ = draining.wait_for(|draining| *draining) => break,
                // The page went away: end now, giving back the call's slots.
                () = tx.closed() => break,
            };
            let event = match next {
                Some(Ok(message)) if message.caught_up => {
                    Event::default().event("ready").data("{}")
                }
                Some(Ok(message)) => match message.item {
                    Some(item) => item_event(t, zone, &item),
                    None => continue,
                },
                Some(Err(status)) => {
                    tracing::debug!(code = ?status.code(), "console: the SLA watch ended");
                    break;
                }
                None => break,
            };
            if tx.send(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()).into_response()
}

fn item_event(t: &'static crate::i18n::Texts, zone: chrono_tz::Tz, item: &pb::SlaBreach) -> Event {
    let (rule_key, rule) = rule_name(t, item.rule);
    let (state_key, state) = state_name(t, item.state);
    let data = serde_json::json!({
        "key": format!("{rule_key}:{}", item.subject_id),
        "rule": rule,
        "state": state_key,
        "state_text": state,
        "case": item.case_number,
        "owner": item.owner,
        "due": when(zone, item.due_at.as_ref()),
    });
    Event::default().event("sla").data(data.to_string())
}
