//! Fuzz target `ws_request`: a plain GET of a WebSocket path (route + query string) through
//! the module's router, as a client that has not upgraded yet.
//!
//! Input: a byte choosing a route prefix, then the rest of the path and query.
//!
//! Properties: every answer under `/ws` is our JSON `{"error": <non-empty>}` (never a framework
//! plain-text body), either 400 (counted once as `invalid_request`) or 426 with
//! `Upgrade: websocket` (counted once as `not_websocket`: the request itself was fine); a
//! path route reaches 426 only when its address segments carry the right bech32 prefix and
//! its `since_height` is a height, given once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;
use stream_module::fuzzing::WsRoutes;

const PREFIXES: [&str; 9] = [
    "/ws/subscribe/bank/balance/",
    "/ws/subscribe/bank/balances/",
    "/ws/subscribe/staking/delegations/",
    "/ws/subscribe/staking/delegation/",
    "/ws/subscribe/staking/unbonding-delegations/",
    "/ws/subscribe/staking/unbonding-delegation/",
    "/ws/subscribe/",
    "/ws",
    "/",
];

static ROUTES: OnceLock<WsRoutes> = OnceLock::new();

/// Percent-decodes `s` (bytes, as the router does).
fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn starts_with_ignore_case(s: &[u8], prefix: &str) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// For a 426 on a path route: the address segments must have been acceptable.
fn check_accepted_route(path: &str, query: Option<&str>) {
    let rest = path.strip_prefix("/ws/subscribe/").expect("a path route");
    let segments: Vec<&str> = rest.split('/').collect();
    let (stream, args) = (format!("{}/{}", segments[0], segments[1]), &segments[2..]);
    let account = |s: &str| {
        let d = decode(s);
        assert!(
            starts_with_ignore_case(&d, "juno1") && !starts_with_ignore_case(&d, "junovaloper"),
            "accepted account {s:?} in {path}"
        );
    };
    let validator = |s: &str| {
        assert!(
            starts_with_ignore_case(&decode(s), "junovaloper1"),
            "accepted validator {s:?} in {path}"
        );
    };
    match stream.as_str() {
        "bank/balance" => {
            account(args[0]);
            let denom = decode(&args[1..].join("/"));
            assert!(denom.first().is_some_and(u8::is_ascii_alphabetic), "{path}");
            assert!((3..=128).contains(&denom.len()), "{path}");
        }
        "staking/delegation" | "staking/unbonding-delegation" => {
            assert_eq!(args.len(), 2, "{path}");
            account(args[0]);
            validator(args[1]);
        }
        _ => {
            assert_eq!(args.len(), 1, "{path}");
            account(args[0]);
        }
    }
    let mut since_heights = 0;
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(&k.replace('+', " ")) == b"since_height" {
            since_heights += 1;
            assert_eq!(
                since_heights, 1,
                "a repeated since_height was accepted: {path}"
            );
            let v = String::from_utf8_lossy(&decode(&v.replace('+', " "))).into_owned();
            let v = v.trim();
            assert!(
                v.is_empty() || v.parse::<i64>().is_ok_and(|h| h >= 0),
                "accepted since_height {v:?} in {path}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let target = format!("{}{rest}", PREFIXES[usize::from(choice) % PREFIXES.len()]);
    let routes = ROUTES.get_or_init(WsRoutes::new);
    let Some(reply) = routes.get(&target) else {
        return; // not a URI an HTTP server would route
    };
    let target = target.split_once('#').map_or(target.as_str(), |(t, _)| t);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if !(path == "/ws" || path.starts_with("/ws/")) {
        return; // not ours: the node's router answers
    }
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/json"),
        "{target}: {reply:?}"
    );
    let body: Value = serde_json::from_str(&reply.body).expect("a JSON body");
    let error = body["error"].as_str().expect("an error message");
    assert!(!error.trim().is_empty(), "{target}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "{target}: {body}"
    );
    match reply.status {
        400 => {
            assert_eq!(reply.rejected.get("invalid_request"), Some(&1), "{target}");
            assert_eq!(reply.rejected.len(), 1, "{target}: {reply:?}");
        }
        426 => {
            assert_eq!(reply.upgrade.as_deref(), Some("websocket"), "{target}");
            assert_eq!(reply.rejected.get("not_websocket"), Some(&1), "{target}");
            assert_eq!(reply.rejected.len(), 1, "{target}: {reply:?}");
            if path != "/ws" {
                check_accepted_route(path, query);
            }
        }
        other => panic!("{target}: unexpected status {other}: {reply:?}"),
    }
});
