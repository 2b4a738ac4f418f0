//! End-to-end: the operator's kit. `/health` and `/stats` on the API port against a running
//! node (counts equal `/metrics`; 503 once SIGTERM arrives), `--log-format json` logs with
//! connection events, a real Prometheus server scraping the node and answering the queries
//! operators run, the Grafana dashboard's every query checked against the live node and
//! Prometheus, and the alert rules through `promtool check rules` and `promtool test rules`.

mod support;
mod ws_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::accounts::{BOND_DENOM, address};
use support::tools::{PROMETHEUS, PROMTOOL};
use support::{TestNode, TestNodeOptions, free_ports};
use ws_support::client::WsClient;
use ws_support::http::get;
use ws_support::metrics::{Scrape, scrape, wait_until};
use ws_support::{grpc_balance_stream, loopback};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

async fn health(api: SocketAddr) -> (u16, Json) {
    let r = get(api, "/health").await;
    (r.status, r.json())
}

#[tokio::test]
async fn health_stats_and_json_logs_of_a_running_node() {
    let node = TestNode::start(TestNodeOptions::default().simulate(3).global_flags(&[
        "--log-format",
        "json",
        "--log-level",
        "info,stream_module=debug",
    ]))
    .await;
    let api = node.api_addr();

    let (status, body) = health(api).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["service"], "stream");
    assert_eq!(body["status"], "ok");
    assert!(body["height"].as_i64().unwrap() >= 1, "{body}");
    assert!(
        body["dispatcher_lag_blocks"].as_i64().unwrap() <= 10,
        "{body}"
    );
    assert!(body["uptime_seconds"].is_u64(), "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let commit = body["commit"].as_str().unwrap();
    assert!(!commit.is_empty(), "{body}");

    // One path-route WebSocket and one gRPC stream, both reading.
    let alice = address("alice");
    let mut ws = WsClient::connect(
        api,
        &format!("/ws/subscribe/bank/balances/{alice}"),
        loopback(1),
    )
    .await;
    ws.next_json().await;
    let mut grpc = grpc_balance_stream(node.grpc_addr(), loopback(2), &alice, BOND_DENOM)
        .await
        .expect("stream opens");
    let reader = tokio::spawn(async move { while let Ok(Some(_)) = grpc.message().await {} });
    let ws_reader = tokio::spawn(async move {
        loop {
            ws.next_json().await;
        }
    });

    // /stats counts what /metrics counts (nothing connects or disconnects meanwhile; messages
    // keep flowing, so those are compared as "at least what /metrics said before").
    let before = wait_until(api, "both transports connected", |s| {
        s.get("stream_transport_connections{transport=\"websocket\"}") == 1.0
            && s.get("stream_transport_connections{transport=\"grpc\"}") == 1.0
    })
    .await;
    let stats = get(api, "/stats").await;
    assert_eq!(stats.status, 200, "{stats:?}");
    let stats = stats.json();
    let after = scrape(api).await;
    for transport in ["websocket", "grpc"] {
        let t = &stats["transports"][transport];
        let metric = |name: &str| format!("{name}{{transport=\"{transport}\"}}");
        assert_eq!(t["connections"], 1, "{stats}");
        assert_eq!(
            t["connections_total"].as_f64().unwrap(),
            after.get(&metric("stream_transport_connections_opened_total")),
            "{stats}"
        );
        let sent = t["messages_sent"].as_f64().unwrap();
        let (lo, hi) = (
            before.get(&metric("stream_transport_messages_sent_total")),
            after.get(&metric("stream_transport_messages_sent_total")),
        );
        assert!(
            lo <= sent && sent <= hi,
            "{transport}: {lo} <= {sent} <= {hi}: {stats}"
        );
        assert!(t["messages_per_second"].is_number(), "{stats}");
    }
    for kind in ["balance", "balances"] {
        assert_eq!(
            stats["subscriptions"][kind].as_f64().unwrap(),
            after.get(&format!("stream_subscriptions{{type=\"{kind}\"}}")),
            "{stats}"
        );
    }
    assert_eq!(
        stats["topics"].as_f64().unwrap(),
        after.get("stream_topics")
    );
    let top = stats["top_topics"].as_array().unwrap();
    assert_eq!(top.len(), 2, "{stats}");
    assert!(
        top.iter()
            .all(|t| t["address"] == alice.as_str() && t["subscribers"] == 1),
        "{stats}"
    );
    assert_eq!(
        stats["replay_window"]["oldest_height"].as_f64().unwrap(),
        after.get("stream_replay_oldest_height")
    );
    assert_eq!(
        stats["refusals"]["max_connections"].as_f64().unwrap(),
        after.get("stream_connection_rejected_total{reason=\"max_connections\"}")
    );

    // Logs: one JSON object per line, with connection events naming the connection and client.
    let log = node.log_text();
    let lines: Vec<Json> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            l["timestamp"].is_string() && l["level"].is_string() && l["target"].is_string(),
            "{l}"
        );
    }
    let opened: Vec<&Json> = lines
        .iter()
        .filter(|l| l["message"] == "connection opened")
        .collect();
    for (transport, client) in [("websocket", "127.0.0.1"), ("grpc", "127.0.0.2")] {
        assert!(
            opened.iter().any(|l| l["transport"] == transport
                && l["client"] == client
                && l["connection"].is_u64()),
            "no connection-opened event for {transport} from {client}: {opened:?}"
        );
    }

    // SIGTERM: once the node has taken the signal (asynchronously: a request may still be
    // answered before), /health never answers 200 again; while the streams drain (here only
    // milliseconds: both clients take their goodbye at once) it answers 503 shutting_down,
    // then the port closes. The module's own test holds that 503 state and checks it.
    let mut node = node;
    node.terminate();
    let signalled = Instant::now();
    let deadline = signalled + Duration::from_secs(5);
    let mut flipped = false;
    while Instant::now() < deadline {
        let Ok(mut tcp) = tokio::net::TcpStream::connect(api).await else {
            break;
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!("GET /health HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
        if tcp.write_all(request.as_bytes()).await.is_err() {
            break;
        }
        let mut raw = Vec::new();
        if tcp.read_to_end(&mut raw).await.is_err() || raw.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(&raw);
        if text.starts_with("HTTP/1.1 200") {
            assert!(!flipped, "healthy again after answering 503: {text}");
            assert!(
                signalled.elapsed() < Duration::from_secs(1),
                "still healthy 1 s after SIGTERM: {text}"
            );
        } else {
            assert!(text.starts_with("HTTP/1.1 503"), "{text}");
            assert!(text.contains("\"status\":\"shutting_down\""), "{text}");
            flipped = true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let status = node.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");
    reader.abort();
    ws_reader.abort();
}

/// A Prometheus server on a free port scraping `api` every second; killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(api: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let [addr] = free_ports();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: streamd\n    metrics_path: /metrics\n    static_configs:\n      \
                 - targets: [\"{api}\"]\n"
            ),
        )
        .unwrap();
        let child = Command::new(PROMETHEUS.require())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "prometheus did not listen on {addr} within 60 s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/query?query=...`: the `data` of a successful answer.
    async fn query(&self, promql: &str) -> Json {
        let r = get(
            self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        )
        .await;
        let body = r.json();
        assert_eq!(
            body["status"],
            "success",
            "{promql}: {body}\n{}",
            self.log()
        );
        body["data"].clone()
    }

    /// The single value of an instant-vector query once it is `ok`, within 100 s.
    async fn value(&self, promql: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(100);
        loop {
            let data = self.query(promql).await;
            let v = data["result"]
                .as_array()
                .and_then(|r| r.first())
                .and_then(|s| s["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok());
            if let Some(v) = v.filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: no acceptable value within 100 s; last answer {data}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether the node serves a sample called `name` (a family's name, or a counter's `_total`,
/// or a histogram's `_bucket` / `_sum` / `_count`).
fn served(s: &Scrape, name: &str) -> bool {
    let declared = |family: &str, kind: &str| s.types.get(family).is_some_and(|t| t == kind);
    s.types.contains_key(name) && !matches!(s.types[name].as_str(), "counter" | "histogram")
        || name
            .strip_suffix("_total")
            .is_some_and(|f| declared(f, "counter"))
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|f| declared(f, "histogram"))
        })
}

#[tokio::test]
async fn prometheus_scrapes_the_node_and_the_dashboard_queries_what_it_serves() {
    let node = TestNode::start(TestNodeOptions::default().simulate(3)).await;
    let api = node.api_addr();
    let alice = address("alice");
    let mut clients = Vec::new();
    for i in 0..3u8 {
        let mut ws = WsClient::connect(
            api,
            &format!("/ws/subscribe/bank/balances/{alice}"),
            loopback(10 + i),
        )
        .await;
        ws.next_json().await;
        clients.push(tokio::spawn(async move {
            loop {
                ws.next_json().await;
            }
        }));
    }
    let prometheus = Prometheus::start(api);

    // The gauge: Prometheus stores what the node reports.
    let served_now = scrape(api).await.get("stream_connections");
    assert_eq!(served_now, 3.0);
    let stored = prometheus
        .value("stream_connections", |v| v == served_now)
        .await;
    assert_eq!(stored, served_now);

    // The rate: updates flow at one per changed block per client; Prometheus's 1-minute rate
    // agrees with the rate the node's own counter shows over the same kind of window.
    // (A rate over [1m] is exact only once Prometheus holds a minute of samples.)
    let t0 = Instant::now();
    let a = scrape(api).await.sum("stream_messages_sent_total");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = scrape(api).await.sum("stream_messages_sent_total");
    let node_rate = (b - a) / t0.elapsed().as_secs_f64();
    assert!(node_rate > 0.0, "no messages flow");
    prometheus
        .value("sum(rate(stream_messages_sent_total[1m]))", |v| {
            v > node_rate / 2.0 && v < node_rate * 2.0
        })
        .await;

    // The dashboard: every query names only metrics the node serves, and Prometheus accepts
    // (parses and evaluates) every one of them.
    let live = scrape(api).await;
    let dashboard: Json = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/stream-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut used = BTreeSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{panel}");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            for name in metric_names(expr) {
                assert!(
                    served(&live, &name),
                    "panel {:?} queries {name}, which /metrics does not serve",
                    panel["title"]
                );
                used.insert(name);
            }
            prometheus.query(&expr.replace("$job", ".*")).await;
        }
    }
    // And it shows every metric the README documents for the stream module.
    for family in live.types.keys().filter(|f| f.starts_with("stream_")) {
        assert!(
            used.iter()
                .any(|n| n == family || n.starts_with(&format!("{family}_"))),
            "no dashboard panel shows {family}"
        );
    }
    for c in clients {
        c.abort();
    }
}

/// `stream_*` / `streamd_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = (expr[i..].starts_with("stream_") || expr[i..].starts_with("streamd_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |n| i + n);
            names.push(expr[i..end].to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn alert_rules_pass_promtool() {
    let promtool = PROMTOOL.require();
    let dir = root().join("deploy/prometheus");
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
