//! Token auth, off by default: `[stream.auth]` in app.toml. With it on, every stream (gRPC,
//! WebSocket, `/ws`, SSE) needs a JWT, verified with `jsonwebtoken` (HS256 with a secret
//! file, RS256 or EdDSA with a PEM public key file; `exp` required, `exp` and `nbf`
//! enforced, `aud` and `iss` when configured). The token's `sub` is the client for
//! `max_subscriptions_per_client` and `connect_rate`; an optional `stream` claim narrows what it
//! may open (`{"types": ["bank/balances"], "addresses": ["juno1..."]}`); its streams end when
//! it expires.

use crate::chain::Chain;
use crate::config::ConfigError;
use crate::edge::StreamType;
use crate::key::SubscriptionKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use stream_abci_listener::Address;

/// Default `leeway`: clock skew allowed between the token's issuer and the node.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// A checked `[stream.auth]` table, with its key file read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// `algorithm`: HS256, RS256 or EdDSA.
    pub algorithm: Algorithm,
    /// `secret_file` (HS256) or `public_key_file` (RS256, EdDSA), resolved against the node's
    /// home.
    pub key_file: PathBuf,
    /// The key file's bytes.
    key: Vec<u8>,
    /// `audience`: when set, tokens must name it in `aud` (without it, a token carrying an
    /// `aud` is refused, as RFC 7519 requires of a recipient that is not named).
    pub audience: Option<String>,
    /// `issuer`: when set, tokens must carry it as `iss`.
    pub issuer: Option<String>,
    /// `leeway`: clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    enable: Option<bool>,
    algorithm: Option<String>,
    secret_file: Option<PathBuf>,
    public_key_file: Option<PathBuf>,
    audience: Option<String>,
    issuer: Option<String>,
    leeway: Option<String>,
}

fn bad(m: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("auth.{m}"))
}

impl AuthConfig {
    /// Parses `[stream.auth]` (`None` when absent or `enable = false`); relative key paths are
    /// resolved against `home`, and the key is read and checked now.
    pub fn from_value(value: &toml::Value, home: &Path) -> Result<Option<AuthConfig>, ConfigError> {
        let raw: Raw = value
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().trim()))?;
        if !raw.enable.unwrap_or(true) {
            return Ok(None);
        }
        let algorithm = match raw.algorithm.as_deref() {
            Some("HS256") => Algorithm::HS256,
            Some("RS256") => Algorithm::RS256,
            Some("EdDSA") => Algorithm::EdDSA,
            Some(other) => {
                return Err(bad(format_args!(
                    "algorithm = {other:?} is not supported; use \"HS256\", \"RS256\" or \"EdDSA\""
                )));
            }
            None => {
                return Err(bad(
                    "algorithm is missing; use \"HS256\", \"RS256\" or \"EdDSA\"",
                ));
            }
        };
        let (key_name, key_file, other) = match algorithm {
            Algorithm::HS256 => (
                "secret_file",
                raw.secret_file,
                raw.public_key_file.map(|_| "public_key_file"),
            ),
            _ => (
                "public_key_file",
                raw.public_key_file,
                raw.secret_file.map(|_| "secret_file"),
            ),
        };
        if let Some(other) = other {
            return Err(bad(format_args!(
                "{other} does not go with algorithm {algorithm:?}; give {key_name}"
            )));
        }
        let key_file = home.join(key_file.ok_or_else(|| {
            bad(format_args!(
                "{key_name} is missing (algorithm {algorithm:?})"
            ))
        })?);
        let key = std::fs::read(&key_file)
            .map_err(|e| bad(format_args!("{key_name} {}: {e}", key_file.display())))?;
        let leeway = match raw.leeway {
            None => DEFAULT_LEEWAY,
            Some(v) => humantime::parse_duration(&v)
                .ok()
                .filter(|d| *d <= Duration::from_secs(3600))
                .ok_or_else(|| {
                    bad(format_args!(
                        "leeway = {v:?}: write a duration from 0s to 1h, such as \"5s\""
                    ))
                })?,
        };
        let config = AuthConfig {
            algorithm,
            key_file,
            key,
            audience: raw.audience,
            issuer: raw.issuer,
            leeway,
        };
        Auth::new(&config)?;
        Ok(Some(config))
    }
}

/// The verifier.
pub(crate) struct Auth {
    key: DecodingKey,
    validation: Validation,
}

impl Auth {
    /// The verifier of `config`; refuses a key that does not suit its algorithm.
    pub fn new(config: &AuthConfig) -> Result<Auth, ConfigError> {
        let file = config.key_file.display();
        let key = match config.algorithm {
            Algorithm::HS256 => {
                // A secret written with `echo` ends with a newline nobody means as key material.
                let secret = config.key.trim_ascii_end();
                if secret.len() < 32 {
                    return Err(bad(format_args!(
                        "secret_file {file}: the HS256 secret has {} bytes; use at least 32 (RFC 7518 3.2)",
                        secret.len()
                    )));
                }
                DecodingKey::from_secret(secret)
            }
            Algorithm::RS256 => DecodingKey::from_rsa_pem(&config.key),
            _ => DecodingKey::from_ed_pem(&config.key),
        }
        .map_err(|e| {
            bad(format_args!(
                "public_key_file {file}: not a {:?} public key in PEM: {e}",
                config.algorithm
            ))
        })?;
        let mut validation = Validation::new(config.algorithm);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(aud) = &config.audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        if let Some(iss) = &config.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Ok(Auth { key, validation })
    }

    /// Verifies `token`; what it allows.
    pub fn verify(&self, token: Option<&str>, chain: &Chain) -> Result<Grant, AuthError> {
        let token = token.ok_or(AuthError::Missing)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| token_error(e.kind()))?;
        let claims = data.claims;
        let (sub, exp) = (
            claims.sub.unwrap_or_default(),
            claims.exp.unwrap_or_default(),
        );
        if sub.is_empty() || sub.len() > MAX_SUBJECT {
            return Err(AuthError::Invalid(format!(
                "sub must name the client in 1 to {MAX_SUBJECT} bytes"
            )));
        }
        let scope = claims.stream.unwrap_or_default();
        let types = scope
            .types
            .map(|types| {
                types
                    .iter()
                    .map(|t| {
                        StreamType::named(t).map_err(|_| {
                            AuthError::Invalid(format!(
                                "claim stream.types names {t:?}, not a stream; streams: {}",
                                StreamType::names()
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let addresses = scope
            .addresses
            .map(|addresses| {
                addresses
                    .iter()
                    .map(|a| {
                        chain
                            .account("stream.addresses", a)
                            .map_err(|e| AuthError::Invalid(format!("claim {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let grant = Grant {
            subject: sub.into(),
            // A token may claim any `exp` up to u64::MAX seconds; no clock reaches that far.
            expires: UNIX_EPOCH
                .checked_add(Duration::from_secs(
                    exp.saturating_add(self.validation.leeway),
                ))
                .unwrap_or(SystemTime::now() + FAR_FUTURE),
            types,
            addresses,
        };
        // `jsonwebtoken` compares whole seconds: a token is still valid in the second its
        // `exp` falls in, although its streams would end at once.
        if grant.expires <= SystemTime::now() {
            return Err(AuthError::Expired);
        }
        Ok(grant)
    }
}

/// Later than any stream lives: the deadline of a token whose `exp` is further away (a
/// monotonic clock cannot represent `exp = u64::MAX`).
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Longest `sub` (it becomes a key of the node's per-client counters).
const MAX_SUBJECT: usize = 256;

/// The claims read here (`Option`s so that a missing one is reported by the validation, which
/// names it).
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<u64>,
    #[serde(default)]
    stream: Option<Scope>,
}

/// The `stream` claim: which stream types and which accounts (`address` / `delegator`) a token
/// may open; an absent list allows all.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Scope {
    types: Option<Vec<String>>,
    addresses: Option<Vec<String>>,
}

fn token_error(kind: &ErrorKind) -> AuthError {
    AuthError::Invalid(match kind {
        ErrorKind::ExpiredSignature => return AuthError::Expired,
        ErrorKind::ImmatureSignature => "not valid yet (nbf is in the future)".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        ErrorKind::InvalidAlgorithm => "signed with another algorithm than the node's".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("the {c} claim is missing"),
        ErrorKind::InvalidClaimFormat(c) => format!("the {c} claim is malformed"),
        ErrorKind::Json(e) => format!("malformed claims: {e}"),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            "malformed: expected a JWT (three base64url parts separated by dots)".into()
        }
        other => format!("{other:?}"),
    })
}

/// What a verified token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// `sub`.
    pub subject: Arc<str>,
    /// `exp` (plus the leeway).
    expires: SystemTime,
    /// Stream types it may open; `None`: all.
    types: Option<Vec<StreamType>>,
    /// Accounts it may follow; `None`: all.
    addresses: Option<Vec<Address>>,
}

impl Grant {
    /// Whether the token allows `key`.
    pub fn allows(&self, key: &SubscriptionKey, chain: &Chain) -> Result<(), AuthError> {
        let stream = StreamType::of(key);
        if let Some(types) = &self.types
            && !types.contains(&stream)
        {
            return Err(AuthError::Forbidden(format!(
                "the token allows {}, not {}",
                types
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                stream.name()
            )));
        }
        if let Some(addresses) = &self.addresses {
            let account = key.account();
            if !addresses.contains(account) {
                return Err(AuthError::Forbidden(format!(
                    "the token does not allow following {}",
                    chain.account_string(account)
                )));
            }
        }
        Ok(())
    }

    /// When its streams end (at most [`FAR_FUTURE`] from now).
    pub fn deadline(&self) -> tokio::time::Instant {
        let left = self
            .expires
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::time::Instant::now() + left.min(FAR_FUTURE)
    }
}

/// A refused token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token with auth on.
    #[error(
        "this node requires a token: send `Authorization: Bearer <JWT>` (gRPC metadata authorization) or ?token=<JWT>"
    )]
    Missing,
    /// Not a valid token for this node.
    #[error("token rejected: {0}")]
    Invalid(String),
    /// `exp` has passed.
    #[error("token expired; get a new one")]
    Expired,
    /// Valid, but it does not allow this stream.
    #[error("permission denied: {0}")]
    Forbidden(String),
}

impl AuthError {
    /// `stream_connection_rejected` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Invalid(_) => "token_invalid",
            AuthError::Expired => "token_expired",
            AuthError::Forbidden(_) => "permission_denied",
        }
    }

    /// The `WWW-Authenticate` header of an HTTP refusal (RFC 6750 3).
    pub fn www_authenticate(&self) -> String {
        let error = match self {
            AuthError::Missing => return "Bearer realm=\"stream\"".into(),
            AuthError::Invalid(_) | AuthError::Expired => "invalid_token",
            AuthError::Forbidden(_) => "insufficient_scope",
        };
        let description: String = self
            .to_string()
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || !c.is_ascii() {
                    '\''
                } else {
                    c
                }
            })
            .collect();
        format!("Bearer realm=\"stream\", error=\"{error}\", error_description=\"{description}\"")
    }
}

/// The bearer token of a request: `Authorization: Bearer <t>` or `?token=<t>`, not both.
pub(crate) fn bearer<'a>(
    authorization: Option<&'a [u8]>,
    query: Option<&'a str>,
) -> Result<Option<&'a str>, AuthError> {
    let header = authorization
        .map(|v| {
            let v = std::str::from_utf8(v).ok().map(str::trim);
            v.and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                AuthError::Invalid("the Authorization header must be `Bearer <JWT>`".into())
            })
        })
        .transpose()?;
    match (header, query) {
        (Some(_), Some(_)) => Err(AuthError::Invalid(
            "give the token once: the Authorization header or ?token=, not both".into(),
        )),
        (h, q) => Ok(h.or(q)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn config(dir: &Path, extra: &str) -> Result<Option<AuthConfig>, ConfigError> {
        std::fs::write(dir.join("secret"), [SECRET, b"\n"].concat()).unwrap();
        let table: toml::Value = toml::from_str(&format!(
            "algorithm = \"HS256\"\nsecret_file = \"secret\"\n{extra}"
        ))
        .unwrap();
        AuthConfig::from_value(&table, dir)
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap()
    }

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stream-auth-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn tokens_are_verified_and_refused_with_reasons() {
        let dir = tmp();
        let auth = Auth::new(&config(&dir, "audience = \"stream\"").unwrap().unwrap()).unwrap();
        let chain = crate::fuzzing::chain();
        let ok = token(json!({"sub": "alice", "exp": now() + 60, "aud": "stream"}));
        let grant = auth.verify(Some(&ok), &chain).unwrap();
        assert_eq!(&*grant.subject, "alice");
        assert!(grant.deadline() > tokio::time::Instant::now());
        for (claims, says) in [
            (
                json!({"sub": "a", "exp": now() - 60, "aud": "stream"}),
                "token expired",
            ),
            (
                json!({"sub": "a", "exp": now() + 60, "aud": "other"}),
                "wrong audience",
            ),
            (
                json!({"sub": "a", "exp": now() + 60}),
                "the aud claim is missing",
            ),
            (
                json!({"exp": now() + 60, "aud": "stream"}),
                "the sub claim is missing",
            ),
            (
                json!({"sub": "a", "aud": "stream"}),
                "the exp claim is missing",
            ),
            (
                json!({"sub": "a", "exp": now() + 60, "nbf": now() + 60, "aud": "stream"}),
                "not valid yet",
            ),
            (
                json!({"sub": "a", "exp": now() + 60, "aud": "stream", "stream": {"types": ["bank/nope"]}}),
                "claim stream.types names \"bank/nope\"",
            ),
        ] {
            let e = auth
                .verify(Some(&token(claims.clone())), &chain)
                .unwrap_err();
            assert!(e.to_string().contains(says), "{claims}: {e}");
        }
        // The largest `exp` a token can carry neither overflows nor ends the stream.
        let forever = token(json!({"sub": "a", "exp": u64::MAX, "aud": "stream"}));
        let grant = auth.verify(Some(&forever), &chain).unwrap();
        assert!(grant.deadline() > tokio::time::Instant::now() + Duration::from_secs(1 << 30));
        let forged = encode(
            &Header::default(),
            &json!({"sub": "a", "exp": now() + 60, "aud": "stream"}),
            &EncodingKey::from_secret(b"another secret of at least 32 bytes!").unwrap(),
        )
        .unwrap();
        assert_eq!(
            auth.verify(Some(&forged), &chain),
            Err(AuthError::Invalid("bad signature".into()))
        );
        assert!(matches!(
            auth.verify(Some("not-a-jwt"), &chain),
            Err(AuthError::Invalid(m)) if m.starts_with("malformed")
        ));
        assert_eq!(auth.verify(None, &chain), Err(AuthError::Missing));
    }

    #[test]
    fn configs_name_what_is_wrong() {
        let dir = tmp();
        assert_eq!(config(&dir, "enable = false").unwrap(), None);
        for (extra, says) in [
            ("leeway = \"2h\"", "leeway"),
            (
                "public_key_file = \"x.pem\"",
                "public_key_file does not go with",
            ),
            ("audiences = \"x\"", "unknown field `audiences`"),
        ] {
            let e = config(&dir, extra).unwrap_err().to_string();
            assert!(e.contains(says), "{extra}: {e}");
        }
        std::fs::write(dir.join("short"), "short").unwrap();
        let short: toml::Value =
            toml::from_str("algorithm = \"HS256\"\nsecret_file = \"short\"").unwrap();
        let e = AuthConfig::from_value(&short, &dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 32"), "{e}");
        let rsa: toml::Value =
            toml::from_str("algorithm = \"RS256\"\npublic_key_file = \"short\"").unwrap();
        let e = AuthConfig::from_value(&rsa, &dir).unwrap_err().to_string();
        assert!(e.contains("not a RS256 public key in PEM"), "{e}");
        let missing: toml::Value =
            toml::from_str("algorithm = \"EdDSA\"\npublic_key_file = \"nope.pem\"").unwrap();
        let e = AuthConfig::from_value(&missing, &dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.pem"), "{e}");
    }

    #[test]
    fn bearer_comes_from_the_header_or_the_query_once() {
        assert_eq!(bearer(Some(b"Bearer abc"), None), Ok(Some("abc")));
        assert_eq!(bearer(Some(b"bearer  abc "), None), Ok(Some("abc")));
        assert_eq!(bearer(None, Some("q")), Ok(Some("q")));
        assert_eq!(bearer(None, None), Ok(None));
        assert!(bearer(Some(b"Basic abc"), None).is_err());
        assert!(bearer(Some(b"Bearer a"), Some("b")).is_err());
    }
}
