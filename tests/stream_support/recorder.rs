//! `Recorder`: one open `juno.stream.v1` stream read by a background task, so a test can wait
//! for the next message (bounded), see that nothing is pending, or see how the stream ended.
//! Dropping a recorder cancels its stream, as a client that goes away does.

use std::time::Duration;

use stream_proto::juno::stream::v1::query_client::QueryClient;
use stream_proto::juno::stream::v1::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use super::{STREAM_TIMEOUT, StreamKey, StreamMessage, StreamValue};

/// What the background reader saw.
#[derive(Debug)]
enum Event {
    Message(StreamMessage),
    /// A message that breaks the wire contract (e.g. `found` disagrees with the object).
    Invalid(String),
    /// The stream ended: with a status, or silently (`None`: the response ended with OK).
    End(Option<Status>),
}

/// One open stream and everything it has delivered so far.
pub struct Recorder {
    /// What the stream follows.
    pub key: StreamKey,
    events: mpsc::UnboundedReceiver<Event>,
    reader: JoinHandle<()>,
    received: Vec<StreamMessage>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Dropping the tonic stream inside the task resets the HTTP/2 stream (a client leaving).
        self.reader.abort();
    }
}

impl Recorder {
    /// Opens the stream for `key` with `since_height` 0; the call's status if the node
    /// refuses it before the stream starts.
    pub async fn open(channel: Channel, key: &StreamKey) -> Result<Recorder, Status> {
        Recorder::open_since(channel, key, 0).await
    }

    /// Opens the stream for `key` with the given `since_height`.
    pub async fn open_since(
        channel: Channel,
        key: &StreamKey,
        since_height: i64,
    ) -> Result<Recorder, Status> {
        let mut client = QueryClient::new(channel);
        let (events, reader) = match key.clone() {
            StreamKey::Balance { address, denom } => {
                let request = StreamBalanceRequest {
                    address,
                    denom,
                    since_height,
                };
                let stream = client.stream_balance(request).await?.into_inner();
                read(stream, |m| {
                    let coin = m.balance.ok_or("StreamBalanceResponse without a balance")?;
                    Ok((m.height, StreamValue::Balance(coin)))
                })
            }
            StreamKey::AllBalances { address } => {
                let request = StreamAllBalancesRequest {
                    address,
                    since_height,
                };
                let stream = client.stream_all_balances(request).await?.into_inner();
                read(stream, |m| {
                    Ok((m.height, StreamValue::AllBalances(m.balances)))
                })
            }
            StreamKey::Delegations { delegator } => {
                let request = StreamDelegationsRequest {
                    delegator_address: delegator,
                    since_height,
                };
                let stream = client.stream_delegations(request).await?.into_inner();
                read(stream, |m| {
                    Ok((m.height, StreamValue::Delegations(m.delegations)))
                })
            }
            StreamKey::Delegation {
                delegator,
                validator,
            } => {
                let request = StreamDelegationRequest {
                    delegator_address: delegator,
                    validator_address: validator,
                    since_height,
                };
                let stream = client.stream_delegation(request).await?.into_inner();
                read(stream, |m| {
                    found_matches(m.found, m.delegation.is_some())?;
                    Ok((m.height, StreamValue::Delegation(m.delegation)))
                })
            }
            StreamKey::UnbondingDelegations { delegator } => {
                let request = StreamUnbondingDelegationsRequest {
                    delegator_address: delegator,
                    since_height,
                };
                let stream = client
                    .stream_unbonding_delegations(request)
                    .await?
                    .into_inner();
                read(stream, |m| {
                    Ok((m.height, StreamValue::UnbondingDelegations(m.delegations)))
                })
            }
            StreamKey::UnbondingDelegation {
                delegator,
                validator,
            } => {
                let request = StreamUnbondingDelegationRequest {
                    delegator_address: delegator,
                    validator_address: validator,
                    since_height,
                };
                let stream = client
                    .stream_unbonding_delegation(request)
                    .await?
                    .into_inner();
                read(stream, |m| {
                    found_matches(m.found, m.delegation.is_some())?;
                    Ok((m.height, StreamValue::UnbondingDelegation(m.delegation)))
                })
            }
        };
        Ok(Recorder {
            key: key.clone(),
            events,
            reader,
            received: Vec::new(),
        })
    }

    /// Opens the stream for `key`, failing the test if the node refuses it.
    pub async fn start(channel: Channel, key: &StreamKey) -> Recorder {
        Recorder::open(channel, key)
            .await
            .unwrap_or_else(|s| panic!("{} {key:?} refused: {s:?}", key.rpc()))
    }

    /// Cancels the stream (as a client that goes away) and waits until the client side has
    /// let go of it, so the reset is on its way to the node when this returns.
    pub async fn close(mut self) {
        self.reader.abort();
        let _ = (&mut self.reader).await;
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> &[StreamMessage] {
        &self.received
    }

    /// The next message (waits up to [`STREAM_TIMEOUT`]); fails the test if the stream ends
    /// or breaks the contract instead.
    pub async fn next(&mut self) -> StreamMessage {
        match self.next_within(STREAM_TIMEOUT).await {
            Some(message) => message,
            None => panic!(
                "{} {:?}: no message within {STREAM_TIMEOUT:?}; received so far {:#?}",
                self.key.rpc(),
                self.key,
                self.received
            ),
        }
    }

    /// The next message if one arrives within `wait`; fails the test if the stream ends.
    pub async fn next_within(&mut self, wait: Duration) -> Option<StreamMessage> {
        let event = tokio::time::timeout(wait, self.events.recv()).await.ok()?;
        self.accept(event)
    }

    /// A message already delivered and not yet taken, without waiting.
    pub fn pending(&mut self) -> Option<StreamMessage> {
        let event = self.events.try_recv().ok();
        self.accept(event)
    }

    /// Waits for the stream to end and returns how: `Some(status)`, or `None` for a silent
    /// end (the server closed the stream with OK). Messages before the end are kept.
    pub async fn end(&mut self) -> Option<Status> {
        let deadline = tokio::time::Instant::now() + STREAM_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{} {:?}: did not end within {STREAM_TIMEOUT:?}",
                        self.key.rpc(),
                        self.key
                    )
                });
            match event {
                Some(Event::End(status)) => return status,
                None => panic!("{}: reader task gone without an end", self.key.rpc()),
                other => {
                    self.accept(other);
                }
            }
        }
    }

    fn accept(&mut self, event: Option<Event>) -> Option<StreamMessage> {
        let rpc = self.key.rpc();
        match event? {
            Event::Message(message) => {
                if let Some(last) = self.received.last() {
                    assert!(
                        message.height > last.height,
                        "{rpc} {:?}: heights must strictly increase: {} after {}\nprevious \
                         {last:#?}\nnow {message:#?}",
                        self.key,
                        message.height,
                        last.height
                    );
                }
                assert!(message.height >= 1, "{rpc}: height {}", message.height);
                self.received.push(message.clone());
                Some(message)
            }
            Event::Invalid(reason) => panic!("{rpc} {:?}: {reason}", self.key),
            Event::End(status) => panic!(
                "{rpc} {:?}: stream ended ({status:?}) while a message was expected; received \
                 {:#?}",
                self.key, self.received
            ),
        }
    }
}

/// The status a stream for `key` fails with, whether the node refuses the call or ends the
/// stream with an error before any message. Fails the test if a message arrives instead.
pub async fn open_error(channel: Channel, key: &StreamKey) -> Status {
    open_error_since(channel, key, 0).await
}

/// Like [`open_error`] with `since_height`.
pub async fn open_error_since(channel: Channel, key: &StreamKey, since_height: i64) -> Status {
    let mut recorder = match Recorder::open_since(channel, key, since_height).await {
        Err(status) => return status,
        Ok(recorder) => recorder,
    };
    let event = tokio::time::timeout(STREAM_TIMEOUT, recorder.events.recv())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {key:?} (since_height {since_height}): neither refused nor ended within \
                 {STREAM_TIMEOUT:?}",
                key.rpc()
            )
        });
    match event {
        Some(Event::End(Some(status))) => status,
        other => panic!(
            "{} {key:?} (since_height {since_height}): expected an error status, got {other:?}",
            key.rpc()
        ),
    }
}

fn found_matches(found: bool, has_object: bool) -> Result<(), String> {
    if found == has_object {
        Ok(())
    } else {
        Err(format!(
            "found={found} but the object is {}",
            if has_object { "set" } else { "unset" }
        ))
    }
}

/// Reads `stream` in a task, turning each response into an event with `convert`.
fn read<T: Send + 'static>(
    mut stream: Streaming<T>,
    convert: fn(T) -> Result<(i64, StreamValue), String>,
) -> (mpsc::UnboundedReceiver<Event>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let event = match stream.message().await {
                Ok(Some(response)) => match convert(response) {
                    Ok((height, value)) => Event::Message(StreamMessage { height, value }),
                    Err(reason) => Event::Invalid(reason),
                },
                Ok(None) => Event::End(None),
                Err(status) => Event::End(Some(status)),
            };
            let last = matches!(event, Event::End(_));
            if tx.send(event).is_err() || last {
                return;
            }
        }
    });
    (rx, task)
}
