//! End-to-end: `streamd plugin` as a go-plugin host sees it (DESIGN.md section 9). The
//! handshake line is the first stdout line, byte for byte; a missing cookie or an unknown
//! protocol version is refused on stderr with nothing on stdout; health reports "plugin"
//! SERVING and `GRPCController/Shutdown` stops it; `kill -9` of the host (streamd loading
//! the plugin through `sh -c`) ends the plugin within 2 s; a skipped `ListenCommit`
//! resynchronises subscribers from the host's state (counted in `stream_resyncs`); a
//! 100,000-pair change set is accepted at once.

mod stream_support;
mod support;

use std::time::{Duration, Instant};

use stream_proto::adr038::cosmos::store::streaming::abci::abci_listener_service_client::AbciListenerServiceClient;
use stream_proto::adr038::cosmos::store::streaming::abci::{
    ListenCommitRequest, ListenFinalizeBlockRequest,
};
use stream_proto::adr038::cosmos::store::v1beta1::StoreKvPair;
use stream_proto::adr038::grpc::health::v1::HealthCheckRequest;
use stream_proto::adr038::grpc::health::v1::health_check_response::ServingStatus;
use stream_proto::adr038::grpc::health::v1::health_client::HealthClient;
use stream_proto::adr038::plugin::Empty;
use stream_proto::adr038::plugin::grpc_controller_client::GrpcControllerClient;
use stream_proto::adr038::tendermint::abci::RequestFinalizeBlock;
use stream_support::{Recorder, StreamKey, assert_committed};
use support::accounts::BOND_DENOM;
use support::plugin::{PluginProcess, children, wait_ended};
use support::{TestNode, TestNodeOptions};
use tonic::transport::{Channel, Endpoint};

/// DESIGN.md section 9: the plugin is gone this soon after its host.
const EXIT_WITHIN: Duration = Duration::from_secs(2);

fn start_plugin(node: &TestNode) -> PluginProcess {
    PluginProcess::start(node.home(), node.grpc_addr(), &[]).unwrap_or_else(|(status, stderr, out)| {
        panic!(
            "streamd plugin exited with {status} before its handshake; stdout {:?}, stderr:\n{stderr}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// Sends one block to the plugin as the SDK's baseapp does: FinalizeBlock, then Commit.
async fn commit(
    client: &mut AbciListenerServiceClient<Channel>,
    height: i64,
    change_set: Vec<StoreKvPair>,
) {
    client
        .listen_finalize_block(ListenFinalizeBlockRequest {
            req: Some(RequestFinalizeBlock { height, time: None }),
            res: None,
        })
        .await
        .expect("ListenFinalizeBlock");
    client
        .listen_commit(ListenCommitRequest {
            block_height: height,
            res: None,
            change_set,
        })
        .await
        .expect("ListenCommit");
}

fn listener_client(plugin: &PluginProcess) -> AbciListenerServiceClient<Channel> {
    AbciListenerServiceClient::new(plugin.host_channel())
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX)
}

fn channel(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URL")
        .connect_lazy()
}

/// Opens `key` on the plugin's stream port, retrying while it looks for its host.
async fn open(grpc: std::net::SocketAddr, key: &StreamKey) -> Recorder {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Recorder::open(channel(grpc), key).await {
            Ok(r) => return r,
            Err(e) if Instant::now() > deadline => panic!("the plugin does not stream: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The plugin's `GET /metrics` text.
async fn metrics(plugin: &PluginProcess) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(plugin.api)
        .await
        .expect("API port");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.expect("response");
    text
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn handshake_line_health_and_shutdown() {
    let node = TestNode::start_default().await;
    let mut plugin = start_plugin(&node);
    let line = String::from_utf8(plugin.handshake.clone()).expect("UTF-8 handshake");
    let expected = format!("1|1|tcp|127.0.0.1:{}|grpc\n", plugin.addr.port());
    assert_eq!(line, expected, "the first stdout line, byte for byte");

    let mut health = HealthClient::new(plugin.host_channel());
    let status = health
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let unknown = health
        .check(HealthCheckRequest {
            service: "other".into(),
        })
        .await
        .expect_err("an unknown service is not reported");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    GrpcControllerClient::new(plugin.host_channel())
        .shutdown(Empty {})
        .await
        .expect("Shutdown");
    let status = plugin.wait_exit(EXIT_WITHIN).unwrap_or_else(|| {
        panic!(
            "the plugin still runs {EXIT_WITHIN:?} after Shutdown; stderr:\n{}",
            plugin.stderr.lock().unwrap()
        )
    });
    assert!(status.success(), "exit after Shutdown: {status}");
    // Logs went to stderr: stdout held the handshake line only.
    let mut rest = String::new();
    std::io::Read::read_to_string(plugin.stdout.as_mut().unwrap(), &mut rest).unwrap();
    assert_eq!(rest, "", "stdout after the handshake line");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_cookie_or_an_unknown_protocol_version_is_refused_on_stderr() {
    let node = TestNode::start_default().await;
    for (env, says) in [
        (
            ("ABCI_LISTENER_PLUGIN", "wrong"),
            "not meant to be run directly",
        ),
        (("PLUGIN_PROTOCOL_VERSIONS", "2,3"), "protocol version"),
    ] {
        let Err((status, stderr, stdout)) =
            PluginProcess::start(node.home(), node.grpc_addr(), &[env])
        else {
            panic!("the plugin accepted {env:?}");
        };
        assert_eq!(
            status.code(),
            Some(1),
            "{env:?}: exit status; stderr:\n{stderr}"
        );
        assert!(
            stdout.is_empty(),
            "{env:?}: nothing on stdout, got {:?}",
            String::from_utf8_lossy(&stdout)
        );
        assert!(
            stderr.contains(says),
            "{env:?}: stderr must say {says:?}:\n{stderr}"
        );
    }
}

/// The plugin process under a streamd host: `sh -c` is the host's child; dash does not exec
/// the plugin, so the plugin is the shell's child (or the shell itself if it did exec).
fn plugin_pid(host_pid: u32) -> Option<u32> {
    let cmdline =
        |p: u32| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
    for sh in children(host_pid) {
        if cmdline(sh).contains("\0plugin\0") {
            return Some(sh);
        }
        if let Some(p) = children(sh)
            .into_iter()
            .find(|p| cmdline(*p).contains("\0plugin\0"))
        {
            return Some(p);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_host_ends_the_plugin_within_2_s() {
    let node = TestNode::start(TestNodeOptions::default().with_plugin()).await;
    let pid =
        plugin_pid(node.pid()).unwrap_or_else(|| node.fail("no plugin process under the node"));
    // The plugin is serving (it has found its host) before the host dies.
    open(
        node.plugin_grpc_addr(),
        &StreamKey::balance("alice", BOND_DENOM),
    )
    .await;
    let status = std::process::Command::new("kill")
        .args(["-KILL", &node.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let took = wait_ended(pid, EXIT_WITHIN).unwrap_or_else(|| {
        panic!("the plugin (pid {pid}) still ran 2 s after kill -9 of its host")
    });
    eprintln!("plugin ended {took:?} after kill -9 of its host");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skipped_commit_resynchronises_subscribers_from_the_host() {
    let node = TestNode::start_default().await;
    let plugin = start_plugin(&node);
    let mut host = listener_client(&plugin);
    let first = node.height().await;
    commit(&mut host, first, Vec::new()).await;
    let key = StreamKey::balance("alice", BOND_DENOM);
    let mut alice = open(plugin.grpc, &key).await;
    let snapshot = alice.next().await;
    assert_eq!(
        snapshot.height, first,
        "the snapshot is at the block the plugin got"
    );
    assert_committed(&node, &key, &snapshot).await;
    let resyncs_before = counter(&metrics(&plugin).await, "stream_resyncs_total");

    // The host commits the send, then crashes before telling the plugin; after its restart
    // the next block the plugin hears of is a later one.
    let sent = node
        .tx_ok(&["bank", "send", "alice", "bob", "12345ujuno"])
        .await
        .height;
    node.wait_for_height(sent + 1).await;
    let next = node.height().await;
    commit(&mut host, next, Vec::new()).await;

    let update = alice.next().await;
    assert!(update.height >= sent && update.height <= next, "{update:?}");
    assert_ne!(
        update.value, snapshot.value,
        "the send reached the subscriber"
    );
    assert_committed(&node, &key, &update).await;
    let resyncs = counter(&metrics(&plugin).await, "stream_resyncs_total");
    assert!(
        resyncs > resyncs_before,
        "the gap is counted: {resyncs_before} -> {resyncs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100000_pair_change_set_is_accepted_at_once() {
    let node = TestNode::start_default().await;
    let plugin = start_plugin(&node);
    let mut host = listener_client(&plugin);
    let height = node.height().await;
    commit(&mut host, height, Vec::new()).await;
    let key = StreamKey::balance("alice", BOND_DENOM);
    let mut alice = open(plugin.grpc, &key).await;
    alice.next().await;

    // Genesis-sized: 100,000 balances of other accounts (bank key 0x02 | 20 | addr | denom).
    let change_set: Vec<StoreKvPair> = (0..100_000u32)
        .map(|i| {
            let mut key = vec![0x02, 20];
            key.extend([0xee; 16]);
            key.extend(i.to_be_bytes());
            key.extend(b"ujuno");
            StoreKvPair {
                store_key: "bank".into(),
                delete: false,
                key,
                value: (1000 + i).to_string().into_bytes(),
            }
        })
        .collect();
    let started = Instant::now();
    commit(&mut host, height + 1, change_set).await;
    let took = started.elapsed();
    eprintln!("100,000-pair ListenCommit answered in {took:?}");
    assert!(took < Duration::from_secs(5), "ListenCommit took {took:?}");
    // The plugin is still healthy and its dispatcher took the block.
    let status = HealthClient::new(plugin.host_channel())
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("health after the large block")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = metrics(&plugin).await;
        if counter(&m, "stream_blocks_dispatched_total") >= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the large block was never dispatched:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One health check over a connection of its own, closed on return.
async fn health_once(addr: std::net::SocketAddr) -> i32 {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("URL")
        .connect()
        .await
        .expect("connect to the plugin");
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread")]
async fn with_its_pipes_open_the_plugin_outlives_a_closed_connection() {
    // A live Go host closes an idle connection after 30 minutes without blocks (grpc-go's
    // idle timeout): while the pipes say the host lives, the plugin stays.
    let node = TestNode::start_default().await;
    let mut plugin = start_plugin(&node);
    assert_eq!(
        health_once(plugin.addr).await,
        ServingStatus::Serving as i32
    );
    assert_eq!(
        plugin.wait_exit(Duration::from_millis(2500)),
        None,
        "the plugin exited"
    );
    assert_eq!(
        health_once(plugin.addr).await,
        ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_pipes_the_host_connection_closing_ends_the_plugin_within_2_s() {
    use std::io::Read;
    let node = TestNode::start_default().await;
    let [grpc, api] = [0, 1].map(|_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    });
    // stderr is a file here, not a pipe: only the connection can tell.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = KillOnDrop(
        std::process::Command::new(support::streamd_bin())
            .args(["plugin", "--home", node.home().to_str().unwrap()])
            .args(["--grpc.address", &grpc.to_string()])
            .args(["--api.address", &format!("tcp://{api}")])
            .args(["--node-grpc", &node.grpc_url()])
            .envs(support::plugin::PLUGIN_ENV)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("spawn streamd plugin"),
    );
    let mut stdout = child.0.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let addr: std::net::SocketAddr = String::from_utf8(line)
        .unwrap()
        .split('|')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(health_once(addr).await, ServingStatus::Serving as i32);
    let closed = Instant::now();

    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        if closed.elapsed() > EXIT_WITHIN {
            panic!(
                "the plugin still runs {EXIT_WITHIN:?} after its host's connection closed; \
                 its log:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "plugin ended {:?} after its host's connection closed",
        closed.elapsed()
    );
}

/// A child process killed when the test ends, whatever happens.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
