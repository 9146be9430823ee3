//! `EventService`: the log, live or paged, each event as the caller may read it
//! (`feed`: fields redacted by the access table, the rest opened or `[erased]`).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use kefu_event_store::{category_of, RecordedEvent};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Ctx;
use crate::access::{authorize, Rpc};
use crate::auth::principal;
use crate::convert as cv;
use crate::error::ApiError;
use crate::feed::{Reader, Shown};
use crate::pb;
use crate::pb::event_service_server::EventService;

/// Events buffered per subscriber before the reader waits for the client.
const SUBSCRIBER_BUFFER: usize = 256;
const MAX_CATEGORIES: usize = 16;

#[derive(Debug, Clone)]
pub struct Events {
    pub ctx: Ctx,
}

pub(crate) type Reply<T> = Result<Response<T>, Status>;
pub(crate) type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub fn event_out(Shown { event, redacted }: Shown) -> pb::Event {
    pb::Event {
        position: event.position,
        stream_id: event.stream_id,
        stream_version: event.stream_version,
        event_id: event.event_id.to_string(),
        event_type: event.event_type,
        schema_version: event.schema_version,
        payload_json: event.payload.to_string(),
        metadata: Some(pb::EventMetadata {
            actor: event.metadata.actor.unwrap_or_default(),
            roles: event.metadata.roles,
            capacity: event.metadata.capacity.unwrap_or_default(),
            request_id: event.metadata.request_id.unwrap_or_default(),
            correlation_id: event.metadata.correlation_id.unwrap_or_default(),
            causation_id: event.metadata.causation_id.unwrap_or_default(),
            source: event.metadata.source.unwrap_or_default(),
            trace_id: event.metadata.trace_id.unwrap_or_default(),
        }),
        recorded_at: Some(cv::timestamp(event.recorded_at)),
        prev_hash: hex::encode(event.prev_hash),
        hash: hex::encode(event.hash),
        redacted_fields: redacted,
    }
}

fn categories(requested: &[String]) -> Result<Vec<String>, ApiError> {
    if requested.len() > MAX_CATEGORIES {
        return Err(ApiError::field("categories", format!("at most {MAX_CATEGORIES}")));
    }
    for (i, category) in requested.iter().enumerate() {
        if category.is_empty()
            || category.len() > 64
            || !category.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ApiError::field(
                &format!("categories[{i}]"),
                "must be a stream category such as complaint",
            ));
        }
    }
    Ok(requested.to_vec())
}

fn wanted(categories: &[String], event: &RecordedEvent) -> bool {
    categories.is_empty() || categories.iter().any(|c| c == category_of(&event.stream_id))
}

#[tonic::async_trait]
impl EventService for Events {
    type SubscribeStream = EventStream<pb::SubscribeResponse>;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Reply<Self::SubscribeStream> {
        let who = principal(&request)?;
        authorize(&who, Rpc::Subscribe)?;
        let req = request.into_inner();
        let categories = categories(&req.categories)?;
        if i64::try_from(req.from_position).is_err() {
            return Err(ApiError::field("from_position", "is out of range").into());
        }
        let (sender, receiver) = tokio::sync::mpsc::channel(SUBSCRIBER_BUFFER);
        let store = self.ctx.commands.store().clone();
        let mut events = Box::pin(store.subscribe(req.from_position));
        let mut reader = Reader::new(self.ctx.clone(), who);
        tokio::spawn(async move {
            while let Some(next) = events.next().await {
                let message = match next {
                    Ok(event) if !wanted(&categories, &event) => continue,
                    Ok(event) => match reader.show(vec![event]).await {
                        Ok(shown) => Ok(pb::SubscribeResponse {
                            event: shown.into_iter().next().map(event_out),
                        }),
                        Err(error) => Err(Status::from(error)),
                    },
                    Err(error) => Err(Status::from(ApiError::from(error))),
                };
                let failed = message.is_err();
                // Waits while the client is slow: backpressure; ends when it hangs up.
                if sender.send(message).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn read_all(&self, request: Request<pb::ReadAllRequest>) -> Reply<pb::ReadAllResponse> {
        let who = principal(&request)?;
        authorize(&who, Rpc::ReadAll)?;
        let req = request.into_inner();
        let categories = categories(&req.categories)?;
        let limit = match req.limit {
            0 => 100,
            limit @ 1..=1_000 => limit,
            _ => return Err(ApiError::field("limit", "must be at most 1000").into()),
        };
        let from = req.from_position.max(1);
        let store = self.ctx.commands.store();
        let page = store
            .read_all(from, usize::try_from(limit).unwrap_or(100))
            .await
            .map_err(ApiError::from)?;
        let next_position = page.last().map_or(from, |event| event.position + 1);
        let page: Vec<RecordedEvent> =
            page.into_iter().filter(|event| wanted(&categories, event)).collect();
        let shown = Reader::new(self.ctx.clone(), who).show(page).await?;
        let events = shown.into_iter().map(event_out).collect();
        Ok(Response::new(pb::ReadAllResponse { events, next_position }))
    }
}
