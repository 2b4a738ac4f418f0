//! The `[stream]` table of the node's `app.toml`, parsed once at startup.

use serde::Deserialize;

/// A bad `[stream]` setting; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[stream] in app.toml: {0}")]
pub struct ConfigError(pub String);

/// Blocks the commit hook can queue for the dispatcher; when full, blocks are dropped and the
/// dispatcher resynchronises from state (`stream_blocks_dropped`).
pub const DEFAULT_BLOCK_QUEUE: usize = 256;
/// Subscribe requests waiting for the dispatcher; when full, new subscribers wait.
pub const DEFAULT_SUBSCRIBE_QUEUE: usize = 1024;

/// `[stream]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Serve the stream module at all.
    pub enable: bool,
    /// See [`DEFAULT_BLOCK_QUEUE`].
    pub block_queue: usize,
    /// See [`DEFAULT_SUBSCRIBE_QUEUE`].
    pub subscribe_queue: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            enable: true,
            block_queue: DEFAULT_BLOCK_QUEUE,
            subscribe_queue: DEFAULT_SUBSCRIBE_QUEUE,
        }
    }
}

impl StreamConfig {
    /// Parses and checks the `[stream]` table.
    pub fn from_table(table: &toml::Table) -> Result<StreamConfig, ConfigError> {
        let c: StreamConfig = toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(e.message().to_string()))?;
        if c.block_queue == 0 {
            return Err(ConfigError("block_queue must be at least 1".into()));
        }
        if c.subscribe_queue == 0 {
            return Err(ConfigError("subscribe_queue must be at least 1".into()));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_unknown_keys_and_bad_values() {
        assert_eq!(
            StreamConfig::from_table(&toml::Table::new()).unwrap(),
            StreamConfig::default()
        );
        let t: toml::Table = toml::from_str("enable = false\nblock_queue = 8").unwrap();
        let c = StreamConfig::from_table(&t).unwrap();
        assert!(!c.enable);
        assert_eq!(c.block_queue, 8);
        let t: toml::Table = toml::from_str("block_queu = 8").unwrap();
        assert!(
            StreamConfig::from_table(&t)
                .unwrap_err()
                .to_string()
                .contains("block_queu")
        );
        let t: toml::Table = toml::from_str("block_queue = 0").unwrap();
        assert!(StreamConfig::from_table(&t).is_err());
        let t: toml::Table = toml::from_str("block_queue = \"x\"").unwrap();
        assert!(StreamConfig::from_table(&t).is_err());
    }
}
