//! End-to-end in headless Chromium (Debian `chromium`, driven by `playwright-core`) against
//! the real node, through a TCP proxy.
//!
//! The wallet page (`examples/wallet`, TypeScript client over `/ws`, and again over SSE with
//! `?transport=sse`): the page shows the snapshot; a `streamd tx bank send` changes the
//! balance shown within a second; the node's port closed (connections cut, new ones refused)
//! turns the indicator to reconnecting; a send made meanwhile shows once the port reopens,
//! the page having resumed without a gap (every height at which the balance changed is in
//! the page's log, once). Screenshots: `target/test-artifacts/wallet.png`, `wallet-sse.png`.
//!
//! The browser's own `EventSource` on `/sse/subscribe/bank/balances/<addr>` from a page of
//! another origin (allowed by the node's `allowed_origins`): snapshot, an update, then a cut
//! while another send commits; `EventSource` reconnects by itself sending `Last-Event-ID`,
//! and the events it got are held against the standard queries at every height (the gap
//! checker): no gap, no duplicate.

mod client_support;
mod gap_support;
mod stream_support;
mod support;
mod ws_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use client_support::node::{node_bin, package_dir, script};
use client_support::proxy::Proxy;
use client_support::run::{Got, Kind, Run, transcript};
use gap_support::transcript::Transport;
use serde_json::{Value as Json, json};
use stream_support::StreamKey;
use support::accounts::{BOND_DENOM, address};
use support::queries::At;
use support::{TestNode, TestNodeOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const STATE: &str = "document.querySelector('[data-test=state]')?.dataset.status";
const BALANCE: &str =
    "document.querySelector('[data-test=\"balance-ujuno\"] td:nth-child(2)')?.textContent";

/// The Chromium binary: `$STREAM_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn chromium() -> String {
    let path = std::env::var("STREAM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).is_file(),
        "no Chromium at {path}: run scripts/test (it installs Debian's chromium), or set \
         STREAM_CHROMIUM"
    );
    path
}

/// Where test artifacts go: `$CARGO_TARGET_DIR/test-artifacts`, else the workspace's
/// `target/test-artifacts`.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create test-artifacts");
    dir
}

/// The page in Chromium, driven through `e2e/browser.js`.
struct Page {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Page {
    /// Opens the page `browser.js` is told to by `extra` (its `page`, `port`, `query`), the
    /// wallet page by default.
    async fn open(endpoint: &str, address: &str, extra: Json) -> Page {
        let root = package_dir().join("../..");
        let mut config = json!({
            "chromium": chromium(),
            "root": root,
            "endpoint": endpoint,
            "address": address,
        });
        for (k, v) in extra.as_object().expect("extra is an object") {
            config[k] = v.clone();
        }
        assert!(
            package_dir().join("dist/index.js").is_file()
                && package_dir().join("node_modules/playwright-core").is_dir(),
            "clients/ts is not built: run scripts/test, or `npm ci && npm run build` there"
        );
        let mut child = Command::new(node_bin())
            .arg(script("browser"))
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", node_bin()));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut page = Page {
            child,
            stdin,
            stdout,
        };
        let ready = page.read(Duration::from_secs(60)).await;
        assert_eq!(ready["ready"], true, "{ready}");
        println!("page: {}", ready["url"]);
        page
    }

    async fn read(&mut self, within: Duration) -> Json {
        let line = tokio::time::timeout(within, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("browser.js said nothing within {within:?}"))
            .expect("read browser.js")
            .expect("browser.js ended");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("browser.js printed {line:?}: {e}"))
    }

    async fn command(&mut self, cmd: Json) -> Json {
        let line = format!("{cmd}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write browser.js");
        self.read(Duration::from_secs(60)).await
    }

    async fn eval(&mut self, expr: &str) -> Json {
        self.command(json!({"cmd": "eval", "expr": expr})).await["value"].clone()
    }

    /// Waits until `expr` is true in the page; the time it took, or the page's state.
    async fn wait_for(&mut self, expr: &str, within: Duration) -> Result<Duration, String> {
        let answer = self
            .command(
                json!({"cmd": "waitFor", "expr": expr, "timeoutMs": within.as_millis() as u64}),
            )
            .await;
        if answer["ok"] == true {
            return Ok(Duration::from_millis(answer["ms"].as_u64().unwrap_or(0)));
        }
        let state = self.eval(STATE).await;
        let balance = self.eval(BALANCE).await;
        Err(format!(
            "{expr} not true within {within:?}: indicator {state}, balance {balance} ({})",
            answer["error"]
        ))
    }

    async fn screenshot(&mut self, path: &std::path::Path) {
        let answer = self
            .command(json!({"cmd": "screenshot", "path": path}))
            .await;
        assert_eq!(answer["ok"], true, "{answer}");
    }

    async fn quit(mut self) {
        let _ = self.stdin.write_all(b"{\"cmd\":\"quit\"}\n").await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

fn shows(amount: u128) -> String {
    format!("{STATE} === 'live' && {BALANCE} === '{amount}'")
}

/// The wire the wallet page's client streams over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    WebSocket,
    Sse,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallet_page_follows_a_send_live_and_resumes_after_the_port_reopens() {
    wallet_page(Wire::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sse_the_wallet_page_follows_a_send_live_and_resumes_after_the_port_reopens() {
    wallet_page(Wire::Sse).await;
}

async fn wallet_page(wire: Wire) {
    let options = TestNodeOptions::slow_unbonding().rpc("max_subscriptions_per_client", 0);
    let node = TestNode::start(options).await;
    // Something in every table: a delegation and an unbonding entry (60 s unbonding).
    node.tx_ok(&["staking", "delegate", "alice", "validator1", "5000000ujuno"])
        .await;
    node.tx_ok(&["staking", "unbond", "alice", "validator1", "1000000ujuno"])
        .await;
    let proxy = Proxy::start(node.api_addr()).await;
    let alice = address("alice");
    let (endpoint, extra, shot) = match wire {
        Wire::WebSocket => (proxy.ws_url(), json!({}), "wallet.png"),
        Wire::Sse => (
            proxy.http_url(),
            json!({"query": {"transport": "sse"}}),
            "wallet-sse.png",
        ),
    };
    let mut page = Page::open(&endpoint, &alice, extra).await;

    // The snapshot.
    let start = node.balance(&alice, BOND_DENOM, At::Latest).await;
    page.wait_for(&shows(start), Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("snapshot: {e}"));

    // A send shows within a second of its block.
    let first = node
        .tx_ok(&["bank", "send", "alice", "bob", "1000ujuno"])
        .await;
    let after_first = node
        .balance(&alice, BOND_DENOM, At::Height(first.height))
        .await;
    let took = page
        .wait_for(&shows(after_first), Duration::from_secs(1))
        .await
        .unwrap_or_else(|e| panic!("the send at height {} within 1 s: {e}", first.height));
    println!(
        "send at height {} shown {took:?} after its block",
        first.height
    );

    // The port closes: open connections cut, new ones refused.
    proxy.refuse(true);
    proxy.cut();
    page.wait_for(
        &format!("{STATE} === 'reconnecting'"),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|e| panic!("the indicator shows the loss: {e}"));
    let second = node
        .tx_ok(&["bank", "send", "alice", "bob", "2000ujuno"])
        .await;
    let after_second = node
        .balance(&alice, BOND_DENOM, At::Height(second.height))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        page.eval(BALANCE).await,
        json!(after_first.to_string()),
        "nothing can arrive while the port is closed"
    );

    // It reopens: the page resumes and shows the send it missed.
    proxy.refuse(false);
    let back = page
        .wait_for(&shows(after_second), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("resume after the port reopened: {e}"));
    println!(
        "live again with the missed send (height {}) {back:?} after reopening",
        second.height
    );

    // No gap, no duplicate: the balances stream's log is the snapshot, then exactly the two
    // heights at which alice's balances changed (nothing else moves them on this node).
    let log = page
        .eval("window.wallet.log.filter((e) => e.stream === 'balances')")
        .await;
    let log = log.as_array().expect("log").clone();
    let heights: Vec<(i64, String)> = log
        .iter()
        .map(|e| {
            (
                e["height"].as_i64().expect("height"),
                e["kind"].as_str().expect("kind").to_owned(),
            )
        })
        .collect();
    assert_eq!(heights.len(), 3, "{heights:?}");
    assert_eq!(heights[0].1, "snapshot", "{heights:?}");
    assert!(heights[0].0 < first.height, "{heights:?}");
    assert_eq!(
        heights[1..].to_vec(),
        vec![
            (first.height, "change".to_owned()),
            (second.height, "change".to_owned())
        ]
    );
    let others = page
        .eval("window.wallet.log.filter((e) => e.stream !== 'balances').map((e) => e.kind)")
        .await;
    assert_eq!(
        others,
        json!(["snapshot", "snapshot"]),
        "delegations and unbonding: snapshots only"
    );

    let shot = artifacts().join(shot);
    page.screenshot(&shot).await;
    println!("screenshot: {}", shot.display());
    page.quit().await;
}

/// A loopback port free now (for the page's origin, which the node must know before start).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// The page's `EventSource` events so far: (`lastEventId`, data as JSON).
async fn event_source_log(page: &mut Page) -> Vec<(String, Json)> {
    let log = page.eval("window.sse.log").await;
    log.as_array()
        .unwrap_or_else(|| panic!("window.sse.log: {log}"))
        .iter()
        .map(|e| {
            let data = e["data"].as_str().expect("data");
            let data = serde_json::from_str(data)
                .unwrap_or_else(|err| panic!("event data {data:?} is not JSON: {err}"));
            (e["id"].as_str().expect("id").to_owned(), data)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browsers_event_source_resumes_with_last_event_id_after_a_cut() {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let options = TestNodeOptions::default()
        .rpc("max_subscriptions_per_client", 0)
        .stream(
            "allowed_origins",
            toml::Value::Array(vec![origin.clone().into()]),
        );
    let run = Run::start(options).await;
    let node = run.node.clone();
    let proxy = Proxy::start(node.api_addr()).await;
    let alice = address("alice");
    let mut page = Page::open(
        &proxy.http_url(),
        &alice,
        json!({"page": "blank", "port": port}),
    )
    .await;
    assert_eq!(page.eval("location.origin").await, json!(origin));

    // The browser's own EventSource, cross-origin (the node answers the allowed Origin with
    // Access-Control-Allow-Origin; without it the browser would deliver nothing).
    let url = format!("{}/sse/subscribe/bank/balances/{alice}", proxy.http_url());
    let script = format!(
        "(() => {{
            window.sse = {{ log: [], opens: 0, errors: 0 }};
            const es = new EventSource({url});
            es.addEventListener('update', (e) => window.sse.log.push({{ id: e.lastEventId, data: e.data }}));
            es.onopen = () => window.sse.opens++;
            es.onerror = () => window.sse.errors++;
            window.es = es;
            return true;
        }})()",
        url = serde_json::to_string(&url).unwrap()
    );
    assert_eq!(page.eval(&script).await, json!(true));
    page.wait_for("window.sse.log.length === 1", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("the snapshot: {e}"));

    // An update.
    let first = node
        .tx_ok(&["bank", "send", "alice", "bob", "1000ujuno"])
        .await;
    page.wait_for(
        &format!("window.sse.log.some((e) => e.id === '{}')", first.height),
        Duration::from_secs(2),
    )
    .await
    .unwrap_or_else(|e| panic!("the send at height {}: {e}", first.height));

    // The connection is cut (and the port refuses for a moment); a send commits meanwhile.
    proxy.refuse(true);
    let cut = proxy.cut();
    assert!(cut >= 1, "{cut} connections cut");
    page.wait_for("window.sse.errors >= 1", Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("EventSource sees the loss: {e}"));
    let second = node
        .tx_ok(&["bank", "send", "alice", "bob", "2000ujuno"])
        .await;
    assert_eq!(
        page.eval("[window.es.readyState, window.sse.log.length]")
            .await,
        json!([0, 2]),
        "the second send committed while EventSource was reconnecting (readyState 0)"
    );
    proxy.refuse(false);

    // EventSource reconnects by itself (its default delay is ~3 s) with Last-Event-ID and
    // gets the send it missed, then follows live again.
    page.wait_for(
        &format!("window.sse.log.some((e) => e.id === '{}')", second.height),
        Duration::from_secs(15),
    )
    .await
    .unwrap_or_else(|e| panic!("the missed send at height {}: {e}", second.height));
    let third = node
        .tx_ok(&["bank", "send", "alice", "bob", "3000ujuno"])
        .await;
    page.wait_for(
        &format!("window.sse.log.some((e) => e.id === '{}')", third.height),
        Duration::from_secs(2),
    )
    .await
    .unwrap_or_else(|e| panic!("the send at height {} after the resume: {e}", third.height));
    let stop = node.height().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The requests: the first without Last-Event-ID, every reconnect with the last id seen.
    let requests = page.command(json!({"cmd": "requests"})).await["value"].clone();
    let requests = requests.as_array().expect("requests").clone();
    println!("EventSource requests: {requests:?}");
    assert!(requests.len() >= 2, "{requests:?}");
    assert_eq!(requests[0]["lastEventId"], Json::Null, "{requests:?}");
    for r in &requests[1..] {
        assert_eq!(
            r["lastEventId"],
            json!(first.height.to_string()),
            "a reconnect resumes after the last event received: {requests:?}"
        );
    }

    // The events: ids are heights, each data's height is its id, and the sequence is the
    // snapshot then exactly the heights at which alice's balances changed (nothing else moves
    // them on this node), each value the standard query's at that height (gap checker).
    let log = event_source_log(&mut page).await;
    let got: Vec<Got> = log
        .iter()
        .enumerate()
        .map(|(i, (id, data))| {
            let height = data["height"].as_i64().expect("height");
            assert_eq!(id, &height.to_string(), "event id and data height: {log:?}");
            let mut value = data.clone();
            value.as_object_mut().expect("object").remove("height");
            Got {
                height,
                value,
                kind: if i == 0 { Kind::Snapshot } else { Kind::Change },
                at: std::time::Instant::now(),
            }
        })
        .collect();
    let heights: Vec<i64> = got.iter().map(|g| g.height).collect();
    assert_eq!(heights.len(), 4, "{log:?}");
    assert!(heights[0] < first.height, "{heights:?}");
    assert_eq!(
        heights[1..],
        [first.height, second.height, third.height],
        "{log:?}"
    );
    let t = transcript(
        0,
        Transport::Sse,
        "browser EventSource",
        StreamKey::all_balances("alice"),
        &got,
        stop,
    );
    let (violations, stats) = run.violations(&[t]).await;
    assert!(violations.is_empty(), "{violations:#?}");
    println!(
        "EventSource: {} requests, events at heights {heights:?}; checked: {stats:?}",
        requests.len()
    );
    page.quit().await;
}
