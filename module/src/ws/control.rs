//! The `/ws` control protocol: `{"id":1,"method":"subscribe","stream":"bank/balances",
//! "params":{"address":".."}}` -> `{"id":1,"result":{"subscription":"s1"}}`, updates
//! `{"subscription":"s1","data":{..}}`, `unsubscribe` with `{"params":{"subscription":"s1"}}`,
//! and errors `{"id":..,"error":{"code":..,"message":..}}` that leave the connection open.
//! Error codes follow HTTP: 400 bad request, 404 unknown subscription, 429 subscription
//! limit, 503 unavailable.

use super::request::{parse_stream, start_from};
use crate::handle::{Handle, Start, Subscription};
use crate::key::SubscriptionKey;
use crate::limits::{LimitError, SubscriptionPermit};
use crate::outbox::CloseReason;
use serde::Deserialize;
use serde_json::{Value as Json, json};

/// A reply text.
pub struct Reply(pub String);

/// A parsed control message.
pub enum Request {
    /// Subscribe to a key.
    Subscribe {
        /// Echoed request id.
        id: Json,
        /// What.
        key: SubscriptionKey,
        /// From a snapshot, or resumed after a height.
        start: Start,
    },
    /// End a subscription.
    Unsubscribe {
        /// Echoed request id.
        id: Json,
        /// `s<N>` from the subscribe result.
        subscription: String,
    },
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    id: Json,
    method: Option<String>,
    stream: Option<String>,
    #[serde(default)]
    params: serde_json::Map<String, Json>,
}

fn error(id: &Json, code: u16, message: impl Into<String>) -> Reply {
    Reply(json!({"id": id, "error": {"code": code, "message": message.into()}}).to_string())
}

/// Parses a control message, or the error reply for it.
pub fn parse_with(handle: &Handle, text: &str) -> Result<Request, Reply> {
    let raw: Raw = serde_json::from_str(text)
        .map_err(|e| error(&Json::Null, 400, format!("malformed control message: {e}; expected {{\"id\":1,\"method\":\"subscribe\",\"stream\":\"bank/balances\",\"params\":{{\"address\":\"...\"}}}}")))?;
    let param = |k: &str| raw.params.get(k).and_then(Json::as_str);
    match raw.method.as_deref() {
        Some("subscribe") => {
            let stream = raw.stream.as_deref().ok_or_else(|| {
                error(
                    &raw.id,
                    400,
                    "subscribe needs \"stream\", e.g. \"bank/balances\"",
                )
            })?;
            let since = raw.params.get("since_height").map(|v| match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            });
            let (start, key) = start_from(since.as_deref())
                .and_then(|start| Ok((start, parse_stream(&handle.chain, stream, param)?)))
                .map_err(|e| {
                    handle.metrics.rejected("invalid_request").inc();
                    error(&raw.id, 400, e.to_string())
                })?;
            Ok(Request::Subscribe {
                id: raw.id,
                key,
                start,
            })
        }
        Some("unsubscribe") => {
            let subscription = param("subscription")
                .ok_or_else(|| {
                    error(
                        &raw.id,
                        400,
                        "unsubscribe needs \"params\":{\"subscription\":\"s1\"}",
                    )
                })?
                .to_string();
            Ok(Request::Unsubscribe {
                id: raw.id,
                subscription,
            })
        }
        Some(other) => Err(error(
            &raw.id,
            400,
            format!("unknown method {other:?}; use \"subscribe\" or \"unsubscribe\""),
        )),
        None => Err(error(
            &raw.id,
            400,
            "missing \"method\"; use \"subscribe\" or \"unsubscribe\"",
        )),
    }
}

/// Admits and registers a subscription; on success the snapshot waits in its outbox.
pub async fn subscribe(
    handle: &Handle,
    permit: Result<SubscriptionPermit, LimitError>,
    id: Json,
    key: SubscriptionKey,
    start: Start,
) -> Result<(Json, Subscription), Reply> {
    let permit = permit.map_err(|e| error(&id, 429, e.to_string()))?;
    match handle.subscribe(key, start, permit).await {
        Ok(sub) => Ok((id, sub)),
        Err(r) => Err(error(&id, code(&r), r.to_string())),
    }
}

/// The one place a server-side end becomes a `/ws` error code.
fn code(r: &CloseReason) -> u16 {
    match r {
        CloseReason::Shutdown | CloseReason::Failed(_) => 503,
        CloseReason::OutOfRange(_) => 410,
        CloseReason::InvalidArgument(_) => 400,
    }
}

/// `{"id":..,"result":{"subscription":sid}}`.
pub fn subscribed(id: &Json, sid: &str) -> String {
    json!({"id": id, "result": {"subscription": sid}}).to_string()
}

/// `{"id":..,"result":{"unsubscribed":sid}}`.
pub fn unsubscribed(id: &Json, sid: &str) -> Reply {
    Reply(json!({"id": id, "result": {"unsubscribed": sid}}).to_string())
}

/// Unknown subscription id.
pub fn unknown_subscription(id: &Json, sid: &str) -> Reply {
    error(
        id,
        404,
        format!("no subscription {sid:?} on this connection"),
    )
}

/// Binary frames are not part of the protocol.
pub fn binary_refused() -> String {
    error(
        &Json::Null,
        400,
        "binary messages are not supported; send JSON text",
    )
    .0
}

/// `{"subscription":sid,"data":<update json>}` without re-parsing the cached update JSON.
pub fn update(sid: &str, data: &str) -> String {
    format!("{{\"subscription\":{},\"data\":{data}}}", Json::from(sid))
}

/// The server ended a subscription.
pub fn ended(sid: &str, r: &CloseReason) -> String {
    json!({"subscription": sid, "error": {"code": code(r), "message": r.to_string()}}).to_string()
}
