//! Tokens for nodes with token auth (`[stream.auth]`): where a subscription gets the JWT it
//! presents each time it connects.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

/// Why a [`TokenProvider`] could not supply a token.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

/// Supplies the JWT a subscription presents to a node with token auth.
///
/// Called before **every** attempt (the first connect and each reconnect), never cached by
/// the client: when the node ends a stream because its token expired, the reconnect asks
/// for a token again, so a provider that mints or refreshes short-lived tokens keeps the
/// subscription going without a gap. An error fails that attempt like a refused
/// connection (backoff, then the next attempt asks again).
///
/// Implemented for closures returning a future:
///
/// ```no_run
/// # use stream_client::ClientConfig;
/// # async fn fetch_token_from_my_auth_server() -> Result<String, std::io::Error> { todo!() }
/// let config = ClientConfig::new(["http://127.0.0.1:9090"])
///     .token_provider(|| async { fetch_token_from_my_auth_server().await });
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// A token for the next attempt (the JWT alone, without `Bearer `).
    fn token(&self) -> BoxFuture<'static, Result<String, TokenError>>;
}

impl<F, Fut, E> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: Into<TokenError>,
{
    fn token(&self) -> BoxFuture<'static, Result<String, TokenError>> {
        self().map(|r| r.map_err(Into::into)).boxed()
    }
}

/// One token for the life of the client ([`crate::ClientConfig::token`]).
struct Fixed(String);

impl TokenProvider for Fixed {
    fn token(&self) -> BoxFuture<'static, Result<String, TokenError>> {
        futures_util::future::ready(Ok(self.0.clone())).boxed()
    }
}

/// The token provider of a [`crate::ClientConfig`]. Its `Debug` never shows a token.
#[derive(Clone)]
pub struct TokenSource(Arc<dyn TokenProvider>);

impl TokenSource {
    /// A source asking `provider` at every attempt.
    pub fn provider(provider: impl TokenProvider) -> TokenSource {
        TokenSource(Arc::new(provider))
    }

    /// A source that always presents `token`.
    pub fn fixed(token: impl Into<String>) -> TokenSource {
        TokenSource(Arc::new(Fixed(token.into())))
    }

    /// Asks the provider for a token.
    pub(crate) async fn fetch(&self) -> Result<String, TokenError> {
        self.0.token().await
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSource(..)")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_provider_is_asked_at_every_fetch_and_a_fixed_token_never_changes() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let source = TokenSource::provider(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok::<_, String>(format!("token-{n}")) }
        });
        assert_eq!(source.fetch().await.unwrap(), "token-1");
        assert_eq!(source.fetch().await.unwrap(), "token-2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let fixed = TokenSource::fixed("jwt");
        assert_eq!(fixed.fetch().await.unwrap(), "jwt");
        assert_eq!(fixed.fetch().await.unwrap(), "jwt");
        assert_eq!(format!("{fixed:?}"), "TokenSource(..)", "no token in logs");

        let failing = TokenSource::provider(|| async { Err::<String, _>("auth server down") });
        assert_eq!(
            failing.fetch().await.unwrap_err().to_string(),
            "auth server down"
        );
    }
}
