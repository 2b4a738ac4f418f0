//! `/health` and `/stats` against the in-memory chain: 200 -> 503 -> 200 when the dispatcher
//! lags and catches up, when state reads fail and recover, and on shutdown; `/stats` counts
//! what the metrics count and lists the most-subscribed topics.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::atomic::{AtomicBool, Ordering};
use tower_service::Service;

/// GETs `path` from the module's operator routes.
async fn get(m: &StreamModule, path: &str) -> (StatusCode, serde_json::Value) {
    let mut router = m.operator_router();
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = router.call(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

/// Polls `/health` until it answers `code` with `height`, or panics after 5 s.
async fn health_becomes(m: &StreamModule, code: StatusCode, height: i64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get(m, "/health").await;
        if status == code && body["height"] == height {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/health stayed {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// The stall guard is held across awaits on purpose: it blocks the dispatcher's own thread,
// never this test's runtime.
#[allow(clippy::await_holding_lock)]
#[tokio::test]
async fn health_follows_the_dispatchers_lag() {
    let mem = MemoryChain::new();
    let config = StreamConfig {
        health_max_lag_blocks: 3,
        ..StreamConfig::default()
    };
    let m = module_with(&mem, &config, Duration::ZERO);
    let hook = m.commit_listener();
    hook.on_commit(mem.commit(vec![balance(&addr(1), "ujuno", 1)]));
    let body = health_becomes(&m, StatusCode::OK, 1).await;
    assert_eq!(body["service"], "stream");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["height"], 1);
    assert_eq!(body["dispatcher_lag_blocks"], 0);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(body["uptime_seconds"].is_u64());

    // Stalled: the node commits on, the dispatcher does not take the blocks.
    let stall = m.stall();
    for i in 2..=6 {
        hook.on_commit(mem.commit(vec![balance(&addr(1), "ujuno", i)]));
    }
    let body = health_becomes(&m, StatusCode::SERVICE_UNAVAILABLE, 1).await;
    assert_eq!(body["status"], "lagging");
    assert_eq!(body["node_height"], 6);
    assert!(
        body["dispatcher_lag_blocks"].as_i64().unwrap() > 3,
        "{body}"
    );
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("health_max_lag_blocks = 3"),
        "{body}"
    );

    drop(stall);
    health_becomes(&m, StatusCode::OK, 6).await;

    // Shutting down: 503 at once.
    let ((), (status, body)) = tokio::join!(m.shutdown(Duration::from_secs(1)), async {
        tokio::task::yield_now().await;
        get(&m, "/health").await
    });
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "shutting_down");
}

/// The node's reader, failing while `fail` is set.
struct Flaky {
    inner: DecodingReader<Reader>,
    fail: Arc<AtomicBool>,
}

impl Flaky {
    fn check(&self, height: i64) -> Result<(), ReadError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(ReadError {
                height,
                reason: "the host node is unreachable".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl StateReader for Flaky {
    async fn balances(&self, height: i64, a: &Address) -> Result<Vec<(String, Int)>, ReadError> {
        self.check(height)?;
        self.inner.balances(height, a).await
    }

    async fn validators(
        &self,
        height: i64,
    ) -> Result<Vec<(Address, stream_abci_listener::ValidatorTokens)>, ReadError> {
        self.check(height)?;
        self.inner.validators(height).await
    }

    async fn delegations(
        &self,
        height: i64,
        d: &Address,
    ) -> Result<Vec<(Address, Dec)>, ReadError> {
        self.check(height)?;
        self.inner.delegations(height, d).await
    }

    async fn unbonding_delegations(
        &self,
        height: i64,
        d: &Address,
    ) -> Result<Vec<(Address, Vec<stream_abci_listener::UnbondingEntry>)>, ReadError> {
        self.check(height)?;
        self.inner.unbonding_delegations(height, d).await
    }
}

#[tokio::test]
async fn health_reports_failing_reads_until_one_succeeds() {
    let mem = MemoryChain::new();
    let fail = Arc::new(AtomicBool::new(true));
    let m = StreamModule::start(
        &StreamConfig::default(),
        LimitsConfig::default(),
        chain(),
        Arc::new(Flaky {
            inner: DecodingReader(Reader(mem.clone(), Duration::ZERO)),
            fail: fail.clone(),
        }),
    );
    m.commit_listener()
        .on_commit(mem.commit(vec![balance(&addr(1), "ujuno", 1)]));
    health_becomes(&m, StatusCode::OK, 1).await;
    let h = m.handle();
    let key = SubscriptionKey::Balances { address: addr(1) };
    let permit = h
        .limits
        .subscribe(IpAddr::from([127, 0, 0, 1]), Transport::Grpc)
        .unwrap();
    assert!(
        h.subscribe(key.clone(), handle::Start::Snapshot, permit)
            .await
            .is_err()
    );
    let body = health_becomes(&m, StatusCode::SERVICE_UNAVAILABLE, 1).await;
    assert_eq!(body["status"], "reader_failing");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("the host node is unreachable"),
        "{body}"
    );

    fail.store(false, Ordering::SeqCst);
    let permit = h
        .limits
        .subscribe(IpAddr::from([127, 0, 0, 1]), Transport::Grpc)
        .unwrap();
    let s = h
        .subscribe(key, handle::Start::Snapshot, permit)
        .await
        .unwrap();
    next(&s).await;
    health_becomes(&m, StatusCode::OK, 1).await;
    m.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stats_count_what_the_metrics_count() {
    let mem = MemoryChain::new();
    let m = module(&mem, 64);
    let hook = m.commit_listener();
    hook.on_commit(mem.commit(vec![balance(&addr(1), "ujuno", 1)]));
    let popular = SubscriptionKey::Balances { address: addr(1) };
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(subscribe(&m, popular.clone()).await);
    }
    subs.push(subscribe(&m, SubscriptionKey::Delegations { delegator: addr(2) }).await);
    for s in &subs {
        next(s).await;
    }
    let (status, stats) = get(&m, "/stats").await;
    assert_eq!(status, StatusCode::OK);
    let grpc = &stats["transports"]["grpc"];
    assert_eq!(grpc["messages_sent"], 4, "{stats}");
    assert_eq!(
        grpc["messages_sent"],
        m.metrics().transport_messages_sent(Transport::Grpc).get()
    );
    assert_eq!(stats["transports"]["websocket"]["messages_sent"], 0);
    assert_eq!(stats["subscriptions"]["balances"], 3);
    assert_eq!(stats["subscriptions"]["delegations"], 1);
    assert_eq!(stats["subscriptions"]["balance"], 0);
    assert_eq!(stats["topics"], 2);
    assert_eq!(stats["height"], 1);
    let top = stats["top_topics"].as_array().unwrap();
    assert_eq!(top.len(), 2, "{stats}");
    assert_eq!(top[0]["type"], "balances");
    assert_eq!(top[0]["subscribers"], 3);
    assert_eq!(top[0]["address"], chain().account_string(&addr(1)));
    assert_eq!(top[1]["type"], "delegations");
    assert_eq!(top[1]["delegator"], chain().account_string(&addr(2)));
    assert_eq!(stats["replay_window"]["latest_height"], 1);
    assert_eq!(stats["refusals"]["max_connections"], 0);
    assert_eq!(stats["replays_refused"]["gap"], 0);
    m.shutdown(Duration::from_secs(1)).await;
}
