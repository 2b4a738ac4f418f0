//! End-to-end, hostile WebSocket input ([5/11] D3, D8): every inbound size is bounded before
//! it is buffered, broken frames get the close code RFC 6455 assigns them, and no frame of a
//! `/ws` subscription follows its `unsubscribed` reply.

mod support;
mod ws_support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value as Json, json};
use support::accounts::{BOND_DENOM, DEV_KEYS, address};
use support::{TestNode, TestNodeOptions};
use ws_support::client::{RawClient, RawFrame};
use ws_support::expected::WsStream;
use ws_support::{loopback, metrics};

/// Close codes (RFC 6455 7.4.1).
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_PAYLOAD: u16 = 1007;
const MESSAGE_TOO_BIG: u16 = 1009;

/// A client frame: `first` is the first byte (FIN, RSV bits, opcode); the length field says
/// `declared` bytes, of which `payload` is sent (masked if `masked`).
fn frame(first: u8, masked: bool, declared: u64, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut f = vec![first];
    match declared {
        n @ 0..=125 => f.push(mask_bit | n as u8),
        n @ 126..=0xffff => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&n.to_be_bytes());
        }
    }
    if masked {
        f.extend_from_slice(&MASK);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;

fn close_code(frames: &[RawFrame]) -> Option<u16> {
    frames.iter().rev().find_map(RawFrame::close_code)
}

fn balance(name: &str) -> WsStream {
    WsStream::Balance {
        address: address(name),
        denom: BOND_DENOM.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_malformed_frames_get_their_close_codes() {
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let api = node.api_addr();
    let big = 64 * 1024; // the default max_message_size
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "a frame header announcing 16 MiB (no payload sent)",
            frame(FIN | TEXT, true, 16 << 20, b""),
            MESSAGE_TOO_BIG,
        ),
        (
            "two fragments of 40 KiB: the message exceeds max_message_size",
            [
                frame(TEXT, true, 40 * 1024, &vec![b'x'; 40 * 1024]),
                frame(FIN | CONTINUATION, true, 40 * 1024, &vec![b'x'; 40 * 1024]),
            ]
            .concat(),
            MESSAGE_TOO_BIG,
        ),
        (
            "a text frame that is not UTF-8",
            frame(FIN | TEXT, true, 2, &[0xc3, 0x28]),
            INVALID_PAYLOAD,
        ),
        (
            "an unmasked client frame",
            frame(FIN | TEXT, false, 2, b"hi"),
            PROTOCOL_ERROR,
        ),
        (
            "a reserved opcode",
            frame(FIN | 0x3, true, 0, b""),
            PROTOCOL_ERROR,
        ),
        (
            "a reserved bit set",
            frame(FIN | 0x40 | TEXT, true, 2, b"{}"),
            PROTOCOL_ERROR,
        ),
    ];
    assert!(40 * 1024 < big && 80 * 1024 > big);
    for (path, from) in [("/ws".to_owned(), 1u8), (balance("alice").path(), 2)] {
        for (what, bytes, code) in &cases {
            let mut client = RawClient::upgrade(api, &path, loopback(from)).await;
            client.send_raw(bytes).await.expect("send");
            let frames = client.drain().await;
            assert_eq!(
                close_code(&frames),
                Some(*code),
                "{path}: {what}: expected close code {code}, got frames {frames:?}"
            );
        }
    }
    metrics::wait_for_value(api, "stream_connections", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_half_sent_16mib_frames_cost_little_memory() {
    const ATTACKERS: usize = 40;
    const LIMIT: u64 = 32 << 20;
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let api = node.api_addr();
    // A bystander proves the node still streams.
    let mut bystander = RawClient::upgrade(api, &balance("bob").path(), loopback(1)).await;
    assert!(!bystander.read_for(Duration::from_secs(1)).await.is_empty());
    let before = node.rss_bytes();

    let mut attackers = Vec::new();
    for i in 0..ATTACKERS {
        let mut client = RawClient::upgrade(api, "/ws", loopback(10 + i as u8)).await;
        attackers.push(tokio::spawn(async move {
            // Most of a 16 MiB frame, until the server stops taking it.
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = client
                .send_raw(&frame(FIN | TEXT, true, 16 << 20, b""))
                .await
                .map(|_| 0usize)
                .map_err(|_| ());
            while let Ok(n) = sent {
                if n >= 15 << 20 {
                    break;
                }
                sent = match tokio::time::timeout(Duration::from_secs(2), client.send_raw(&chunk))
                    .await
                {
                    Ok(Ok(())) => Ok(n + chunk.len()),
                    _ => Err(()),
                };
            }
            client // kept open until measured
        }));
    }
    let mut open = Vec::new();
    for a in attackers {
        open.push(a.await.expect("attacker task"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = node.rss_bytes();
    let grown = after.saturating_sub(before);
    eprintln!(
        "{ATTACKERS} connections sending 16 MiB frames: node RSS {} -> {} MiB (+{} KiB)",
        before >> 20,
        after >> 20,
        grown >> 10
    );
    assert!(
        grown < LIMIT,
        "{ATTACKERS} oversize-frame connections grew the node by {} MiB (limit {} MiB)",
        grown >> 20,
        LIMIT >> 20
    );
    for client in open {
        assert_eq!(
            close_code(&client.drain().await),
            Some(MESSAGE_TOO_BIG),
            "each oversize frame is answered with 1009"
        );
    }
    let h = node
        .tx_ok(&["bank", "send", "alice", "bob", "5ujuno"])
        .await
        .height;
    let frames = bystander.read_for(Duration::from_secs(5)).await;
    let heights: Vec<Json> = frames
        .iter()
        .filter(|f| f.opcode == 1)
        .map(|f| serde_json::from_slice::<Json>(&f.payload).expect("JSON")["height"].clone())
        .collect();
    assert!(
        heights.contains(&json!(h)),
        "the bystander still gets updates: {heights:?}, sent at {h}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_frame_follows_an_unsubscribed_reply() {
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .simulate(50)
            .rpc("max_subscriptions_per_client", 0)
            .stream("write_timeout", "30s"),
    )
    .await;
    let api = node.api_addr();
    // A small receive window, so that the server's writes block and updates queue up in
    // the connection while the client does not read.
    let mut client = RawClient::upgrade_with(api, "/ws", loopback(1), Some(4096)).await;
    // 2,000 subscriptions to the same ten busy values: enough traffic to fill the socket
    // buffers and the connection's queue while the client pauses.
    let streams: Vec<WsStream> = DEV_KEYS
        .iter()
        .cycle()
        .take(1000)
        .flat_map(|k| {
            [
                balance(k),
                WsStream::Balances {
                    address: address(k),
                },
            ]
        })
        .collect();
    for (i, s) in streams.iter().enumerate() {
        client
            .send_text(&s.subscribe(i as u64 + 1).to_string())
            .await
            .expect("subscribe");
    }
    let mut frames = client.read_for(Duration::from_secs(6)).await;
    let texts = |frames: &[RawFrame]| -> Vec<Json> {
        frames
            .iter()
            .filter(|f| f.opcode == 1)
            .map(|f| serde_json::from_slice(&f.payload).expect("JSON text frame"))
            .collect()
    };
    let sids: Vec<String> = texts(&frames)
        .iter()
        .filter_map(|m| m["result"]["subscription"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(sids.len(), streams.len(), "every subscribe answered");

    // Stop reading while blocks commit, then unsubscribe everything and read on.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (i, sid) in sids.iter().enumerate() {
        let request =
            json!({"id": 100 + i, "method": "unsubscribe", "params": {"subscription": sid}});
        client
            .send_text(&request.to_string())
            .await
            .expect("unsubscribe");
    }
    frames.extend(client.read_for(Duration::from_secs(8)).await);

    let mut ended: HashSet<String> = HashSet::new();
    let mut after: HashMap<String, usize> = HashMap::new();
    let mut updates = 0;
    for m in texts(&frames) {
        if let Some(sid) = m["result"]["unsubscribed"].as_str() {
            ended.insert(sid.to_owned());
        } else if let Some(sid) = m["subscription"].as_str() {
            updates += 1;
            if ended.contains(sid) {
                *after.entry(sid.to_owned()).or_default() += 1;
            }
        }
    }
    eprintln!(
        "{} subscriptions, {updates} updates; frames after the unsubscribed reply: {after:?}",
        sids.len()
    );
    assert_eq!(ended.len(), sids.len(), "every unsubscribe answered");
    assert!(updates > sids.len(), "traffic flowed: {updates} updates");
    assert!(
        after.is_empty(),
        "frames after an `unsubscribed` reply, by subscription: {after:?}"
    );
    metrics::wait_for_value(api, "stream_dispatcher_subscriptions", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_without_its_key_gets_400_naming_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let api = node.api_addr();
    for path in ["/ws".to_owned(), balance("alice").path()] {
        let mut tcp = ws_support::client::tcp_from(loopback(1), api)
            .await
            .expect("connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {api}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&response).contains("}") {
            let n = tokio::time::timeout(ws_support::WAIT, tcp.read(&mut buf))
                .await
                .expect("a response in time")
                .expect("read");
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 400"), "{path}: {response}");
        let body: Json =
            serde_json::from_str(&response[response.find('{').expect("a JSON body")..])
                .expect("JSON body");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("Sec-WebSocket-Key")),
            "{path}: {body}"
        );
    }
    let s = metrics::scrape(api).await;
    assert_eq!(
        s.get("stream_connection_rejected_total{reason=\"invalid_request\"}"),
        2.0
    );
}
