//! The node's own figures, read from its Prometheus endpoint (`GET /metrics` on the API
//! port): the commit hook's histogram (`stream_commit_hook_seconds`) and the open
//! connections gauge (`stream_connections`).

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// The metrics text of the node whose API port is `api`.
pub async fn metrics(api: SocketAddr) -> Result<String> {
    let tcp = tokio::net::TcpStream::connect(api)
        .await
        .with_context(|| format!("connect to {api} for /metrics"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .context("HTTP handshake for /metrics")?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/metrics")
        .header(hyper::header::HOST, api.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!(
            "GET /metrics answered {} (is [telemetry] enabled?)",
            response.status()
        );
    }
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec())?)
}

/// A histogram's cumulative buckets: (upper bound, count), in the text's (ascending) order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets(Vec<(f64, u64)>);

impl Buckets {
    /// The buckets of histogram `name` in `text`.
    pub fn of(text: &str, name: &str) -> Buckets {
        let prefix = format!("{name}_bucket{{le=\"");
        Buckets(
            text.lines()
                .filter_map(|line| {
                    let rest = line.strip_prefix(&prefix)?;
                    let (le, count) = rest.split_once("\"}")?;
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().ok()?
                    };
                    Some((le, count.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    /// Observations made between `earlier` and `self`.
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|&(le, n)| {
                    let before = earlier
                        .0
                        .iter()
                        .find(|(l, _)| *l == le)
                        .map_or(0, |(_, n)| *n);
                    (le, n.saturating_sub(before))
                })
                .collect(),
        )
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.0.last().map_or(0, |(_, n)| *n)
    }

    /// The `q` quantile, interpolated linearly inside its bucket as Prometheus's
    /// `histogram_quantile` does; `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let (mut lower, mut below) = (0.0, 0u64);
        for &(le, n) in &self.0 {
            if n as f64 >= rank {
                if le.is_infinite() {
                    return Some(lower);
                }
                let inside = (n - below) as f64;
                let share = if inside > 0.0 {
                    (rank - below as f64) / inside
                } else {
                    1.0
                };
                return Some(lower + (le - lower) * share);
            }
            (lower, below) = (le, n);
        }
        Some(lower)
    }
}

/// The value of the unlabelled gauge `name` in `text`.
pub fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE stream_commit_hook_seconds histogram\n\
        stream_commit_hook_seconds_sum 0.0001\n\
        stream_commit_hook_seconds_count 10\n\
        stream_commit_hook_seconds_bucket{le=\"1e-6\"} 0\n\
        stream_commit_hook_seconds_bucket{le=\"2e-6\"} 5\n\
        stream_commit_hook_seconds_bucket{le=\"5e-6\"} 9\n\
        stream_commit_hook_seconds_bucket{le=\"+Inf\"} 10\n\
        # TYPE stream_connections gauge\n\
        stream_connections 1000\n";

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let b = Buckets::of(TEXT, "stream_commit_hook_seconds");
        assert_eq!(b.count(), 10);
        assert_eq!(b.quantile(0.5), Some(2e-6));
        let p = b.quantile(0.7).unwrap();
        assert!((p - 3.5e-6).abs() < 1e-12, "{p}");
        // Beyond the last finite bound: that bound.
        assert_eq!(b.quantile(0.99), Some(5e-6));
        assert_eq!(b.since(&b).quantile(0.5), None);
        assert_eq!(gauge(TEXT, "stream_connections"), Some(1000.0));
    }
}
