//! End-to-end: `streamd keys` prints the deterministic dev addresses, `streamd init` writes a
//! home and refuses to overwrite it, and the tx CLI finds the node through app.toml.

mod support;

use std::path::Path;

use support::accounts::{BOND_DENOM, CHAIN_ID, DEV_KEYS, GENESIS_UJUNO, address, valoper};
use support::queries::At;
use support::{TestNode, TestNodeOptions, stderr, stdout, streamd};

fn home_arg(dir: &Path) -> &str {
    dir.to_str().expect("UTF-8 temp path")
}

#[test]
fn keys_list_prints_every_dev_key_and_its_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = streamd(&["keys", "list", "--home", home_arg(dir.path())]);
    assert!(output.status.success(), "keys list: {}", stderr(&output));
    let expected: String = DEV_KEYS
        .iter()
        .map(|name| format!("{name} {}\n", address(name)))
        .collect();
    assert_eq!(stdout(&output), expected);
}

#[test]
fn keys_show_prints_account_and_operator_addresses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = home_arg(dir.path());
    for name in DEV_KEYS {
        let account = streamd(&["keys", "show", name, "-a", "--home", home]);
        assert!(
            account.status.success(),
            "keys show {name}: {}",
            stderr(&account)
        );
        assert_eq!(stdout(&account), format!("{}\n", address(name)));

        let operator = streamd(&["keys", "show", name, "-a", "--bech", "val", "--home", home]);
        assert!(
            operator.status.success(),
            "keys show {name} --bech val: {}",
            stderr(&operator)
        );
        assert_eq!(stdout(&operator), format!("{}\n", valoper(name)));
    }
}

/// The dev addresses as the README and users see them, pinned so that a change in key
/// derivation (node or test) shows up here first.
#[test]
fn dev_addresses_are_the_documented_ones() {
    let expected = [
        ("alice", "juno1ccwqzcnvkdvxp7yql57gyxyy853vz4s36rn0am"),
        ("bob", "juno1sa3n2xuht9ywhl5dp67xmyyg4j4af8pug3jytl"),
        ("carol", "juno1ep9p93jue27z804wqa02tutswykxkc5fwf6xjt"),
        ("validator1", "juno103xuwtffekcuwgegklxczekl3kewhevynqcq4y"),
        ("validator2", "juno18tjqgnchzcyjujk749krdt3e6nws35adp84ayf"),
    ];
    for (name, account) in expected {
        assert_eq!(address(name), account, "{name}");
    }
    assert_eq!(
        valoper("validator1"),
        "junovaloper103xuwtffekcuwgegklxczekl3kewhevyvaw0wa"
    );
    assert_eq!(
        valoper("validator2"),
        "junovaloper18tjqgnchzcyjujk749krdt3e6nws35ad76rjls"
    );
}

#[test]
fn keys_show_rejects_an_unknown_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = streamd(&[
        "keys",
        "show",
        "mallory",
        "-a",
        "--home",
        home_arg(dir.path()),
    ]);
    assert!(
        !output.status.success(),
        "unknown key must fail: {}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("mallory"),
        "stderr names the key: {}",
        stderr(&output)
    );
}

#[test]
fn init_writes_a_home_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let home_str = home.to_str().expect("UTF-8");
    let first = streamd(&["init", "--home", home_str]);
    assert!(first.status.success(), "init: {}", stderr(&first));

    let config = read_toml(&home.join("config/config.toml"));
    assert_eq!(
        config["rpc"]["max_open_connections"].as_integer(),
        Some(900)
    );
    assert_eq!(
        config["rpc"]["max_subscriptions_per_client"].as_integer(),
        Some(5)
    );
    let app = read_toml(&home.join("config/app.toml"));
    for (table, keys) in [
        ("grpc", &["enable", "address"][..]),
        ("api", &["enable", "address"][..]),
        ("telemetry", &["enabled"][..]),
    ] {
        for key in keys {
            assert!(
                app[table].get(key).is_some(),
                "app.toml [{table}] {key} missing"
            );
        }
    }
    assert!(
        app.get("stream").is_some_and(toml::Value::is_table),
        "app.toml has [stream]"
    );
    let genesis_path = home.join("config/genesis.json");
    let genesis = std::fs::read(&genesis_path).expect("genesis.json");
    let json: serde_json::Value = serde_json::from_slice(&genesis).expect("genesis is JSON");
    assert_eq!(json["chain_id"], CHAIN_ID);

    let second = streamd(&["init", "--home", home_str]);
    assert!(!second.status.success(), "a second init must fail");
    assert!(
        stderr(&second).contains("genesis.json"),
        "the error names the file it protects: {}",
        stderr(&second)
    );
    assert_eq!(
        std::fs::read(&genesis_path).expect("genesis.json"),
        genesis,
        "untouched"
    );

    let overwrite = streamd(&[
        "init",
        "--home",
        home_str,
        "--chain-id",
        "other-1",
        "--overwrite",
    ]);
    assert!(
        overwrite.status.success(),
        "init --overwrite: {}",
        stderr(&overwrite)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&genesis_path).expect("genesis.json")).expect("JSON");
    assert_eq!(json["chain_id"], "other-1");
}

fn read_toml(path: &Path) -> toml::Table {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

#[tokio::test]
async fn start_and_tx_find_the_node_through_app_toml() {
    // The ports are only in app.toml: `start` must listen there and `tx` without --node
    // must broadcast there.
    let node = TestNode::start(TestNodeOptions {
        ports_in_app_toml: true,
        ..TestNodeOptions::default()
    })
    .await;
    let args = ["tx", "bank", "send", "carol", "alice", "5ujuno", "--wait"];
    let output = node.cli_without_node(&args).await;
    let sent = support::parse_tx_output(&args, &output);
    assert_eq!((sent.code, sent.raw_log.as_str()), (0, ""), "{sent:?}");
    assert_eq!(
        node.balance(&address("alice"), BOND_DENOM, At::Height(sent.height))
            .await,
        GENESIS_UJUNO + 5
    );
}

#[tokio::test]
async fn tx_fails_clearly_when_no_node_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let home_str = home.to_str().expect("UTF-8");
    assert!(streamd(&["init", "--home", home_str]).status.success());
    // Port 1 on loopback: nothing listens there.
    let output = tokio::process::Command::new(support::streamd_bin())
        .args(["tx", "bank", "send", "alice", "bob", "1ujuno"])
        .args(["--home", home_str, "--node", "http://127.0.0.1:1"])
        .output()
        .await
        .expect("run streamd");
    assert!(!output.status.success(), "no node: must fail");
    assert!(!stderr(&output).is_empty(), "and say why on stderr");
}
