//! The go-plugin handshake a Cosmos SDK v0.50 node expects from an ABCI listener plugin
//! (DESIGN.md section 9, byte-exact): the magic cookie in the environment, protocol
//! version 1, then exactly one first stdout line `1|1|tcp|127.0.0.1:<port>|grpc`.

use std::io::Write;
use std::net::SocketAddr;

/// The environment variable and value the host sets (cosmossdk.io/store/streaming/abci).
pub const MAGIC_COOKIE_KEY: &str = "ABCI_LISTENER_PLUGIN";
/// See [`MAGIC_COOKIE_KEY`].
pub const MAGIC_COOKIE_VALUE: &str = "ef78114d-7bdf-411c-868f-347c99a78345";
/// go-plugin's core protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The SDK's ABCI listener protocol version.
pub const APP_PROTOCOL_VERSION: u32 = 1;
/// The versions the host accepts, comma-separated (go-plugin).
pub const PROTOCOL_VERSIONS_VAR: &str = "PLUGIN_PROTOCOL_VERSIONS";

/// Why the plugin cannot serve this host; printed to stderr before exiting.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Not started by a host (or by one with another plugin type).
    #[error(
        "this is an ADR-038 streaming plugin for a Cosmos SDK node, not meant to be run \
         directly: the node starts it when app.toml has [streaming.abci] plugin = \"abci\" \
         and COSMOS_SDK_ABCI=\"streamd plugin --home <node home>\" (environment variable \
         {MAGIC_COOKIE_KEY} is missing or wrong)"
    )]
    NoCookie,
    /// The host speaks no protocol version we do.
    #[error(
        "the host offers plugin protocol version(s) {offered:?} ({PROTOCOL_VERSIONS_VAR}); \
         streamd plugin speaks version {APP_PROTOCOL_VERSION} (Cosmos SDK v0.50+ ABCI \
         listener): use a host and plugin of matching versions"
    )]
    Version {
        /// What the host offered.
        offered: String,
    },
}

/// Checks the environment the host started us with (`get` reads one variable).
pub fn check(get: impl Fn(&str) -> Option<String>) -> Result<(), HandshakeError> {
    if get(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(HandshakeError::NoCookie);
    }
    // A host that sends no list is a legacy go-plugin client: it takes our version.
    if let Some(offered) = get(PROTOCOL_VERSIONS_VAR).filter(|v| !v.trim().is_empty()) {
        let ours = APP_PROTOCOL_VERSION.to_string();
        if !offered.split(',').any(|v| v.trim() == ours) {
            return Err(HandshakeError::Version { offered });
        }
    }
    Ok(())
}

/// The handshake line for a plugin listening at `addr`, newline included.
pub fn line(addr: SocketAddr) -> String {
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|{addr}|grpc\n")
}

/// Writes the handshake line as the first bytes on stdout and flushes it.
pub fn announce(addr: SocketAddr) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line(addr).as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn line_is_byte_exact() {
        assert_eq!(
            line("127.0.0.1:40123".parse().unwrap()),
            "1|1|tcp|127.0.0.1:40123|grpc\n"
        );
    }

    #[test]
    fn cookie_and_version_are_checked() {
        let cookie = (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE);
        assert!(check(env(&[cookie])).is_ok());
        assert!(check(env(&[cookie, (PROTOCOL_VERSIONS_VAR, "1")])).is_ok());
        assert!(check(env(&[cookie, (PROTOCOL_VERSIONS_VAR, "2,1")])).is_ok());
        assert!(matches!(check(env(&[])), Err(HandshakeError::NoCookie)));
        assert!(matches!(
            check(env(&[(MAGIC_COOKIE_KEY, "other")])),
            Err(HandshakeError::NoCookie)
        ));
        let e = check(env(&[cookie, (PROTOCOL_VERSIONS_VAR, "2,3")])).unwrap_err();
        assert!(e.to_string().contains("\"2,3\""), "{e}");
    }
}
