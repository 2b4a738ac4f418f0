//! End-to-end: the real grpcurl binary (1.8, server reflection, no proto files) runs the
//! reference document's "gRPC Streaming with grpcurl" commands with real dev addresses and
//! prints each stream's messages as JSON, equal to what the standard queries print at the
//! message's height.

mod stream_support;
mod support;

use std::path::PathBuf;
use std::process::{Output, Stdio};

use serde_json::{Value, json};
use stream_support::STREAM_TIMEOUT;
use support::TestNode;
use support::accounts::{GENESIS_UJUNO, address, valoper};
use support::staking::slow_unbonding_node;
use support::tools::GRPCURL;
use support::{stderr, stdout};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Runs grpcurl to completion.
async fn run(grpcurl: &PathBuf, args: &[&str]) -> Output {
    Command::new(grpcurl)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", grpcurl.display()))
}

/// Runs grpcurl to completion, requiring success; returns its stdout.
async fn run_ok(grpcurl: &PathBuf, args: &[&str]) -> String {
    let output = run(grpcurl, args).await;
    assert!(
        output.status.success(),
        "grpcurl {args:?} failed ({}):\n{}",
        output.status,
        stderr(&output)
    );
    stdout(&output)
}

/// A standard query through grpcurl at `height`, as JSON.
async fn query_at(
    grpcurl: &PathBuf,
    node: &TestNode,
    height: i64,
    data: &Value,
    method: &str,
) -> Value {
    let header = format!("x-cosmos-block-height: {height}");
    let addr = node.grpc_addr().to_string();
    let text = run_ok(
        grpcurl,
        &[
            "-plaintext",
            "-H",
            &header,
            "-d",
            &data.to_string(),
            &addr,
            method,
        ],
    )
    .await;
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} printed non-JSON {text:?}: {e}"))
}

/// A running `grpcurl ... juno.stream.v1.Query/<RPC>`; killed on drop.
struct GrpcurlStream {
    method: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl GrpcurlStream {
    /// `grpcurl -plaintext -d DATA HOST:PORT METHOD`, the reference document's form.
    fn spawn(grpcurl: &PathBuf, node: &TestNode, data: &str, method: &str) -> GrpcurlStream {
        GrpcurlStream::spawn_with(grpcurl, node, &[], data, method)
    }

    /// The same with `extra` flags after `-plaintext`.
    fn spawn_with(
        grpcurl: &PathBuf,
        node: &TestNode,
        extra: &[&str],
        data: &str,
        method: &str,
    ) -> GrpcurlStream {
        let addr = node.grpc_addr().to_string();
        let mut child = Command::new(grpcurl)
            .arg("-plaintext")
            .args(extra)
            .args(["-d", data, &addr, method])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", grpcurl.display()));
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        GrpcurlStream {
            method: method.to_owned(),
            child,
            lines,
        }
    }

    /// The next message grpcurl prints (a pretty-printed JSON object).
    async fn next(&mut self) -> Value {
        let mut text = String::new();
        let read = async {
            while let Some(line) = self.lines.next_line().await.expect("read grpcurl stdout") {
                text.push_str(&line);
                text.push('\n');
                if let Ok(value) = serde_json::from_str::<Value>(&text) {
                    return Some(value);
                }
            }
            None
        };
        match tokio::time::timeout(STREAM_TIMEOUT, read).await {
            Ok(Some(value)) => value,
            Ok(None) => {
                let output = self.stop().await;
                panic!(
                    "grpcurl {} ended before a message; stdout {text:?}, stderr:\n{}",
                    self.method,
                    stderr(&output)
                )
            }
            Err(_) => panic!(
                "grpcurl {}: no message within {STREAM_TIMEOUT:?}; partial {text:?}",
                self.method
            ),
        }
    }

    /// Kills grpcurl (a user pressing Ctrl-C) and collects what is left of its output.
    async fn stop(&mut self) -> Output {
        let _ = self.child.start_kill();
        let stderr = self.child.stderr.take();
        let status = self.child.wait().await.expect("wait for grpcurl");
        let mut err = Vec::new();
        if let Some(mut s) = stderr {
            use tokio::io::AsyncReadExt;
            let _ = s.read_to_end(&mut err).await;
        }
        Output {
            status,
            stdout: Vec::new(),
            stderr: err,
        }
    }
}

/// `height` of a stream message: an int64, which protobuf JSON prints as a string.
fn height_of(message: &Value) -> i64 {
    message["height"]
        .as_str()
        .unwrap_or_else(|| panic!("height is an int64 JSON string: {message}"))
        .parse()
        .expect("integer height")
}

#[tokio::test]
async fn reflection_lists_and_describes_the_stream_service() {
    let grpcurl = GRPCURL.require();
    let node = TestNode::start_default().await;
    let addr = node.grpc_addr().to_string();

    let services = run_ok(&grpcurl, &["-plaintext", &addr, "list"]).await;
    assert!(
        services.lines().any(|l| l == "juno.stream.v1.Query"),
        "{services}"
    );
    let methods = run_ok(
        &grpcurl,
        &["-plaintext", &addr, "list", "juno.stream.v1.Query"],
    )
    .await;
    let described = run_ok(
        &grpcurl,
        &["-plaintext", &addr, "describe", "juno.stream.v1.Query"],
    )
    .await;
    for rpc in [
        "StreamBalance",
        "StreamAllBalances",
        "StreamDelegations",
        "StreamDelegation",
        "StreamUnbondingDelegations",
        "StreamUnbondingDelegation",
    ] {
        assert!(
            methods
                .lines()
                .any(|l| l == format!("juno.stream.v1.Query.{rpc}")),
            "{rpc} missing:\n{methods}"
        );
        let signature = format!(
            "rpc {rpc} ( .juno.stream.v1.{rpc}Request ) returns ( stream .juno.stream.v1.{rpc}Response );"
        );
        assert!(
            described.contains(&signature),
            "{signature} missing:\n{described}"
        );
    }
    let response = run_ok(
        &grpcurl,
        &[
            "-plaintext",
            &addr,
            "describe",
            "juno.stream.v1.StreamDelegationResponse",
        ],
    )
    .await;
    for field in [
        ".cosmos.staking.v1beta1.DelegationResponse delegation = 1;",
        "int64 height = 10;",
        "bool found = 11;",
    ] {
        assert!(response.contains(field), "{field} missing:\n{response}");
    }
    let request = run_ok(
        &grpcurl,
        &[
            "-plaintext",
            &addr,
            "describe",
            "juno.stream.v1.StreamBalanceRequest",
        ],
    )
    .await;
    for field in [
        "string address = 1;",
        "string denom = 2;",
        "int64 since_height = 10;",
    ] {
        assert!(request.contains(field), "{field} missing:\n{request}");
    }
}

#[tokio::test]
async fn the_reference_commands_stream_json_equal_to_the_standard_queries() {
    let grpcurl = GRPCURL.require();
    let node = slow_unbonding_node().await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "alice",
        "validator1",
        "10000000ujuno",
    ])
    .await;
    let h = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "4000000ujuno"])
        .await
        .height;
    node.wait_for_height(h + 2).await;
    let alice = address("alice");
    let v1 = valoper("validator1");

    // (request as the reference document writes it, RPC, standard query and its request,
    // the stream's field, the query's field)
    let commands = [
        (
            format!(r#"{{"address":"{alice}", "denom":"ujuno"}}"#),
            "StreamBalance",
            "cosmos.bank.v1beta1.Query/Balance",
            json!({"address": alice, "denom": "ujuno"}),
            "balance",
            "balance",
        ),
        (
            format!(r#"{{"address":"{alice}"}}"#),
            "StreamAllBalances",
            "cosmos.bank.v1beta1.Query/AllBalances",
            json!({"address": alice}),
            "balances",
            "balances",
        ),
        (
            format!(r#"{{"delegator_address":"{alice}"}}"#),
            "StreamDelegations",
            "cosmos.staking.v1beta1.Query/DelegatorDelegations",
            json!({"delegatorAddr": alice}),
            "delegations",
            "delegationResponses",
        ),
        (
            format!(r#"{{"delegator_address":"{alice}", "validator_address":"{v1}"}}"#),
            "StreamDelegation",
            "cosmos.staking.v1beta1.Query/Delegation",
            json!({"delegatorAddr": alice, "validatorAddr": v1}),
            "delegation",
            "delegationResponse",
        ),
        (
            format!(r#"{{"delegator_address":"{alice}"}}"#),
            "StreamUnbondingDelegations",
            "cosmos.staking.v1beta1.Query/DelegatorUnbondingDelegations",
            json!({"delegatorAddr": alice}),
            "delegations",
            "unbondingResponses",
        ),
        (
            format!(r#"{{"delegator_address":"{alice}", "validator_address":"{v1}"}}"#),
            "StreamUnbondingDelegation",
            "cosmos.staking.v1beta1.Query/UnbondingDelegation",
            json!({"delegatorAddr": alice, "validatorAddr": v1}),
            "delegation",
            "unbond",
        ),
    ];
    for (data, rpc, query, query_data, field, query_field) in commands {
        let method = format!("juno.stream.v1.Query/{rpc}");
        let mut stream = GrpcurlStream::spawn(&grpcurl, &node, &data, &method);
        let first = stream.next().await;
        stream.stop().await;
        let height = height_of(&first);
        assert!(
            height >= h,
            "{rpc}: snapshot at {height}, before block {h}: {first}"
        );
        let standard = query_at(&grpcurl, &node, height, &query_data, query).await;
        assert_eq!(
            first[field], standard[query_field],
            "{rpc} at {height} vs {query}:\n{first}\n{standard}"
        );
        assert!(!first[field].is_null(), "{rpc}: {first}");
        let mut keys: Vec<&str> = first
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let expected: &[&str] = match rpc {
            "StreamDelegation" | "StreamUnbondingDelegation" => &[field, "found", "height"],
            _ => &[field, "height"],
        };
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{rpc}: {first}");
        if expected.contains(&"found") {
            assert_eq!(first["found"], json!(true), "{rpc}: {first}");
        }
    }
    // A few exact values, as a user reads them.
    let mut stream = GrpcurlStream::spawn(
        &grpcurl,
        &node,
        &format!(r#"{{"delegator_address":"{alice}", "validator_address":"{v1}"}}"#),
        "juno.stream.v1.Query/StreamDelegation",
    );
    let first = stream.next().await;
    assert_eq!(
        first["delegation"],
        json!({
            "delegation": {"delegatorAddress": alice, "validatorAddress": v1, "shares": "6000000000000000000000000"},
            "balance": {"denom": "ujuno", "amount": "6000000"}
        })
    );
    stream.stop().await;
}

#[tokio::test]
async fn a_grpcurl_stream_prints_each_change_and_errors_name_the_field() {
    let grpcurl = GRPCURL.require();
    let node = TestNode::start_default().await;
    let alice = address("alice");
    let data = format!(r#"{{"address":"{alice}", "denom":"ujuno"}}"#);
    let mut stream =
        GrpcurlStream::spawn(&grpcurl, &node, &data, "juno.stream.v1.Query/StreamBalance");
    let first = stream.next().await;
    let h0 = height_of(&first);
    assert_eq!(
        first,
        json!({"balance": {"denom": "ujuno", "amount": GENESIS_UJUNO.to_string()}, "height": h0.to_string()})
    );

    let h1 = node
        .tx_ok(&["bank", "send", "alice", "bob", "5000ujuno"])
        .await
        .height;
    let second = stream.next().await;
    assert_eq!(
        second,
        json!({"balance": {"denom": "ujuno", "amount": (GENESIS_UJUNO - 5000).to_string()}, "height": h1.to_string()})
    );
    stream.stop().await;

    // -emit-defaults shows found=false for a delegation that does not exist.
    let addr = node.grpc_addr().to_string();
    let v2 = valoper("validator2");
    let data = format!(r#"{{"delegator_address":"{alice}", "validator_address":"{v2}"}}"#);
    let method = "juno.stream.v1.Query/StreamDelegation";
    let mut stream = GrpcurlStream::spawn_with(&grpcurl, &node, &["-emit-defaults"], &data, method);
    let missing = stream.next().await;
    stream.stop().await;
    assert_eq!(missing["found"], json!(false), "{missing}");
    assert!(missing["delegation"].is_null(), "{missing}");

    // A validator address where an account belongs: grpcurl reports InvalidArgument.
    let data = format!(r#"{{"address":"{}", "denom":"ujuno"}}"#, valoper("alice"));
    let output = run(
        &grpcurl,
        &[
            "-plaintext",
            "-d",
            &data,
            &addr,
            "juno.stream.v1.Query/StreamBalance",
        ],
    )
    .await;
    assert!(
        !output.status.success(),
        "grpcurl must fail: {}",
        stdout(&output)
    );
    let err = stderr(&output);
    assert!(err.contains("Code: InvalidArgument"), "{err}");
    assert!(err.contains("address"), "{err}");
}
