//! End-to-end: Server-Sent Events on the API port through curl, the client the README shows.
//! `curl -N` receives `id: <height>` / `event: update` / `data: <JSON>` events whose values
//! are the standard queries' at their heights, comment keepalives on a quiet stream, the
//! `transport="sse"` metrics and `/stats` entry, a CORS header for an allowed origin, precise
//! JSON refusals (bad `Last-Event-ID`, unknown paths, bad addresses, origins not allowed), and
//! one `event: error` with code 503 when the node shuts down. Resume with `Last-Event-ID` at
//! the window's edges is in `stream_resume.rs`; under faults, in the gap checker.

mod support;
mod ws_support;

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::accounts::{address, valoper};
use support::tools::{CURL, CurlN};
use support::{TestNode, TestNodeOptions};
use tokio::process::Command;
use ws_support::expected::WsStream;
use ws_support::metrics::wait_until;

/// `curl -s -i ARGS URL` bounded by `--max-time`: (status, header lines, body).
async fn curl(url: &str, args: &[&str]) -> (u16, Vec<String>, String) {
    let out = Command::new(CURL.require())
        .args(["-s", "-i", "--max-time", "5"])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status from curl {args:?} {url}: {text:?}"));
    (status, lines.map(str::to_owned).collect(), body.to_owned())
}

/// One event or comment block as curl printed it.
#[derive(Debug, Default)]
struct Block {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    comments: Vec<String>,
}

/// `curl -N URL` (exactly the README's form), read block by block.
struct Follow(CurlN);

impl Follow {
    fn start(url: &str) -> Follow {
        Follow(CurlN::follow(url, &[]))
    }

    /// The next block, within 10 s.
    async fn next(&mut self) -> Block {
        let mut b = Block::default();
        let read = async {
            while let Some(line) = self.0.next_line().await {
                if line.is_empty() {
                    return Some(std::mem::take(&mut b));
                }
                if let Some(c) = line.strip_prefix(':') {
                    b.comments.push(c.trim().to_owned());
                    continue;
                }
                let (field, value) = line.split_once(": ").unwrap_or((&line, ""));
                match field {
                    "id" => b.id = Some(value.to_owned()),
                    "event" => b.event = Some(value.to_owned()),
                    "data" => b.data = Some(value.to_owned()),
                    other => panic!("unexpected SSE field {other:?} in {line:?}"),
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("an SSE block within 10 s")
            .expect("the SSE stream ended")
    }
}

#[tokio::test]
async fn curl_follows_updates_keepalives_metrics_and_shutdown() {
    let mut node = TestNode::start(
        TestNodeOptions::default()
            .simulate(5)
            .stream("ping_interval", "300ms"),
    )
    .await;
    let api = node.api_addr();
    let alice = address("alice");
    let stream = WsStream::Balances {
        address: alice.clone(),
    };
    let mut busy = Follow::start(&format!("http://{api}/sse/subscribe/bank/balances/{alice}"));
    // A delegation that does not exist: one snapshot ("found": false), then only keepalives.
    let quiet_path = format!(
        "/sse/subscribe/staking/delegation/{}/{}",
        address("carol"),
        valoper("validator2")
    );
    let mut quiet = Follow::start(&format!("http://{api}{quiet_path}"));

    let mut last = 0;
    for _ in 0..6 {
        let b = busy.next().await;
        if b.event.is_none() {
            continue; // a keepalive between blocks
        }
        assert_eq!(b.event.as_deref(), Some("update"), "{b:?}");
        let data: Json = serde_json::from_str(b.data.as_deref().unwrap()).unwrap();
        let height = data["height"].as_i64().unwrap();
        assert_eq!(
            b.id,
            Some(height.to_string()),
            "the id is the height: {b:?}"
        );
        assert!(height > last, "heights increase: {last} then {height}");
        last = height;
        assert_eq!(
            data,
            stream.expected(&node, height).await,
            "value at {height}"
        );
    }

    let opened = quiet.next().await;
    assert!(
        opened.event.is_none() && opened.comments == ["subscribed"],
        "a stream opens with a comment: {opened:?}"
    );
    let first = quiet.next().await;
    let data: Json = serde_json::from_str(first.data.as_deref().expect("snapshot")).unwrap();
    assert_eq!(data["found"], false, "{data}");
    let keepalive = quiet.next().await;
    assert!(
        keepalive.event.is_none() && keepalive.comments == ["keepalive"],
        "a quiet stream gets comment keepalives: {keepalive:?}"
    );

    let scrape = wait_until(api, "two SSE connections", |s| {
        s.get("stream_transport_connections{transport=\"sse\"}") == 2.0
    })
    .await;
    assert!(scrape.get("stream_transport_messages_sent_total{transport=\"sse\"}") >= 2.0);
    let (status, _, body) = curl(&format!("http://{api}/stats"), &[]).await;
    assert_eq!(status, 200);
    let stats: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["transports"]["sse"]["connections"], 2, "{stats}");

    // Shutdown: each stream ends with one error event, code 503.
    node.terminate();
    for f in [&mut busy, &mut quiet] {
        let end = loop {
            let b = f.next().await;
            if b.event.as_deref() == Some("error") {
                break b;
            }
        };
        let data: Json = serde_json::from_str(end.data.as_deref().unwrap()).unwrap();
        assert_eq!(data["code"], 503, "{data}");
        assert!(
            data["error"].as_str().unwrap().contains("shutting down"),
            "{data}"
        );
    }
    assert!(node.wait_exit(Duration::from_secs(10)).await.success());
}

#[tokio::test]
async fn refusals_are_precise_json_and_allowed_origins_get_cors() {
    let node = TestNode::start(
        TestNodeOptions::default().stream("allowed_origins", vec!["https://wallet.example"]),
    )
    .await;
    let api = node.api_addr();
    let alice = address("alice");
    let url = format!("http://{api}/sse/subscribe/bank/balances/{alice}");
    let error = |body: &str| -> String {
        let j: Json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        j["error"].as_str().expect("error").to_owned()
    };

    let (status, _, body) = curl(&url, &["-H", "Last-Event-ID: yesterday"]).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error(&body).contains("Last-Event-ID \"yesterday\" is not a height"),
        "{body}"
    );

    let (status, _, body) = curl(&url, &["-H", "Last-Event-ID: -4"]).await;
    assert_eq!(status, 400, "{body}");
    assert!(error(&body).contains("since_height must be 0"), "{body}");

    let (status, _, body) = curl(
        &format!("http://{api}/sse/subscribe/bank/coins/{alice}"),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error(&body).contains("unknown stream path /sse/subscribe/bank/coins/"),
        "{body}"
    );

    let (status, _, body) = curl(
        &format!("http://{api}/sse/subscribe/bank/balances/cosmos1xyz"),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, _, body) = curl(&url, &["-H", "Origin: https://evil.example"]).await;
    assert_eq!(status, 403, "{body}");
    assert!(error(&body).contains("not allowed"), "{body}");

    // An allowed origin: the stream starts, with the CORS header a browser needs. (curl
    // stops at --max-time; the headers and first event are what matter.)
    let started = Instant::now();
    let (status, headers, body) = curl(
        &url,
        &["-H", "Origin: https://wallet.example", "--max-time", "2"],
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the stream stays open"
    );
    assert_eq!(status, 200, "{headers:?}");
    let has = |h: &str| headers.iter().any(|l| l.eq_ignore_ascii_case(h));
    assert!(has("content-type: text/event-stream"), "{headers:?}");
    assert!(
        has("access-control-allow-origin: https://wallet.example"),
        "{headers:?}"
    );
    assert!(body.starts_with(": subscribed\n\nid: "), "{body:?}");
}
