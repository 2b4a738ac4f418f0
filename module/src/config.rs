//! The `[stream]` table of the node's `app.toml`, parsed once at startup into typed settings.

use crate::auth::AuthConfig;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// A bad `[stream]` setting; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[stream] in app.toml: {0}")]
pub struct ConfigError(pub String);

/// Blocks the commit hook can queue for the dispatcher; when full, blocks are dropped and the
/// dispatcher resynchronises from state (`stream_blocks_dropped`).
pub const DEFAULT_BLOCK_QUEUE: usize = 256;
/// Subscribe requests waiting for the dispatcher; when full, new subscribers wait.
pub const DEFAULT_SUBSCRIBE_QUEUE: usize = 1024;
/// Recent blocks kept for resume (`since_height`).
pub const DEFAULT_REPLAY_WINDOW: usize = 10_000;
/// Memory the replay window may hold, bytes (estimated from the decoded changes).
pub const DEFAULT_REPLAY_MEMORY: usize = 256 * 1024 * 1024;
/// Updates a resumed subscription may have waiting for its client; beyond that it ends with
/// "resume with since_height=H".
pub const DEFAULT_RESUME_QUEUE: usize = 1024;
/// New connections a client may open per minute (`connect_rate`), and at once (`connect_burst`).
pub const DEFAULT_CONNECT_RATE: &str = "120/min";
/// See [`DEFAULT_CONNECT_RATE`].
pub const DEFAULT_CONNECT_BURST: u32 = 60;
/// Blocks the dispatcher may be behind the node before `/health` answers 503.
pub const DEFAULT_HEALTH_MAX_LAG_BLOCKS: usize = 10;
/// Largest WebSocket message a client may send (control messages are small).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// `[stream]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// Serve the stream module at all (`enable`, default true).
    pub enable: bool,
    /// `block_queue`; see [`DEFAULT_BLOCK_QUEUE`].
    pub block_queue: usize,
    /// `subscribe_queue`; see [`DEFAULT_SUBSCRIBE_QUEUE`].
    pub subscribe_queue: usize,
    /// `replay_window` (blocks; 0 = no resume); see [`DEFAULT_REPLAY_WINDOW`].
    pub replay_window: usize,
    /// `replay_memory` (bytes); see [`DEFAULT_REPLAY_MEMORY`].
    pub replay_memory: usize,
    /// `resume_queue` (updates); see [`DEFAULT_RESUME_QUEUE`].
    pub resume_queue: usize,
    /// `health_max_lag_blocks`; see [`DEFAULT_HEALTH_MAX_LAG_BLOCKS`].
    pub health_max_lag_blocks: usize,
    /// `connect_rate` and `connect_burst`: new connections (WebSocket, SSE, gRPC streams) per
    /// client; `None` = unlimited (`connect_rate = "0"`).
    pub connect_rate: Option<ConnectRate>,
    /// WebSocket settings.
    pub websocket: WebSocketConfig,
    /// `[stream.auth]`: token auth, when on.
    pub auth: Option<AuthConfig>,
}

/// A per-client connect rate: `count` connections per `period`, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRate {
    /// Connections per period.
    pub count: u32,
    /// The period (a second, a minute or an hour).
    pub period: Duration,
    /// Connections a client may open at once after a quiet spell.
    pub burst: u32,
}

impl ConnectRate {
    /// Parses `"N/s"`, `"N/min"` or `"N/h"` (`"0"` = unlimited) with `burst`.
    pub fn parse(rate: &str, burst: u32) -> Result<Option<ConnectRate>, String> {
        let rate = rate.trim();
        if rate == "0" {
            return Ok(None);
        }
        let (count, unit) = rate.split_once('/').ok_or_else(|| {
            format!("{rate:?}: write a rate such as \"120/min\" (or \"0\" for none)")
        })?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|c| (1..=1_000_000).contains(c))
            .ok_or_else(|| format!("{rate:?}: the count must be an integer from 1 to 1000000"))?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(format!("{rate:?}: unknown unit {other:?}; use s, min or h")),
        };
        Ok(Some(ConnectRate {
            count,
            period,
            burst,
        }))
    }
}

/// WebSocket connection handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// `ping_interval` (default 30s): how often the server pings.
    pub ping_interval: Duration,
    /// `idle_timeout` (default 60s): a client from which nothing (not even a pong) arrived for
    /// this long is closed.
    pub idle_timeout: Duration,
    /// `write_timeout` (default 10s): a write that cannot complete in time closes the client.
    pub write_timeout: Duration,
    /// `max_message_size` (bytes, default 64 KiB): larger inbound messages close the client.
    pub max_message_size: usize,
    /// `allowed_origins` (default `["*"]`): browser `Origin`s allowed to connect; `*` allows any.
    /// Requests without an `Origin` header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,
    /// `trusted_proxies` (default none): peers (IPs or CIDRs) whose `X-Forwarded-For` names
    /// the client; from anyone else the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            allowed_origins: vec!["*".into()],
            trusted_proxies: Vec::new(),
        }
    }
}

impl WebSocketConfig {
    /// Whether a browser `Origin` may connect.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(o) => self
                .allowed_origins
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(o)),
        }
    }

    /// Whether `peer` is a trusted proxy.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(&peer))
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            enable: true,
            block_queue: DEFAULT_BLOCK_QUEUE,
            subscribe_queue: DEFAULT_SUBSCRIBE_QUEUE,
            replay_window: DEFAULT_REPLAY_WINDOW,
            replay_memory: DEFAULT_REPLAY_MEMORY,
            resume_queue: DEFAULT_RESUME_QUEUE,
            health_max_lag_blocks: DEFAULT_HEALTH_MAX_LAG_BLOCKS,
            connect_rate: ConnectRate::parse(DEFAULT_CONNECT_RATE, DEFAULT_CONNECT_BURST)
                .expect("the default parses"),
            websocket: WebSocketConfig::default(),
            auth: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    enable: Option<bool>,
    block_queue: Option<usize>,
    subscribe_queue: Option<usize>,
    replay_window: Option<usize>,
    replay_memory: Option<usize>,
    resume_queue: Option<usize>,
    health_max_lag_blocks: Option<usize>,
    connect_rate: Option<String>,
    connect_burst: Option<usize>,
    ping_interval: Option<String>,
    idle_timeout: Option<String>,
    write_timeout: Option<String>,
    max_message_size: Option<usize>,
    allowed_origins: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
    auth: Option<toml::Value>,
}

/// The range of every timing setting: long enough for a timer to be meaningful, short enough
/// that deadlines computed from it cannot overflow (and a day is already far beyond use).
const DURATION_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(24 * 60 * 60));

fn duration(key: &str, v: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    let d = humantime::parse_duration(&v).map_err(|e| {
        ConfigError(format!(
            "{key} = {v:?}: {e}; write a duration such as \"30s\""
        ))
    })?;
    let (min, max) = DURATION_RANGE;
    if d < min || d > max {
        return Err(ConfigError(format!(
            "{key} = {v:?} is out of range: write a duration from {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )));
    }
    Ok(d)
}

/// serde names unknown keys but not the key of a value of the wrong type: find it by
/// parsing the keys one at a time.
fn name_the_key(table: &toml::Table, e: toml::de::Error) -> String {
    for (key, value) in table {
        let one: toml::Table = [(key.clone(), value.clone())].into_iter().collect();
        if let Err(e) = toml::Value::Table(one).try_into::<Raw>() {
            return format!("{key}: {}", e.message().trim());
        }
    }
    e.message().trim().to_string()
}

/// Largest queue bound (`block_queue`, `subscribe_queue`, `resume_queue`): a queue holds
/// pointers, so a bigger bound only lets more memory pile up behind a stalled consumer; the
/// channel implementation itself refuses bounds near `usize::MAX >> 3`.
pub const MAX_QUEUE: usize = 1 << 20;
/// Largest `replay_window`, blocks.
pub const MAX_REPLAY_WINDOW: usize = 10_000_000;
/// Largest `replay_memory`, bytes (64 GiB).
pub const MAX_REPLAY_MEMORY: usize = 64 << 30;
/// Range of `max_message_size`, bytes: a `/ws` subscribe needs a few hundred bytes; anything
/// near the upper end only lets clients make the node buffer more.
pub const MESSAGE_SIZE_RANGE: (usize, usize) = (1024, 16 << 20);

/// An integer setting within `min..=max` (`default` when absent).
fn within(
    key: &str,
    v: Option<usize>,
    default: usize,
    (min, max): (usize, usize),
) -> Result<usize, ConfigError> {
    match v {
        None => Ok(default),
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(n) => Err(ConfigError(format!(
            "{key} = {n} is out of range: write a value from {min} to {max}"
        ))),
    }
}

fn positive(key: &str, v: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    within(key, v, default, (1, MAX_QUEUE))
}

impl StreamConfig {
    /// Parses and checks the `[stream]` table; relative paths (`[stream.auth]` key files) are
    /// taken from the working directory.
    pub fn from_table(table: &toml::Table) -> Result<StreamConfig, ConfigError> {
        StreamConfig::from_table_at(table, Path::new("."))
    }

    /// Parses and checks the `[stream]` table of the node whose home is `home`: relative paths
    /// (`[stream.auth]` key files) are resolved against it, as the Cosmos SDK resolves
    /// app.toml's paths.
    pub fn from_table_at(table: &toml::Table, home: &Path) -> Result<StreamConfig, ConfigError> {
        let raw: Raw = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(name_the_key(table, e)))?;
        let d = WebSocketConfig::default();
        let websocket = WebSocketConfig {
            ping_interval: duration("ping_interval", raw.ping_interval, d.ping_interval)?,
            idle_timeout: duration("idle_timeout", raw.idle_timeout, d.idle_timeout)?,
            write_timeout: duration("write_timeout", raw.write_timeout, d.write_timeout)?,
            max_message_size: within(
                "max_message_size",
                raw.max_message_size,
                d.max_message_size,
                MESSAGE_SIZE_RANGE,
            )?,
            allowed_origins: raw.allowed_origins.unwrap_or(d.allowed_origins),
            trusted_proxies: raw
                .trusted_proxies
                .unwrap_or_default()
                .iter()
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            ConfigError(format!(
                                "trusted_proxies: {s:?} is not an IP address or CIDR"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        if websocket.idle_timeout <= websocket.ping_interval {
            return Err(ConfigError(format!(
                "idle_timeout ({}) must be longer than ping_interval ({}), or clients are closed before they can answer a ping",
                humantime::format_duration(websocket.idle_timeout),
                humantime::format_duration(websocket.ping_interval)
            )));
        }
        Ok(StreamConfig {
            enable: raw.enable.unwrap_or(true),
            block_queue: positive("block_queue", raw.block_queue, DEFAULT_BLOCK_QUEUE)?,
            subscribe_queue: positive(
                "subscribe_queue",
                raw.subscribe_queue,
                DEFAULT_SUBSCRIBE_QUEUE,
            )?,
            replay_window: within(
                "replay_window",
                raw.replay_window,
                DEFAULT_REPLAY_WINDOW,
                (0, MAX_REPLAY_WINDOW),
            )?,
            replay_memory: within(
                "replay_memory",
                raw.replay_memory,
                DEFAULT_REPLAY_MEMORY,
                (0, MAX_REPLAY_MEMORY),
            )?,
            resume_queue: positive("resume_queue", raw.resume_queue, DEFAULT_RESUME_QUEUE)?,
            health_max_lag_blocks: positive(
                "health_max_lag_blocks",
                raw.health_max_lag_blocks,
                DEFAULT_HEALTH_MAX_LAG_BLOCKS,
            )?,
            connect_rate: ConnectRate::parse(
                raw.connect_rate.as_deref().unwrap_or(DEFAULT_CONNECT_RATE),
                within(
                    "connect_burst",
                    raw.connect_burst,
                    DEFAULT_CONNECT_BURST as usize,
                    (1, 1_000_000),
                )? as u32,
            )
            .map_err(|e| ConfigError(format!("connect_rate = {e}")))?,
            websocket,
            auth: raw
                .auth
                .map(|a| AuthConfig::from_value(&a, home))
                .transpose()?
                .flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<StreamConfig, ConfigError> {
        StreamConfig::from_table(&toml::from_str(s).unwrap())
    }

    #[test]
    fn connect_rates_parse_or_are_named() {
        let c = parse("connect_rate = \"10/s\"\nconnect_burst = 5").unwrap();
        assert_eq!(
            c.connect_rate,
            Some(ConnectRate {
                count: 10,
                period: Duration::from_secs(1),
                burst: 5
            })
        );
        assert_eq!(parse("connect_rate = \"0\"").unwrap().connect_rate, None);
        let default = parse("").unwrap().connect_rate.unwrap();
        assert_eq!(
            (default.count, default.period),
            (120, Duration::from_secs(60))
        );
        for (bad, says) in [
            ("connect_rate = \"fast\"", "write a rate such as"),
            ("connect_rate = \"10/day\"", "unknown unit \"day\""),
            ("connect_rate = \"-1/min\"", "integer from 1 to 1000000"),
            ("connect_burst = 0", "connect_burst = 0 is out of range"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_unknown_keys_and_bad_values() {
        assert_eq!(parse("").unwrap(), StreamConfig::default());
        let c =
            parse("enable = false\nblock_queue = 8\nping_interval = \"1s\"\nidle_timeout = \"3s\"")
                .unwrap();
        assert!(!c.enable);
        assert_eq!(c.block_queue, 8);
        assert_eq!(c.websocket.ping_interval, Duration::from_secs(1));
        assert!(
            parse("block_queu = 8")
                .unwrap_err()
                .to_string()
                .contains("block_queu")
        );
        assert!(
            parse("block_queue = 0")
                .unwrap_err()
                .to_string()
                .contains("block_queue")
        );
        assert!(parse("block_queue = \"x\"").is_err());
        let c = parse("replay_window = 0\nreplay_memory = 1024\nresume_queue = 4").unwrap();
        assert_eq!(
            (c.replay_window, c.replay_memory, c.resume_queue),
            (0, 1024, 4)
        );
        assert!(
            parse("resume_queue = 0")
                .unwrap_err()
                .to_string()
                .contains("resume_queue")
        );
        assert!(
            parse("replay_memory = \"256MiB\"")
                .unwrap_err()
                .to_string()
                .contains("replay_memory")
        );
        assert!(
            parse("ping_interval = \"soon\"")
                .unwrap_err()
                .to_string()
                .contains("ping_interval")
        );
        assert!(
            parse("ping_interval = \"60s\"")
                .unwrap_err()
                .to_string()
                .contains("idle_timeout")
        );
        assert!(
            parse("trusted_proxies = [\"nope\"]")
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }

    #[test]
    fn values_that_would_overflow_are_refused_naming_the_key() {
        for (line, key) in [
            ("block_queue = 2305843009213693952", "block_queue"), // 2^61
            ("subscribe_queue = 1048577", "subscribe_queue"),
            ("resume_queue = 9223372036854775807", "resume_queue"),
            ("replay_window = 10000001", "replay_window"),
            ("replay_memory = 68719476737", "replay_memory"),
            ("max_message_size = 1023", "max_message_size"),
            ("max_message_size = 16777217", "max_message_size"),
            ("ping_interval = \"400000000000y\"", "ping_interval"),
            ("idle_timeout = \"25h\"", "idle_timeout"),
            ("write_timeout = \"0s\"", "write_timeout"),
            ("write_timeout = \"1ms\"", "write_timeout"),
            ("block_queue = -1", "block_queue"),
            ("block_queue = \"big\"", "block_queue"),
            ("enable = 1", "enable"),
        ] {
            let e = parse(line).unwrap_err().to_string();
            assert!(
                e.contains(key) && e.starts_with("[stream] in app.toml"),
                "{line}: {e}"
            );
        }
        let c = parse("block_queue = 1048576\nmax_message_size = 1024\nping_interval = \"10ms\"\nidle_timeout = \"24h\"").unwrap();
        assert_eq!(c.block_queue, MAX_QUEUE);
        assert_eq!(c.websocket.idle_timeout, Duration::from_secs(86_400));
    }

    #[test]
    fn origins_and_proxies() {
        let c = parse("allowed_origins = [\"https://app.example\"]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.1\"]").unwrap();
        let ws = &c.websocket;
        assert!(ws.origin_allowed(None));
        assert!(ws.origin_allowed(Some("https://app.example")));
        assert!(!ws.origin_allowed(Some("https://evil.example")));
        assert!(ws.trusts("10.1.2.3".parse().unwrap()));
        assert!(ws.trusts("192.168.1.1".parse().unwrap()));
        assert!(!ws.trusts("192.168.1.2".parse().unwrap()));
        assert!(
            StreamConfig::default()
                .websocket
                .origin_allowed(Some("https://any.example"))
        );
    }
}
