//! The `streamd` command line as tests run it: one-off commands (`init`, `keys`), commands
//! against a running node (`tx`, `dev`), and the one-JSON-line output of `streamd tx`.

use std::process::{Command, ExitStatus, Output, Stdio};

use super::TestNode;

/// Path of the `streamd` binary Cargo built for this test run.
pub fn streamd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_streamd")
}

/// Runs `streamd ARGS` to completion (no node needed: `init`, `keys`).
pub fn streamd(args: &[&str]) -> Output {
    Command::new(streamd_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", streamd_bin()))
}

/// Stdout of a command as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Stderr of a command as text (lossy; only for messages).
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Result of a `streamd tx ...` command: the one JSON line it printed, and how it exited.
#[derive(Clone, Debug)]
pub struct TxOutcome {
    /// Upper-case hex tx hash.
    pub txhash: String,
    /// Result code (0 = success).
    pub code: u32,
    /// Codespace of a failure ("" on success).
    pub codespace: String,
    /// Log of the result.
    pub raw_log: String,
    /// Height of the block holding the tx (0 without `--wait`).
    pub height: i64,
    /// Exit status of the command.
    pub status: ExitStatus,
}

impl TestNode {
    /// Runs `streamd ARGS --home HOME`, plus `--node URL` for `tx` and `dev` commands.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let node = matches!(args.first(), Some(&"tx") | Some(&"dev"));
        self.run_cli(args, node).await
    }

    /// Runs `streamd ARGS --home HOME` without `--node`, so the command finds the node
    /// through HOME's app.toml.
    pub async fn cli_without_node(&self, args: &[&str]) -> Output {
        self.run_cli(args, false).await
    }

    async fn run_cli(&self, args: &[&str], with_node: bool) -> Output {
        let mut command = tokio::process::Command::new(streamd_bin());
        command
            .args(args)
            .arg("--home")
            .arg(&self.home)
            .stdin(Stdio::null());
        if with_node {
            command.arg("--node").arg(self.grpc_url());
        }
        command
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run streamd {args:?}: {e}"))
    }

    /// Runs `streamd tx ARGS --wait` and parses the one JSON line it prints; checks the exit
    /// status matches the result code (0 for code 0, 1 otherwise).
    pub async fn tx(&self, args: &[&str]) -> TxOutcome {
        let mut full = vec!["tx"];
        full.extend_from_slice(args);
        full.push("--wait");
        let output = self.cli(&full).await;
        let outcome = parse_tx_output(&full, &output);
        assert!(
            outcome.height > 0,
            "streamd {full:?} with --wait must report the tx's block height: {outcome:?}"
        );
        outcome
    }

    /// Like [`TestNode::tx`] but requires success (code 0).
    pub async fn tx_ok(&self, args: &[&str]) -> TxOutcome {
        let outcome = self.tx(args).await;
        assert_eq!(
            (outcome.code, outcome.codespace.as_str()),
            (0, ""),
            "streamd tx {args:?} failed: {outcome:?}"
        );
        outcome
    }
}

/// Parses the one JSON line `streamd tx` prints and checks its exit status against `code`.
pub fn parse_tx_output(args: &[&str], output: &Output) -> TxOutcome {
    let text = stdout(output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "streamd {args:?} must print exactly one JSON line; stdout {text:?}, stderr:\n{}",
        stderr(output)
    );
    let json: serde_json::Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("streamd {args:?} printed non-JSON {:?}: {e}", lines[0]));
    let object = json.as_object().expect("a JSON object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["code", "codespace", "height", "raw_log", "txhash"],
        "streamd {args:?} printed {json}"
    );
    let outcome = TxOutcome {
        txhash: json["txhash"].as_str().expect("txhash string").to_owned(),
        code: json["code"].as_u64().expect("code number") as u32,
        codespace: json["codespace"]
            .as_str()
            .expect("codespace string")
            .to_owned(),
        raw_log: json["raw_log"].as_str().expect("raw_log string").to_owned(),
        height: json["height"].as_i64().expect("height number"),
        status: output.status,
    };
    assert!(
        outcome.txhash.len() == 64
            && outcome
                .txhash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "txhash must be 64 upper-case hex digits: {:?}",
        outcome.txhash
    );
    let expected_exit = if outcome.code == 0 { 0 } else { 1 };
    assert_eq!(
        output.status.code(),
        Some(expected_exit),
        "streamd {args:?} exit status must be {expected_exit} for code {}; stderr:\n{}",
        outcome.code,
        stderr(output)
    );
    outcome
}
