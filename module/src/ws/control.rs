//! The `/ws` control protocol: `{"id":1,"method":"subscribe","stream":"bank/balances",
//! "params":{"address":".."}}` -> `{"id":1,"result":{"subscription":"s1"}}`, updates
//! `{"subscription":"s1","data":{..}}`, `unsubscribe` with `{"params":{"subscription":"s1"}}`,
//! and errors `{"id":..,"error":{"code":..,"message":..}}` that leave the connection open.
//! Error codes follow HTTP: 400 bad request, 404 unknown subscription, 429 subscription
//! limit, 503 unavailable.

use super::request::start_from;
use crate::chain::Chain;
use crate::edge::{Caller, Naming, Param, Refusal, StreamType, subscription_key};
use crate::handle::{Handle, Start, Subscription};
use crate::key::SubscriptionKey;
use crate::limits::{LimitError, SubscriptionPermit};
use crate::metrics::Metrics;
use crate::outbox::CloseReason;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;

/// A reply text.
pub struct Reply(pub String);

/// A request id, echoed exactly as the client wrote it: a JSON string or integer, kept as its
/// raw text so that no float conversion turns `18446744073709551616` into
/// `1.8446744073709552e19`. `null` when the message had no usable id.
#[derive(Debug, Clone, Default)]
pub struct Id(Option<Box<RawValue>>);

impl Id {
    /// The id as it appears in replies (`null` when there is none).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn raw(&self) -> &str {
        self.0.as_deref().map_or("null", RawValue::get)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(raw) => raw.serialize(s),
            None => s.serialize_unit(),
        }
    }
}

/// A parsed control message.
pub enum Request {
    /// Subscribe to a key.
    Subscribe {
        /// Echoed request id.
        id: Id,
        /// What.
        key: SubscriptionKey,
        /// From a snapshot, or resumed after a height.
        start: Start,
    },
    /// End a subscription.
    Unsubscribe {
        /// Echoed request id.
        id: Id,
        /// `s<N>` from the subscribe result.
        subscription: String,
    },
}

/// The fields of a control message, each still raw so that a field of the wrong type is
/// refused by name with the id echoed, instead of failing the whole message.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

const EXAMPLE: &str =
    r#"{"id":1,"method":"subscribe","stream":"bank/balances","params":{"address":"..."}}"#;

#[derive(Serialize)]
struct ErrorReply<'a> {
    id: &'a Id,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
}

#[derive(Serialize)]
struct ResultReply<'a> {
    id: &'a Id,
    result: Json,
}

fn error(id: &Id, code: u16, message: impl Into<String>) -> Reply {
    let message = message.into();
    let reply = ErrorReply {
        id,
        error: ErrorBody {
            code,
            message: &message,
        },
    };
    Reply(serde_json::to_string(&reply).expect("a reply serializes"))
}

fn result(id: &Id, result: Json) -> String {
    serde_json::to_string(&ResultReply { id, result }).expect("a reply serializes")
}

/// What kind of JSON value `raw` is, for error messages.
fn kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// A JSON integer literal (no fraction, no exponent), of any size.
fn is_integer(raw: &RawValue) -> bool {
    let digits = raw.get().strip_prefix('-').unwrap_or(raw.get());
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The id, if it is one a reply can echo: a string or an integer (JSON-RPC's rule, without
/// fractions, which no client uses as an id and which cannot all be echoed exactly).
fn id_of(raw: Option<&RawValue>) -> Result<Id, Reply> {
    match raw {
        None => Ok(Id::default()),
        Some(raw) if raw.get().starts_with('"') || is_integer(raw) => Ok(Id(Some(raw.to_owned()))),
        Some(raw) => Err(error(
            &Id::default(),
            400,
            format!(
                "\"id\" must be a string or an integer, got {}: {}",
                kind(raw),
                raw.get()
            ),
        )),
    }
}

/// A string field; `None` when absent or null.
fn text(
    id: &Id,
    field: &str,
    raw: Option<&RawValue>,
    expected: &str,
) -> Result<Option<String>, Reply> {
    raw.map(|raw| {
        serde_json::from_str::<String>(raw.get()).map_err(|_| {
            error(
                id,
                400,
                format!("{field} must be a string ({expected}), got {}", kind(raw)),
            )
        })
    })
    .transpose()
}

/// The `params` object (absent or null: empty).
fn params_of<'a>(
    id: &Id,
    raw: Option<&'a RawValue>,
) -> Result<BTreeMap<String, &'a RawValue>, Reply> {
    let Some(raw) = raw else {
        return Ok(BTreeMap::new());
    };
    let mut params: BTreeMap<String, &'a RawValue> =
        serde_json::from_str(raw.get()).map_err(|_| {
            error(
                id,
                400,
                format!(
                    "\"params\" must be an object such as {{\"address\":\"...\"}}, got {}",
                    kind(raw)
                ),
            )
        })?;
    params.retain(|_, v| v.get() != "null");
    Ok(params)
}

/// `params.since_height`: an integer, or a string holding one (as in the `?since_height=`
/// query); its digits go to the shared rule unchanged, so a refusal quotes them exactly.
fn since_height(params: &BTreeMap<String, &RawValue>) -> Option<String> {
    let raw = params.get("since_height")?;
    Some(match serde_json::from_str::<String>(raw.get()) {
        Ok(s) => s,
        Err(_) => raw.get().to_string(),
    })
}

/// Parses a control message, or the error reply for it (refused subscriptions are counted).
pub fn parse_with(handle: &Handle, text: &str) -> Result<Request, Reply> {
    parse(&handle.chain, &handle.metrics, text)
}

/// [`parse_with`], given the chain and the metrics.
pub fn parse(chain: &Chain, metrics: &Metrics, message: &str) -> Result<Request, Reply> {
    let raw: &RawValue = serde_json::from_str(message).map_err(|e| {
        error(
            &Id::default(),
            400,
            format!("malformed control message: {e}; expected {EXAMPLE}"),
        )
    })?;
    if !raw.get().starts_with('{') {
        return Err(error(
            &Id::default(),
            400,
            format!(
                "a control message is a JSON object, got {}; expected {EXAMPLE}",
                kind(raw)
            ),
        ));
    }
    // Can fail only on a repeated field, which leaves the id ambiguous.
    let fields: Fields = serde_json::from_str(raw.get()).map_err(|e| {
        error(
            &Id::default(),
            400,
            format!("malformed control message: {e}; expected {EXAMPLE}"),
        )
    })?;
    let id = id_of(fields.id)?;
    let method = text(
        &id,
        "\"method\"",
        fields.method,
        "\"subscribe\" or \"unsubscribe\"",
    )?;
    let params = params_of(&id, fields.params)?;
    match method.as_deref() {
        Some("subscribe") => {
            let stream = text(&id, "\"stream\"", fields.stream, "e.g. \"bank/balances\"")?
                .ok_or_else(|| {
                    error(
                        &id,
                        400,
                        "subscribe needs \"stream\", e.g. \"bank/balances\"",
                    )
                })?;
            let refused = |reply: Reply| {
                metrics.rejected("invalid_request").inc();
                reply
            };
            let start = start_from(since_height(&params).as_deref())
                .map_err(|e| refused(error(&id, 400, e.to_string())))?;
            let mut values = BTreeMap::new();
            for p in Param::ALL {
                let name = p.name(Naming::Http);
                let field = format!("params.{name}");
                if let Some(v) = text(&id, &field, params.get(name).copied(), &p.expected(chain))
                    .map_err(refused)?
                {
                    values.insert(name, v);
                }
            }
            let key = StreamType::named(&stream)
                .and_then(|s| {
                    subscription_key(chain, s, Naming::Http, |p| {
                        values.get(p.name(Naming::Http)).map(String::as_str)
                    })
                })
                .map_err(|e| refused(error(&id, 400, e.to_string())))?;
            Ok(Request::Subscribe { id, key, start })
        }
        Some("unsubscribe") => {
            let subscription = text(
                &id,
                "params.subscription",
                params.get("subscription").copied(),
                "the \"s1\" of a subscribe result",
            )?
            .ok_or_else(|| {
                error(
                    &id,
                    400,
                    "unsubscribe needs \"params\":{\"subscription\":\"s1\"}",
                )
            })?;
            Ok(Request::Unsubscribe { id, subscription })
        }
        Some(other) => Err(error(
            &id,
            400,
            format!("unknown method {other:?}; use \"subscribe\" or \"unsubscribe\""),
        )),
        None => Err(error(
            &id,
            400,
            "missing \"method\"; use \"subscribe\" or \"unsubscribe\"",
        )),
    }
}

/// Admits and registers a subscription of `caller` (what its token allows, then the slot);
/// on success the snapshot waits in its outbox.
pub async fn subscribe(
    handle: &Handle,
    caller: &Caller,
    permit: Result<SubscriptionPermit, LimitError>,
    id: Id,
    key: SubscriptionKey,
    start: Start,
) -> Result<(Id, Subscription), Reply> {
    let admitted = async {
        caller
            .allows(&key, &handle.chain)
            .map_err(|r| r.count(&handle.metrics))?;
        let permit = permit?;
        handle
            .subscribe(key, start, permit)
            .await
            .map_err(|r| Refusal::Closed(r).count(&handle.metrics))
    };
    match admitted.await {
        Ok(sub) => Ok((id, sub)),
        Err(r) => Err(refusal(&id, &r)),
    }
}

/// A refusal as a `/ws` error reply: the request edge's HTTP status as the code.
fn refusal(id: &Id, r: &Refusal) -> Reply {
    error(id, r.http_status().as_u16(), r.to_string())
}

/// `{"id":..,"result":{"subscription":sid}}`.
pub fn subscribed(id: &Id, sid: &str) -> String {
    result(id, json!({"subscription": sid}))
}

/// `{"id":..,"result":{"unsubscribed":sid}}`.
pub fn unsubscribed(id: &Id, sid: &str) -> Reply {
    Reply(result(id, json!({"unsubscribed": sid})))
}

/// Unknown subscription id.
pub fn unknown_subscription(id: &Id, sid: &str) -> Reply {
    error(
        id,
        404,
        format!("no subscription {sid:?} on this connection"),
    )
}

/// Binary frames are not part of the protocol.
pub fn binary_refused() -> String {
    error(
        &Id::default(),
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
    let r = Refusal::Closed(r.clone());
    json!({"subscription": sid, "error": {"code": r.http_status().as_u16(), "message": r.to_string()}})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_abci_listener::Address;

    use crate::fuzzing::chain as juno;

    fn alice() -> String {
        Address::new(vec![9; 20]).unwrap().to_bech32("juno")
    }

    /// The reply to `text` (which must be refused) and whether it counted as a rejection.
    fn refusal(text: &str) -> (String, u64) {
        let metrics = Metrics::default();
        match parse(&juno(), &metrics, text) {
            Err(Reply(reply)) => (reply, metrics.rejected("invalid_request").get()),
            Ok(_) => panic!("{text} was accepted"),
        }
    }

    fn reply(id: &str, message: &str) -> String {
        format!(
            "{{\"id\":{id},\"error\":{{\"code\":400,\"message\":{}}}}}",
            Json::from(message)
        )
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_and_the_id_echoed() {
        let text =
            r#"{"id":7,"method":"subscribe","stream":"bank/balances","params":{"address":123}}"#;
        assert_eq!(
            refusal(text),
            (
                reply(
                    "7",
                    "params.address must be a string (a juno1... address), got a number"
                ),
                1
            )
        );
        assert_eq!(
            refusal(r#"{"id":"x","method":1}"#).0,
            reply(
                "\"x\"",
                "\"method\" must be a string (\"subscribe\" or \"unsubscribe\"), got a number"
            )
        );
        assert_eq!(
            refusal(r#"{"id":3,"method":"subscribe","stream":["bank/balances"]}"#).0,
            reply(
                "3",
                "\"stream\" must be a string (e.g. \"bank/balances\"), got an array"
            )
        );
        assert_eq!(
            refusal(r#"{"id":4,"method":"subscribe","stream":"bank/balances","params":[1]}"#).0,
            reply(
                "4",
                "\"params\" must be an object such as {\"address\":\"...\"}, got an array"
            )
        );
        assert_eq!(
            refusal(r#"{"id":5,"method":"unsubscribe","params":{"subscription":1}}"#).0,
            reply(
                "5",
                "params.subscription must be a string (the \"s1\" of a subscribe result), got a number"
            )
        );
    }

    #[test]
    fn ids_are_echoed_exactly_whatever_their_size() {
        // Beyond f64's range too (from the ws_control corpus: id_beyond_any_float).
        let huge = format!("1844{}", "5".repeat(330));
        for id in [
            huge.as_str(),
            "18446744073709551616",
            "-123456789012345678901234567890",
            "9007199254740993",
            "\"x\"",
            "\"\\u0041\"",
            "0",
        ] {
            let (got, _) = refusal(&format!(r#"{{"id":{id},"method":"fly"}}"#));
            assert_eq!(
                got,
                reply(
                    id,
                    "unknown method \"fly\"; use \"subscribe\" or \"unsubscribe\""
                )
            );
            let text = format!(
                r#"{{"id":{id},"method":"subscribe","stream":"bank/balances","params":{{"address":"{}"}}}}"#,
                alice()
            );
            match parse(&juno(), &Metrics::default(), &text) {
                Ok(Request::Subscribe { id: got, .. }) => {
                    assert_eq!(got.raw(), id);
                    assert_eq!(
                        subscribed(&got, "s1"),
                        format!(r#"{{"id":{id},"result":{{"subscription":"s1"}}}}"#)
                    );
                }
                _ => panic!("{text} was refused"),
            }
        }
    }

    #[test]
    fn unusable_ids_are_named_and_replied_to_with_null() {
        for (id, kind) in [
            ("1.5", "a number"),
            ("1e3", "a number"),
            ("{}", "an object"),
            ("[1]", "an array"),
            ("true", "a boolean"),
        ] {
            let (got, counted) = refusal(&format!(r#"{{"id":{id},"method":"fly"}}"#));
            assert_eq!(
                got,
                reply(
                    "null",
                    &format!("\"id\" must be a string or an integer, got {kind}: {id}")
                )
            );
            assert_eq!(counted, 0);
        }
        assert_eq!(
            refusal(r#"{"id":null,"method":"fly"}"#).0,
            reply(
                "null",
                "unknown method \"fly\"; use \"subscribe\" or \"unsubscribe\""
            )
        );
    }

    #[test]
    fn only_json_objects_are_messages() {
        for (text, kind) in [
            (r#"[1,"subscribe","bank/balances"]"#, "an array"),
            ("42", "a number"),
            (r#""subscribe""#, "a string"),
            ("null", "null"),
        ] {
            assert_eq!(
                refusal(text).0,
                reply(
                    "null",
                    &format!("a control message is a JSON object, got {kind}; expected {EXAMPLE}")
                )
            );
        }
        let (got, _) = refusal(r#"{"id":1,"id":2,"method":"fly"}"#);
        assert!(got.starts_with(r#"{"id":null,"error":{"code":400,"message":"malformed control message: duplicate field `id`"#), "{got}");
        // Whitespace around an object is still an object.
        let text = format!(
            " \n{{\"id\":1,\"method\":\"subscribe\",\"stream\":\"bank/balances\",\"params\":{{\"address\":\"{}\"}}}}\t",
            alice()
        );
        assert!(parse(&juno(), &Metrics::default(), &text).is_ok());
    }

    #[test]
    fn since_height_is_quoted_exactly_when_refused() {
        let text = format!(
            r#"{{"id":1,"method":"subscribe","stream":"bank/balances","params":{{"address":"{}","since_height":18446744073709551616}}}}"#,
            alice()
        );
        assert_eq!(
            refusal(&text),
            (
                reply(
                    "1",
                    "since_height \"18446744073709551616\" is not a height; expected an integer from 0 to 9223372036854775807"
                ),
                1
            )
        );
        let text = format!(
            r#"{{"id":2,"method":"subscribe","stream":"bank/balances","params":{{"address":"{}","since_height":"12","denom":null}}}}"#,
            alice()
        );
        match parse(&juno(), &Metrics::default(), &text) {
            Ok(Request::Subscribe { start, .. }) => assert_eq!(start, Start::Since(12)),
            _ => panic!("{text} was refused"),
        }
    }
}
