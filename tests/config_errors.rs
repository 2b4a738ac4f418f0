//! End-to-end: `streamd start` refuses every out-of-range or mistyped `[stream]` value in
//! `app.toml` at startup, naming the file and the key, instead of panicking later (a queue
//! bound near 2^61 used to abort the node; a ping interval of 400000000000 years panicked
//! every WebSocket task).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{TestNode, TestNodeOptions, stderr, streamd, streamd_bin};

/// How long a refused start may take (it reads two files and exits).
const EXIT_WITHIN: Duration = Duration::from_secs(30);

/// Inits a home whose node would listen on free ports, then sets `[stream] key = value`.
fn home_with(dir: &Path, key: &str, value: toml::Value) -> String {
    let home = dir.join("home");
    let home_str = home.to_str().expect("UTF-8 temp path").to_owned();
    let init = streamd(&["init", "--home", &home_str]);
    assert!(init.status.success(), "init: {}", stderr(&init));
    let path = home.join("config/app.toml");
    let mut app: toml::Table = std::fs::read_to_string(&path)
        .expect("app.toml")
        .parse()
        .expect("app.toml is TOML");
    // If a bad value were accepted, the node must not collide with anything on 9090/1317.
    app["grpc"]["address"] = "127.0.0.1:0".into();
    app["api"]["address"] = "tcp://127.0.0.1:0".into();
    app["stream"]
        .as_table_mut()
        .expect("[stream] table")
        .insert(key.to_owned(), value);
    std::fs::write(&path, toml::to_string(&app).expect("serialise")).expect("write app.toml");
    home_str
}

/// Runs `streamd start --home HOME`; returns its stderr once it has exited unsuccessfully.
fn start_must_fail(home: &str, what: &str) -> String {
    let mut child = Command::new(streamd_bin())
        .args(["start", "--home", home])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn streamd");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > EXIT_WITHIN {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{what}: the node started instead of refusing the value; stderr:\n{}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    let text = stderr(&out);
    assert!(!status.success(), "{what}: exit status {status}");
    assert!(
        !text.contains("panicked"),
        "{what}: the node panicked instead of naming the value:\n{text}"
    );
    text
}

#[test]
fn out_of_range_and_mistyped_stream_settings_stop_the_node_naming_file_and_key() {
    let cases: [(&str, toml::Value); 9] = [
        ("block_queue", toml::Value::Integer(1 << 61)),
        ("block_queue", "big".into()),
        ("block_queue", toml::Value::Integer(0)),
        ("subscribe_queue", toml::Value::Integer(-5)),
        ("resume_queue", toml::Value::Integer(i64::MAX)),
        ("ping_interval", "400000000000y".into()),
        ("idle_timeout", "0s".into()),
        ("max_message_size", toml::Value::Integer(1 << 40)),
        ("replay_memory", "256MiB".into()),
    ];
    for (key, value) in cases {
        let what = format!("[stream] {key} = {value}");
        let dir = tempfile::tempdir().expect("temp dir");
        let home = home_with(dir.path(), key, value);
        let text = start_must_fail(&home, &what);
        assert!(
            text.contains("app.toml") && text.contains(key),
            "{what}: the error must name app.toml and {key}:\n{text}"
        );
    }
}

#[tokio::test]
async fn unknown_keys_in_the_tables_read_are_warned_about_by_name() {
    // A typo leaves the default in force: the node starts, but says so.
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .rpc("max_open_conections", 9)
            .rpc("max_subscriptions_per_client", 3),
    )
    .await;
    node.wait_for_height(2).await;
    let log = node.log_text();
    assert!(
        log.contains("config.toml: [rpc] max_open_conections is not a key"),
        "the node must warn about the unknown key:\n{log}"
    );
    assert!(
        !log.contains("max_subscriptions_per_client is not a key"),
        "known keys are not warned about:\n{log}"
    );
}
