//! Latency samples, per-client delivery records and the Markdown table they become.

use std::time::Duration;

/// What one client saw during the measured window.
#[derive(Debug, Default)]
pub struct ClientRecord {
    /// Commit-to-receipt (or publish-to-receipt) latencies, microseconds; negative clock
    /// differences are clamped to 0.
    pub latencies_us: Vec<u64>,
    /// Messages received after the snapshot (ours) or after the run started (references).
    pub messages: u64,
    /// False when the client's final value was wrong, it received nothing after a change,
    /// or its heights (sequence numbers) did not strictly increase.
    pub complete: bool,
}

/// One system's measured figures: one row of the table.
#[derive(Debug)]
pub struct Row {
    /// "streamd", "raw", "NATS".
    pub system: String,
    /// Subscriptions (ours) or subscribed connections (references).
    pub n: usize,
    /// Latency percentiles and maximum, milliseconds: p50, p99, p99.9, max.
    pub latency_ms: [f64; 4],
    /// Messages delivered per second over the measured window.
    pub messages_per_s: f64,
    /// Server RSS with the subscriptions minus before them, per subscription, KiB.
    pub rss_per_sub_kib: f64,
    /// Server CPU time per delivered message, microseconds.
    pub cpu_per_msg_us: f64,
    /// Share of one core the server used during the window.
    pub cpu_share: f64,
    /// Clients that missed a value (see [`ClientRecord::complete`]).
    pub missed: usize,
    /// Mean size of the frames the clients received, bytes.
    pub frame_bytes: usize,
    /// The commit hook's p50 and p99 over the window, microseconds (streamd only).
    pub hook_us: Option<[f64; 2]>,
    /// RSS per subscription of each transport, KiB, measured as the transports' clients
    /// connected one after the other (streamd only).
    pub rss_by_transport: Vec<(&'static str, f64)>,
}

/// Builds a row from the clients' records and the server's usage over the window.
pub struct RowInput<'a> {
    pub system: &'a str,
    pub records: &'a [ClientRecord],
    pub window: Duration,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub cpu: Duration,
    pub frame_bytes: usize,
}

impl Row {
    /// Percentiles over every latency sample of every client.
    pub fn new(input: RowInput<'_>) -> Row {
        let mut all: Vec<u64> = input
            .records
            .iter()
            .flat_map(|r| r.latencies_us.iter().copied())
            .collect();
        all.sort_unstable();
        let pick = |q: f64| -> f64 {
            if all.is_empty() {
                return f64::NAN;
            }
            let i = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1;
            all[i] as f64 / 1000.0
        };
        let delivered: u64 = input.records.iter().map(|r| r.messages).sum();
        let n = input.records.len();
        Row {
            system: input.system.to_owned(),
            n,
            latency_ms: [pick(0.5), pick(0.99), pick(0.999), pick(1.0)],
            messages_per_s: delivered as f64 / input.window.as_secs_f64(),
            rss_per_sub_kib: input.rss_after_kib.saturating_sub(input.rss_before_kib) as f64
                / n.max(1) as f64,
            cpu_per_msg_us: input.cpu.as_secs_f64() * 1e6 / delivered.max(1) as f64,
            cpu_share: input.cpu.as_secs_f64() / input.window.as_secs_f64(),
            missed: input.records.iter().filter(|r| !r.complete).count(),
            frame_bytes: input.frame_bytes,
            hook_us: None,
            rss_by_transport: Vec::new(),
        }
    }

    /// The column-by-column median of several runs of one system (each figure on its own;
    /// `missed` is the worst run's).
    pub fn median(runs: &[Row]) -> Row {
        let first = &runs[0];
        let latency_ms = std::array::from_fn(|i| median(runs.iter().map(|r| r.latency_ms[i])));
        let hook_us = runs[0].hook_us.map(|_| {
            std::array::from_fn(|i| median(runs.iter().filter_map(|r| r.hook_us.map(|h| h[i]))))
        });
        Row {
            system: first.system.clone(),
            n: first.n,
            latency_ms,
            messages_per_s: median(runs.iter().map(|r| r.messages_per_s)),
            rss_per_sub_kib: median(runs.iter().map(|r| r.rss_per_sub_kib)),
            cpu_per_msg_us: median(runs.iter().map(|r| r.cpu_per_msg_us)),
            cpu_share: median(runs.iter().map(|r| r.cpu_share)),
            missed: runs.iter().map(|r| r.missed).max().unwrap_or(0),
            frame_bytes: median(runs.iter().map(|r| r.frame_bytes as f64)).round() as usize,
            hook_us,
            rss_by_transport: first
                .rss_by_transport
                .iter()
                .map(|(name, _)| {
                    let of_runs = runs.iter().filter_map(|r| {
                        r.rss_by_transport
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, v)| *v)
                    });
                    (*name, median(of_runs))
                })
                .collect(),
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The table's header lines.
pub fn header() -> String {
    "| system | N | p50 ms | p99 ms | p99.9 ms | max ms | msgs/s | RSS/sub KiB | CPU/msg us | CPU % core | hook p50/p99 us | frame B | missed |\n\
     |---|---|---|---|---|---|---|---|---|---|---|---|---|"
        .to_owned()
}

/// One Markdown row.
pub fn row(r: &Row) -> String {
    let [p50, p99, p999, max] = r.latency_ms;
    format!(
        "| {} | {} | {p50:.1} | {p99:.1} | {p999:.1} | {max:.1} | {:.0} | {:.1} | {:.1} | {:.0}% | {} | {} | {} |",
        r.system,
        r.n,
        r.messages_per_s,
        r.rss_per_sub_kib,
        r.cpu_per_msg_us,
        r.cpu_share * 100.0,
        r.hook_us
            .map_or("-".to_owned(), |[p50, p99]| format!("{p50:.1} / {p99:.1}")),
        r.frame_bytes,
        r.missed
    )
}

/// A ratio row `ours / reference` (latency, msgs/s, RSS, CPU/msg).
pub fn ratio(ours: &Row, reference: &Row) -> String {
    let q = |a: f64, b: f64| {
        if b > 0.0 && a.is_finite() && b.is_finite() {
            format!("{:.2}x", a / b)
        } else {
            "-".to_owned()
        }
    };
    format!(
        "| {} / {} | | {} | {} | {} | {} | {} | {} | {} | {} | | | |",
        ours.system,
        reference.system,
        q(ours.latency_ms[0], reference.latency_ms[0]),
        q(ours.latency_ms[1], reference.latency_ms[1]),
        q(ours.latency_ms[2], reference.latency_ms[2]),
        q(ours.latency_ms[3], reference.latency_ms[3]),
        q(ours.messages_per_s, reference.messages_per_s),
        q(ours.rss_per_sub_kib, reference.rss_per_sub_kib),
        q(ours.cpu_per_msg_us, reference.cpu_per_msg_us),
        q(ours.cpu_share, reference.cpu_share),
    )
}

/// Microseconds from `sent` to `received` (both since the Unix epoch, nanoseconds), 0 when
/// the clock went backwards.
pub fn latency_us(sent_ns: u128, received_ns: u128) -> u64 {
    (received_ns.saturating_sub(sent_ns) / 1000) as u64
}

/// Now, nanoseconds since the Unix epoch (the clock the node stamps block times with).
pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
