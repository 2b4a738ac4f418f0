//! Fuzz target `ws_control`: one `/ws` text message through the control-message parser.
//!
//! Properties: every refusal is `{"id":..,"error":{"code":400,"message":<non-empty>}}`; the id
//! is echoed byte for byte when it is a string or an integer (of any size) and is `null`
//! otherwise, in refusals and in accepted requests alike; an unusable id is named in the
//! message; only subscribe refusals are counted as rejected requests; an accepted subscribe
//! names its stream with canonical parameters equal to what was sent (bech32 case aside),
//! and parses again, from those, to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::HashMap;
use stream_module::fuzzing::{self, Control};

/// The id as an independent reading of the message sees it.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

/// What the reply must carry as its id: the raw text of a string or integer id, else null.
fn expected_id(text: &str) -> Option<String> {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r']);
    if !trimmed.starts_with('{') {
        return None;
    }
    let probe: Probe = serde_json::from_str(text).ok()?;
    let raw = probe.id?.get();
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    (raw.starts_with('"') || integer).then(|| raw.to_string())
}

/// An error reply: exactly these fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorReply<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    error: ErrorBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorBody {
    code: u16,
    message: String,
}

/// A JSON object's members, raw (numbers beyond any float stay readable).
fn object(text: &str) -> Option<HashMap<String, Box<RawValue>>> {
    serde_json::from_str(text).ok()
}

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 (the WebSocket layer refuses others).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expected = expected_id(text);
    let expected_raw = expected.as_deref().unwrap_or("null");
    let sent = object(text);
    let field = |name: &str| -> Option<Value> {
        serde_json::from_str(sent.as_ref()?.get(name)?.get()).ok()
    };
    let sent_param = |name: &str| -> Option<Value> {
        let params = object(sent.as_ref()?.get("params")?.get())?;
        serde_json::from_str(params.get(name)?.get()).ok()
    };
    match fuzzing::ws_control(text) {
        Control::Error { reply, counted } => {
            // Read with the id raw: an echoed integer id may be beyond any float.
            let parsed: ErrorReply =
                serde_json::from_str(&reply).expect("a reply is {\"id\",\"error\"}");
            assert_eq!(parsed.error.code, 400, "{reply}");
            let message = parsed.error.message.as_str();
            assert!(!message.trim().is_empty(), "{reply}");
            let id = parsed.id.get();
            if message.contains("duplicate field") {
                assert_eq!(id, "null", "{reply}");
            } else {
                match &expected {
                    Some(raw) => {
                        assert_eq!(id, raw.as_str(), "the id must be echoed exactly: {reply}")
                    }
                    None => assert_eq!(id, "null", "{reply}"),
                }
            }
            let id_present = sent
                .as_ref()
                .and_then(|s| s.get("id"))
                .is_some_and(|id| id.get() != "null");
            if expected.is_none() && id_present && !message.contains("duplicate field") {
                assert!(
                    message.contains("\"id\""),
                    "an unusable id must be named: {reply}"
                );
            }
            if counted {
                assert_eq!(field("method"), Some(json!("subscribe")), "{reply}");
            }
        }
        Control::Unsubscribe { id, subscription } => {
            assert_eq!(id, expected_raw, "the id must be echoed exactly");
            assert_eq!(sent_param("subscription"), Some(json!(subscription)));
        }
        Control::Subscribe { id, request } => {
            assert_eq!(id, expected_raw, "the id must be echoed exactly");
            assert_eq!(field("stream"), Some(json!(request.stream)));
            assert!(request.since_height >= 0);
            for (name, canonical) in &request.params {
                let given = sent_param(name).expect("an accepted parameter was sent");
                let given = given.as_str().expect("parameters are strings");
                if *name == "denom" {
                    assert_eq!(given, canonical);
                } else {
                    assert!(given.eq_ignore_ascii_case(canonical), "{given} {canonical}");
                }
            }
            let again = json!({
                "id": 1,
                "method": "subscribe",
                "stream": request.stream,
                "params": request.params.iter().map(|(k, v)| (k.to_string(), json!(v)))
                    .chain([("since_height".to_string(), json!(request.since_height))])
                    .collect::<serde_json::Map<_, _>>(),
            });
            match fuzzing::ws_control(&again.to_string()) {
                Control::Subscribe { id, request: r } => {
                    assert_eq!(id, "1");
                    assert_eq!(r, request, "the canonical request must parse to itself");
                }
                other => panic!("the canonical request was refused: {other:?}"),
            }
        }
    }
});
