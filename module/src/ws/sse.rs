//! Server-Sent Events (`GET /sse/subscribe/<stream>/...`): the path routes' subscriptions
//! for clients that cannot hold a WebSocket (`curl -N`, `EventSource`, proxies that strip
//! upgrades). Each update is one event: `id: <height>`, `event: update`, `data: <the
//! WebSocket frame's JSON>`; a `: subscribed` comment opens the stream and a comment line
//! every `ping_interval` keeps proxies from timing it out. `Last-Event-ID` (what `EventSource` sends when it reconnects), or else
//! `?since_height=`, resumes exactly as a WebSocket resume does. The stream ends with one
//! `event: error` whose data is `{"code": .., "error": ..}` (410 when the client must
//! resume or re-snapshot, 503 on shutdown). Refusals before the stream starts are the
//! WebSocket routes' HTTP status + JSON body.

use super::{Encoding, PathParams, QueryParams, WsState};
use crate::chain::{self, RequestError};
use crate::edge::{Refusal, StreamType};
use crate::handle::{Start, Subscription};
use crate::limits::ConnectionPermit;
use crate::metrics::Transport;
use crate::outbox::{CloseReason, Next, shutting_down};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::sync::watch;

/// A handler for one of the six SSE routes.
#[allow(clippy::type_complexity)]
pub(super) fn route(
    stream: StreamType,
) -> impl Fn(
    State<WsState>,
    ConnectInfo<SocketAddr>,
    HeaderMap,
    PathParams,
    QueryParams,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |State(ws), ConnectInfo(peer), headers, params, query| {
        Box::pin(async move {
            match open(ws, peer, headers, stream, params, query).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        })
    }
}

/// `Last-Event-ID`: the height of the last event the client received (an empty one means
/// none, as the SSE spec resets it so).
fn last_event_id(ws: &WsState, headers: &HeaderMap) -> Result<Option<Start>, Refusal> {
    let Some(v) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = v.to_str().map_err(|_| {
        ws.refuse(RequestError::LastEventId(
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ))
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let height: i64 = text
        .parse()
        .map_err(|_| ws.refuse(RequestError::LastEventId(text.to_string())))?;
    chain::start_from(height)
        .map(Some)
        .map_err(|e| ws.refuse(e))
}

async fn open(
    ws: WsState,
    peer: SocketAddr,
    headers: HeaderMap,
    stream: StreamType,
    params: PathParams,
    query: QueryParams,
) -> Result<Response, Refusal> {
    let resume_after = last_event_id(&ws, &headers)?;
    let request = ws.path_request(stream, params, query, resume_after)?;
    if request.encoding != Encoding::Json {
        return Err(ws.refuse(RequestError::ProtoOverSse));
    }
    let origin = headers.get(header::ORIGIN).cloned();
    ws.check_origin(&headers)?;
    let caller = ws.caller(peer, &headers, request.token.as_deref())?;
    let (sub, connection) = ws
        .handle
        .open(&caller, Transport::Sse, request.key, request.start)
        .await?;
    let events = events(sub, connection, ws.handle.shutdown.clone());
    let mut response = Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(ws.config.ping_interval)
                .text("keepalive"),
        )
        .into_response();
    let h = response.headers_mut();
    // Proxies such as nginx buffer responses unless told not to.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Some(origin) = origin {
        // A browser on another origin (already checked against allowed_origins) may read it.
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    Ok(response)
}

/// What the stream still has to do. (One per stream; its size only costs a move per event.)
#[allow(clippy::large_enum_variant)]
enum State_ {
    Live {
        sub: Subscription,
        connection: ConnectionPermit,
        shutdown: watch::Receiver<bool>,
    },
    Done,
}

/// The subscription's updates as events, ending with one `error` event.
fn events(
    sub: Subscription,
    connection: ConnectionPermit,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    let start = State_::Live {
        sub,
        connection,
        shutdown,
    };
    // A first comment, so that the response head and the stream's first bytes go out at once
    // even when the first update is a while away (a resume of a quiet value).
    let opened = futures_util::stream::once(async { Ok(Event::default().comment("subscribed")) });
    opened.chain(futures_util::stream::unfold(start, |state| async move {
        let State_::Live {
            sub,
            connection,
            mut shutdown,
        } = state
        else {
            return None;
        };
        let next = tokio::select! {
            _ = shutting_down(&mut shutdown) => Next::Closed(CloseReason::Shutdown),
            next = sub.next() => next,
        };
        match next {
            Next::Update(u) => {
                let event = Event::default()
                    .id(u.height.to_string())
                    .event("update")
                    .data(u.json());
                Some((
                    Ok(event),
                    State_::Live {
                        sub,
                        connection,
                        shutdown,
                    },
                ))
            }
            Next::Closed(r) => {
                drop((sub, connection));
                Some((Ok(error_event(r)), State_::Done))
            }
        }
    }))
}

/// The last event of a stream that ends.
fn error_event(r: CloseReason) -> Event {
    Event::default()
        .event("error")
        .data(Refusal::Closed(r).sse_error())
}
