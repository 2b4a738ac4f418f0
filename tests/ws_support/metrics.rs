//! `GET /metrics` on the API port, parsed into samples (`name{labels}` -> value) and
//! `# TYPE` declarations, and waits for a metric to reach a value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::WAIT;
use super::http::get;

/// Which exposition format to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `GET /metrics`: OpenMetrics text (counters' samples end in `_total`, `# EOF` last).
    OpenMetrics,
    /// `GET /metrics?format=prometheus`: Prometheus text format 0.0.4.
    Prometheus,
}

/// One scrape of `/metrics`.
#[derive(Clone, Debug)]
pub struct Scrape {
    /// The body as served.
    pub text: String,
    /// `Content-Type` of the response.
    pub content_type: String,
    /// Every sample line: `name{labels}` exactly as written (labels in the node's order) -> value.
    pub samples: BTreeMap<String, f64>,
    /// `# TYPE name type` declarations.
    pub types: BTreeMap<String, String>,
}

impl Scrape {
    /// The value of sample `key` (e.g. `stream_connections` or
    /// `stream_subscriptions{type="balance"}`); fails the test, showing the scrape, if absent.
    pub fn get(&self, key: &str) -> f64 {
        self.try_get(key)
            .unwrap_or_else(|| panic!("/metrics has no sample {key}; it served:\n{}", self.text))
    }

    /// The value of sample `key`, if present.
    pub fn try_get(&self, key: &str) -> Option<f64> {
        self.samples.get(key).copied()
    }

    /// The declared type of metric family `name`.
    pub fn type_of(&self, name: &str) -> &str {
        self.types.get(name).map(String::as_str).unwrap_or_else(|| {
            panic!(
                "/metrics declares no # TYPE for {name}; it served:\n{}",
                self.text
            )
        })
    }

    /// Sum of every sample of family `prefix{...}` (e.g. all `stream_messages_sent_total`).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| v)
            .sum()
    }
}

/// `/metrics` in `format`; fails the test unless it answers 200.
pub async fn scrape_format(api: SocketAddr, format: Format) -> Scrape {
    let path = match format {
        Format::OpenMetrics => "/metrics",
        Format::Prometheus => "/metrics?format=prometheus",
    };
    let response = get(api, path).await;
    assert_eq!(response.status, 200, "GET {path}: {response:?}");
    let mut samples = BTreeMap::new();
    let mut types = BTreeMap::new();
    for line in response.body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (key, rest) = match line.find('}') {
            Some(i) => (&line[..=i], &line[i + 1..]),
            None => line.split_once(' ').unwrap_or((line, "")),
        };
        let value = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{path}: sample line without a value: {line:?}"));
        samples.insert(key.to_owned(), value);
    }
    Scrape {
        content_type: response.header("content-type").unwrap_or("").to_owned(),
        text: response.body,
        samples,
        types,
    }
}

/// `/metrics` (OpenMetrics).
pub async fn scrape(api: SocketAddr) -> Scrape {
    scrape_format(api, Format::OpenMetrics).await
}

/// Scrapes until `ready` holds (bounded by `WAIT`); returns that scrape. Fails the test with
/// `what` and the last scrape otherwise.
pub async fn wait_until(api: SocketAddr, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = scrape(api).await;
        if ready(&s) {
            return s;
        }
        if Instant::now() >= deadline {
            panic!(
                "/metrics: {what} not seen within {WAIT:?}; last scrape:\n{}",
                s.text
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Waits until sample `key` equals `value`; returns how long that took.
pub async fn wait_for_value(api: SocketAddr, key: &str, value: f64) -> std::time::Duration {
    let started = Instant::now();
    wait_until(api, &format!("{key} == {value}"), |s| {
        s.try_get(key) == Some(value)
    })
    .await;
    started.elapsed()
}

/// The dispatcher's subscription index as `/metrics` reports it: (`stream_topics`,
/// `stream_dispatcher_subscriptions`): distinct keys, and subscriptions registered.
pub fn index(s: &Scrape) -> (f64, f64) {
    (
        s.get("stream_topics"),
        s.get("stream_dispatcher_subscriptions"),
    )
}

/// Waits until the dispatcher's index holds exactly `topics` keys and `subscriptions`
/// subscriptions (bounded by `WAIT`); `what` says why, for the failure message. With
/// `(0, 0)` this proves that whatever ended a subscription also removed it from the index,
/// not only from the per-type `stream_subscriptions` gauge.
pub async fn wait_for_index(api: SocketAddr, topics: usize, subscriptions: usize, what: &str) {
    let want = (topics as f64, subscriptions as f64);
    wait_until(
        api,
        &format!("{what}: (stream_topics, stream_dispatcher_subscriptions) == {want:?}"),
        |s| index(s) == want,
    )
    .await;
}
