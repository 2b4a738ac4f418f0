//! End-to-end: hostile transactions against the node's tx path. Huge decimal amounts, txs
//! over `[mempool] max_tx_bytes`, floods of large fee-less txs and oversized gRPC requests
//! are refused with precise errors, and neither stall block production nor grow the node's
//! memory.
//!
//! The tests run one at a time (`SERIAL`): they measure block cadence and resident memory,
//! which a concurrent node on the same two cores would disturb.

mod hostile_support;
mod support;

use std::time::Duration;

use cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxResponse;
use cosmos_sdk_proto::cosmos::tx::v1beta1::{BroadcastMode, BroadcastTxRequest, GetTxRequest};
use hostile_support::{Cadence, padded_send, send_with_amount, unsigned};
use support::TestNode;
use support::tx::tx_hash;
use tonic::Code;

/// One hostile test at a time (see the file's doc).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// CometBFT's default `[mempool] max_tx_bytes`, which `streamd init` writes.
const MAX_TX_BYTES: usize = 1_048_576;
/// 2^256, the first value an SDK `Int` cannot hold (78 digits).
const TWO_POW_256: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639936";
/// 2^256 - 1, the largest amount an SDK `Int` holds.
const TWO_POW_256_MINUS_1: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

/// Asserts a CheckTx refusal with `code` in codespace sdk, the tx's hash, and a log
/// containing every one of `words`.
fn assert_refused(r: &TxResponse, tx: &[u8], code: u32, words: &[&str]) {
    assert_eq!(
        (r.code, r.codespace.as_str(), r.txhash.as_str()),
        (code, "sdk", tx_hash(tx).as_str()),
        "CheckTx response: code {} codespace {:?} log {:?}",
        r.code,
        r.codespace,
        r.raw_log.chars().take(300).collect::<String>()
    );
    for w in words {
        assert!(r.raw_log.contains(w), "{w:?} not in log {:?}", r.raw_log);
    }
}

#[tokio::test]
async fn huge_amounts_do_not_stall_blocks_and_are_refused_precisely() {
    let _serial = SERIAL.lock().await;
    let node = TestNode::start_default().await;
    node.wait_for_height(3).await;
    let window = Duration::from_secs(3);
    let baseline = Cadence::sample(&node, window).await;

    // D1: a 4,150,000-digit amount (over max_tx_bytes), one that fits in max_tx_bytes
    // (1,000,000 digits), 79 digits, and 2^256.
    let d1 = unsigned(vec![send_with_amount("7".repeat(4_150_000))]);
    let in_limit = unsigned(vec![send_with_amount("7".repeat(1_000_000))]);
    let digits79 = unsigned(vec![send_with_amount(format!("1{}", "0".repeat(78)))]);
    let over = unsigned(vec![send_with_amount(TWO_POW_256.to_owned())]);
    let max = unsigned(vec![send_with_amount(TWO_POW_256_MINUS_1.to_owned())]);
    assert!(d1.len() > 4_150_000 && in_limit.len() < MAX_TX_BYTES);

    // The attacker broadcasts them over and over while the cadence is measured.
    let attack_txs = vec![d1.clone(), in_limit.clone(), digits79.clone(), over.clone()];
    let mut client = node.tx_service();
    let attacker = tokio::spawn(async move {
        let mut sent = 0u32;
        loop {
            for tx in &attack_txs {
                let _ = client
                    .broadcast_tx(BroadcastTxRequest {
                        tx_bytes: tx.clone(),
                        mode: BroadcastMode::Sync as i32,
                    })
                    .await;
                sent += 1;
            }
            if sent > 10_000 {
                return;
            }
        }
    });
    let attacked = Cadence::sample(&node, window).await;
    attacker.abort();
    eprintln!(
        "baseline: {} blocks in {window:?}, longest interval {:.3}s; under attack: {} blocks, longest interval {:.3}s",
        baseline.produced(),
        baseline.max_interval(),
        attacked.produced(),
        attacked.max_interval()
    );
    assert!(
        attacked.produced() as f64 >= 0.8 * baseline.produced() as f64,
        "blocks slowed down under attack: {} blocks in {window:?} (baseline {})",
        attacked.produced(),
        baseline.produced()
    );
    assert!(
        attacked.max_interval() < 1.0,
        "a block took {:.3}s under attack (baseline longest {:.3}s, block time 200ms)",
        attacked.max_interval(),
        baseline.max_interval()
    );

    // Each is refused with a precise error.
    let too_large = format!("Max size is {MAX_TX_BYTES}, but got {}", d1.len());
    let r = node.broadcast(d1.clone()).await;
    assert_refused(&r, &d1, 21, &["Tx too large", &too_large]);
    let r = node.broadcast(in_limit.clone()).await;
    assert_refused(
        &r,
        &in_limit,
        2,
        &["integer out of range", "1000000 digits", "at most 78"],
    );
    let r = node.broadcast(digits79.clone()).await;
    assert_refused(
        &r,
        &digits79,
        2,
        &["integer out of range", "79 digits", "at most 78"],
    );
    let r = node.broadcast(over.clone()).await;
    assert_refused(&r, &over, 2, &["integer out of range", "257 bits"]);
    // 2^256 - 1 decodes; the unsigned tx then fails the signature check.
    let r = node.broadcast(max.clone()).await;
    assert_refused(&r, &max, 15, &["no signatures supplied"]);
}

#[tokio::test]
async fn a_tx_over_max_tx_bytes_is_refused_with_the_size() {
    let _serial = SERIAL.lock().await;
    let node = TestNode::start_default().await;
    let alice = node.signer("alice").await;
    let tx = padded_send(&alice, 2_000_000);
    let r = node.broadcast(tx.clone()).await;
    let too_large = format!("Max size is {MAX_TX_BYTES}, but got {}", tx.len());
    assert_refused(&r, &tx, 21, &["Tx too large", &too_large]);
    // Refused before CheckTx: the sequence is not consumed and a normal tx still goes in.
    let fits = padded_send(&alice, 1_000);
    let r = node.submit(fits).await;
    assert_eq!(r.code, 0, "{r:?}");
}

#[tokio::test]
async fn many_large_fee_less_txs_do_not_grow_memory() {
    const TXS: u64 = 160;
    const PADDING: usize = 1_000_000;
    /// Generous: retained tx bytes are bounded by 64 MiB, blocks by 21 MiB.
    const MAX_GROWTH: u64 = 200 << 20;
    let _serial = SERIAL.lock().await;
    let node = TestNode::start_default().await;
    node.wait_for_height(3).await;
    let before = node.rss_bytes();

    let mut signer = node.signer("alice").await;
    let mut hashes = Vec::new();
    for _ in 0..TXS {
        let tx = padded_send(&signer, PADDING);
        assert!(tx.len() > PADDING && tx.len() < MAX_TX_BYTES);
        hashes.push(tx_hash(&tx));
        let r = node.broadcast(tx).await;
        assert_eq!(r.code, 0, "CheckTx: {}", r.raw_log);
        signer.sequence += 1;
    }
    let last = node.wait_tx(hashes.last().expect("some txs")).await;
    assert_eq!(last.code, 0, "{last:?}");
    // A few more blocks, so that whatever the node keeps is all it keeps.
    Cadence::sample(&node, Duration::from_secs(1)).await;
    let after = node.rss_bytes();
    let growth = after.saturating_sub(before);
    eprintln!(
        "streamd RSS {} MiB -> {} MiB after {TXS} txs of {PADDING} bytes (growth {} MiB)",
        before >> 20,
        after >> 20,
        growth >> 20
    );
    assert!(
        growth < MAX_GROWTH,
        "RSS grew by {} MiB (bound {} MiB)",
        growth >> 20,
        MAX_GROWTH >> 20
    );

    // The oldest records were evicted, with an answer that says so.
    let evicted = node
        .tx_service()
        .get_tx(GetTxRequest {
            hash: hashes[0].clone(),
        })
        .await
        .expect_err("the first tx's record is evicted");
    assert_eq!(evicted.code(), Code::NotFound, "{evicted}");
    assert!(
        evicted.message().contains("no longer kept"),
        "{}",
        evicted.message()
    );
}

#[tokio::test]
async fn a_100_mb_request_is_refused_with_resource_exhausted() {
    let _serial = SERIAL.lock().await;
    let node = TestNode::start_default().await;
    let err = node
        .tx_service()
        .broadcast_tx(BroadcastTxRequest {
            tx_bytes: vec![0; 100 << 20],
            mode: BroadcastMode::Sync as i32,
        })
        .await
        .expect_err("a 100 MB request is refused");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // The node is unharmed.
    let h = node.height().await;
    node.wait_for_height(h + 2).await;
}

#[tokio::test]
async fn init_writes_cometbft_mempool_keys_and_a_bad_value_stops_startup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let home_str = home.to_str().expect("UTF-8 path");
    let init = support::streamd(&["init", "--home", home_str]);
    assert!(init.status.success(), "{}", support::stderr(&init));
    let path = home.join("config").join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config.toml");
    let table: toml::Table = text.parse().expect("TOML");
    let mempool = table["mempool"].as_table().expect("[mempool]");
    for (key, value) in [
        ("size", 5000),
        ("max_txs_bytes", 1_073_741_824),
        ("max_tx_bytes", 1_048_576),
    ] {
        assert_eq!(mempool[key].as_integer(), Some(value), "[mempool] {key}");
    }

    let bad = text.replace("max_tx_bytes = 1048576", "max_tx_bytes = 0");
    std::fs::write(&path, bad).expect("write config.toml");
    let mut start = std::process::Command::new(support::streamd_bin())
        .args([
            "start",
            "--home",
            home_str,
            "--grpc.address",
            "127.0.0.1:0",
            "--api.address",
            "tcp://127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn streamd start");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = start.try_wait().expect("poll streamd") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = start.kill();
            let _ = start.wait();
            panic!("streamd started with [mempool] max_tx_bytes = 0");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut start.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success());
    assert!(
        stderr.contains("config.toml: key `mempool.max_tx_bytes`: 0 is not in 1..=22020096"),
        "{stderr}"
    );
}
