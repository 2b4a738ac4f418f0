//! End-to-end: grpcurl 1.8 (server reflection v1alpha, no proto files) lists and calls the
//! node's standard services, as a user would on a Cosmos node.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::json;
use support::TestNode;
use support::accounts::{GENESIS_UJUNO, address, valoper};
use support::tools::GRPCURL;
use support::{stderr, stdout};

async fn run(grpcurl: &PathBuf, args: &[&str]) -> Output {
    let output = tokio::process::Command::new(grpcurl)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", grpcurl.display()));
    assert!(
        output.status.success(),
        "grpcurl {args:?} failed ({}):\n{}",
        output.status,
        stderr(&output)
    );
    output
}

async fn call(
    grpcurl: &PathBuf,
    node: &TestNode,
    extra: &[&str],
    data: &str,
    method: &str,
) -> serde_json::Value {
    let addr = node.grpc_addr().to_string();
    let mut args = vec!["-plaintext"];
    args.extend_from_slice(extra);
    args.extend(["-d", data, &addr, method]);
    let output = run(grpcurl, &args).await;
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| {
        panic!(
            "grpcurl {method} printed non-JSON {:?}: {e}",
            stdout(&output)
        )
    })
}

#[tokio::test]
async fn reflection_lists_every_service_and_method() {
    let grpcurl = GRPCURL.require();
    let node = TestNode::start_default().await;
    let addr = node.grpc_addr().to_string();

    let services = stdout(&run(&grpcurl, &["-plaintext", &addr, "list"]).await);
    let services: Vec<&str> = services.lines().collect();
    for expected in [
        "cosmos.auth.v1beta1.Query",
        "cosmos.bank.v1beta1.Query",
        "cosmos.base.tendermint.v1beta1.Service",
        "cosmos.staking.v1beta1.Query",
        "cosmos.tx.v1beta1.Service",
        "streamd.dev.v1.Dev",
    ] {
        assert!(
            services.contains(&expected),
            "{expected} missing from {services:?}"
        );
    }

    let staking = stdout(
        &run(
            &grpcurl,
            &["-plaintext", &addr, "list", "cosmos.staking.v1beta1.Query"],
        )
        .await,
    );
    for method in [
        "Validator",
        "Validators",
        "Delegation",
        "DelegatorDelegations",
        "UnbondingDelegation",
        "DelegatorUnbondingDelegations",
    ] {
        let full = format!("cosmos.staking.v1beta1.Query.{method}");
        assert!(
            staking.lines().any(|l| l == full),
            "{full} missing from:\n{staking}"
        );
    }
    let bank = stdout(
        &run(
            &grpcurl,
            &["-plaintext", &addr, "list", "cosmos.bank.v1beta1.Query"],
        )
        .await,
    );
    for method in ["Balance", "AllBalances"] {
        let full = format!("cosmos.bank.v1beta1.Query.{method}");
        assert!(
            bank.lines().any(|l| l == full),
            "{full} missing from:\n{bank}"
        );
    }
    // Message types resolve too (grpcurl needs them to encode requests).
    let described = stdout(
        &run(
            &grpcurl,
            &[
                "-plaintext",
                &addr,
                "describe",
                "cosmos.bank.v1beta1.QueryBalanceRequest",
            ],
        )
        .await,
    );
    assert!(described.contains("string address = 1;"), "{described}");
    assert!(described.contains("string denom = 2;"), "{described}");
}

#[tokio::test]
async fn queries_answer_in_json() {
    let grpcurl = GRPCURL.require();
    let node = TestNode::start_default().await;
    let alice = address("alice");

    let request = json!({"address": alice, "denom": "ujuno"}).to_string();
    let balance = call(
        &grpcurl,
        &node,
        &[],
        &request,
        "cosmos.bank.v1beta1.Query/Balance",
    )
    .await;
    assert_eq!(
        balance,
        json!({"balance": {"denom": "ujuno", "amount": GENESIS_UJUNO.to_string()}})
    );
    // At height 1, through the height header.
    let at_one = call(
        &grpcurl,
        &node,
        &["-H", "x-cosmos-block-height: 1"],
        &request,
        "cosmos.bank.v1beta1.Query/Balance",
    )
    .await;
    assert_eq!(at_one, balance);

    let request = json!({"validatorAddr": valoper("validator1")}).to_string();
    let validator = call(
        &grpcurl,
        &node,
        &[],
        &request,
        "cosmos.staking.v1beta1.Query/Validator",
    )
    .await;
    assert_eq!(
        validator["validator"]["operatorAddress"],
        valoper("validator1")
    );
    assert_eq!(validator["validator"]["tokens"], "10000000000");
    assert_eq!(
        validator["validator"]["delegatorShares"],
        "10000000000000000000000000000"
    );

    let block = call(
        &grpcurl,
        &node,
        &[],
        "{}",
        "cosmos.base.tendermint.v1beta1.Service/GetLatestBlock",
    )
    .await;
    let header = if block["sdkBlock"].is_object() {
        &block["sdkBlock"]["header"]
    } else {
        &block["block"]["header"]
    };
    let height: i64 = header["height"]
        .as_str()
        .expect("int64 is a JSON string")
        .parse()
        .expect("height");
    assert!(height >= 1, "{block}");
}
