//! Token auth for the client libraries' end-to-end tests: a node whose `[stream.auth]`
//! verifies HS256 tokens with no leeway, and short-lived tokens signed here (the TypeScript
//! follow script signs its own with the same secret).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value as Json, json};

use crate::support::TestNodeOptions;

/// The shared HS256 secret (at least 32 bytes).
pub const SECRET: &str = "a client test secret of at least thirty-two bytes";

/// How long a token lives: `exp` = now + this, verified with `leeway = "0s"`, so a stream
/// ends 2 to 3 s after its token was minted (`exp` is whole seconds).
pub const TOKEN_SECS: u64 = 3;

/// `options` plus `[stream.auth]` with HS256, the secret in a file under `dir`, no leeway;
/// no per-client subscription limit (each consumer is one `sub` anyway).
pub fn with_auth(options: TestNodeOptions, dir: &Path) -> TestNodeOptions {
    let secret = dir.join("stream-jwt.key");
    std::fs::write(&secret, SECRET).expect("write the secret");
    let mut auth = toml::Table::new();
    auth.insert("algorithm".into(), "HS256".into());
    auth.insert("secret_file".into(), secret.display().to_string().into());
    auth.insert("leeway".into(), "0s".into());
    options.stream("auth", auth)
}

/// A token for `sub` that expires in [`TOKEN_SECS`], with `extra` claims merged in (e.g. a
/// `stream` claim).
pub fn mint(sub: &str, extra: &Json) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut claims = json!({"sub": sub, "exp": now + TOKEN_SECS});
    if let Some(extra) = extra.as_object() {
        claims
            .as_object_mut()
            .expect("object")
            .extend(extra.clone());
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).expect("an HS256 key"),
    )
    .expect("sign")
}
