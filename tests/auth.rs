//! End-to-end: token auth (`[stream.auth]` in app.toml) on every transport of a real node.
//! Tokens are signed here (`jsonwebtoken`) and sent as the README says: gRPC metadata
//! `authorization: Bearer`, `?token=` on WebSocket and SSE URLs, or an `Authorization` header.
//! Proven: a valid token opens gRPC, WebSocket path, `/ws` and SSE streams; none, expired,
//! not yet valid, wrong signature, wrong audience, another algorithm and malformed tokens get
//! 401 / `UNAUTHENTICATED` with a message saying which; a `stream` claim narrowing types or
//! addresses gets 403 / `PERMISSION_DENIED`; `max_subscriptions_per_client` counts each
//! token's `sub`, so two tokens from one IP each get the full share; refusals are counted by
//! reason; a stream whose token expires ends with `UNAUTHENTICATED`, close code 4001 or an SSE
//! `error` event with code 401; RS256 and EdDSA public keys verify their tokens.

mod support;
mod ws_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value as Json, json};
use stream_proto::juno::stream::v1::query_client::QueryClient;
use stream_proto::juno::stream::v1::{StreamAllBalancesRequest, StreamBalanceRequest};
use support::accounts::{BOND_DENOM, address};
use support::tools::CurlN;
use support::{TestNode, TestNodeOptions};
use ws_support::client::WsClient;
use ws_support::http::get_from;
use ws_support::loopback;
use ws_support::metrics::scrape;

const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";
const AUDIENCE: &str = "stream-test";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/auth")
        .join(name)
}

/// An HS256 token with `claims`.
fn hs256(claims: Json) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}

/// A valid HS256 token for `sub` (one hour), with `extra` claims merged in.
fn token(sub: &str, extra: Json) -> String {
    let mut claims = json!({"sub": sub, "exp": now() + 3600, "aud": AUDIENCE});
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    hs256(claims)
}

/// A node whose `[stream.auth]` verifies HS256 tokens for `AUDIENCE` (secret in a file the
/// test writes; leeway `leeway`), with `max_subscriptions_per_client = 2`.
async fn hs256_node(dir: &Path, leeway: &str) -> TestNode {
    let secret = dir.join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let mut auth = toml::Table::new();
    auth.insert("algorithm".into(), "HS256".into());
    auth.insert("secret_file".into(), secret.display().to_string().into());
    auth.insert("audience".into(), AUDIENCE.into());
    auth.insert("leeway".into(), leeway.into());
    TestNode::start(
        TestNodeOptions::default()
            .rpc("max_subscriptions_per_client", 2)
            .stream("auth", auth),
    )
    .await
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// `StreamAllBalances` of `account` with `authorization` metadata (if any), from `from`.
async fn grpc_balances(
    node: &TestNode,
    from: u8,
    account: &str,
    authorization: Option<&str>,
) -> Result<
    tonic::Streaming<stream_proto::juno::stream::v1::StreamAllBalancesResponse>,
    tonic::Status,
> {
    let mut request = tonic::Request::new(StreamAllBalancesRequest {
        address: account.to_owned(),
        since_height: 0,
    });
    if let Some(a) = authorization {
        request
            .metadata_mut()
            .insert("authorization", a.parse().unwrap());
    }
    let mut stream = QueryClient::new(node.channel_from(from))
        .stream_all_balances(request)
        .await?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an answer within 30 s")?;
    assert!(first.is_some(), "the stream ended before its snapshot");
    Ok(stream)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `curl -N -s` of an SSE URL with `headers`, its output lines as they come.
struct Sse(CurlN);

impl Sse {
    fn follow(url: &str, headers: &[String]) -> Sse {
        Sse(CurlN::follow(url, headers))
    }

    /// The first line starting with `prefix`, within `within`.
    async fn line_starting(&mut self, prefix: &str, within: Duration) -> String {
        let read = async {
            while let Some(line) = self.0.next_line().await {
                if line.starts_with(prefix) {
                    return line;
                }
            }
            panic!("the SSE stream ended before a line starting with {prefix:?}")
        };
        tokio::time::timeout(within, read)
            .await
            .unwrap_or_else(|_| panic!("no line starting with {prefix:?} within {within:?}"))
    }
}

#[tokio::test]
async fn tokens_are_checked_on_every_transport_and_sub_is_the_client() {
    let dir = tempdir();
    let node = hs256_node(dir.path(), "0s").await;
    let (api, alice, bob) = (node.api_addr(), address("alice"), address("bob"));
    let balances = |who: &str| format!("/ws/subscribe/bank/balances/{who}");
    let sse = |who: &str, q: &str| format!("/sse/subscribe/bank/balances/{who}{q}");

    // No token: 401 / UNAUTHENTICATED everywhere, saying how to send one.
    let status = grpc_balances(&node, 1, &alice, None).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("requires a token"), "{status:?}");
    let refused = WsClient::refused(api, &balances(&alice), loopback(1)).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(
        refused.error().contains("Authorization: Bearer"),
        "{refused:?}"
    );
    assert_eq!(WsClient::refused(api, "/ws", loopback(1)).await.status, 401);
    let plain = get_from(api, &sse(&alice, ""), loopback(1)).await;
    assert_eq!(plain.status, 401, "{plain:?}");
    assert_eq!(
        plain.header("www-authenticate"),
        Some("Bearer realm=\"stream\"")
    );

    // Bad tokens: 401, the message says what is wrong.
    let expired = hs256(json!({"sub": "a", "exp": now() - 10, "aud": AUDIENCE}));
    let early = token("a", json!({"nbf": now() + 600}));
    let wrong_aud = hs256(json!({"sub": "a", "exp": now() + 600, "aud": "another"}));
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "a", "exp": now() + 600, "aud": AUDIENCE}),
        &EncodingKey::from_secret(b"another secret, also thirty-two bytes long").unwrap(),
    )
    .unwrap();
    let other_alg = encode(
        &Header::new(Algorithm::EdDSA),
        &json!({"sub": "a", "exp": now() + 600, "aud": AUDIENCE}),
        &EncodingKey::from_ed_pem(&std::fs::read(fixture("ed25519.key.pem")).unwrap()).unwrap(),
    )
    .unwrap();
    for (token, says, reason) in [
        (expired.as_str(), "token expired", "token_expired"),
        (early.as_str(), "not valid yet", "token_invalid"),
        (wrong_aud.as_str(), "wrong audience", "token_invalid"),
        (forged.as_str(), "bad signature", "token_invalid"),
        (other_alg.as_str(), "another algorithm", "token_invalid"),
        ("not.a.jwt", "malformed", "token_invalid"),
        ("garbage", "malformed", "token_invalid"),
    ] {
        let before = scrape(api).await.get(&format!(
            "stream_connection_rejected_total{{reason=\"{reason}\"}}"
        ));
        let status = grpc_balances(&node, 1, &alice, Some(&bearer(token)))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{says}: {status:?}"
        );
        assert!(status.message().contains(says), "{says}: {status:?}");
        let ws = WsClient::refused(
            api,
            &format!("{}?token={token}", balances(&alice)),
            loopback(1),
        )
        .await;
        assert_eq!(ws.status, 401, "{says}: {ws:?}");
        assert!(ws.error().contains(says), "{says}: {ws:?}");
        let http = get_from(api, &sse(&alice, &format!("?token={token}")), loopback(1)).await;
        assert_eq!(http.status, 401, "{says}: {http:?}");
        let challenge = http.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{says}: {challenge}"
        );
        let after = scrape(api).await.get(&format!(
            "stream_connection_rejected_total{{reason=\"{reason}\"}}"
        ));
        assert_eq!(after - before, 3.0, "{says}: counted once per transport");
    }
    // An Authorization header that is not Bearer, and a token given twice.
    let status = grpc_balances(&node, 1, &alice, Some("Basic YTpi"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("Bearer <JWT>"), "{status:?}");
    let twice = WsClient::try_connect(
        api,
        &format!("{}?token={}", balances(&alice), token("a", json!({}))),
        loopback(1),
        &[("authorization", &bearer(&token("a", json!({}))))],
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(twice.status, 401);
    assert!(twice.error().contains("not both"), "{twice:?}");

    // Valid tokens open every transport.
    let a = token("office-a", json!({}));
    let grpc = grpc_balances(&node, 1, &alice, Some(&bearer(&a)))
        .await
        .unwrap();
    let mut ws =
        WsClient::connect(api, &format!("{}?token={a}", balances(&alice)), loopback(1)).await;
    assert!(ws.next_json().await["balances"].is_array());
    // Both of office-a's slots are taken (max_subscriptions_per_client = 2): a third is
    // refused, naming the token's subject.
    let full = WsClient::refused(api, &format!("{}?token={a}", balances(&bob)), loopback(1)).await;
    assert_eq!(full.status, 429, "{full:?}");
    assert!(
        full.error().contains("\"office-a\" (token subject)"),
        "{full:?}"
    );
    // Another token from the same IP is another client with its own share.
    let b = token("office-b", json!({}));
    let mut mux = WsClient::try_connect(api, "/ws", loopback(1), &[("authorization", &bearer(&b))])
        .await
        .unwrap_or_else(|r| panic!("/ws with a header token: {r:?}"));
    let reply = mux
        .request(&json!({"id": 1, "method": "subscribe", "stream": "bank/balances", "params": {"address": bob}}))
        .await;
    assert!(reply["result"]["subscription"].is_string(), "{reply}");
    let mut follow = Sse::follow(
        &format!("http://{api}{}", sse(&alice, "")),
        &[format!("Authorization: {}", bearer(&b))],
    );
    follow
        .line_starting("event: update", Duration::from_secs(30))
        .await;

    // Narrowed tokens: 403 / PERMISSION_DENIED outside their claim.
    let only_balance = token("narrow", json!({"stream": {"types": ["bank/balance"]}}));
    let status = grpc_balances(&node, 2, &alice, Some(&bearer(&only_balance)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("allows bank/balance, not bank/balances"),
        "{status:?}"
    );
    let mut balance = QueryClient::new(node.channel_from(2));
    let mut request = tonic::Request::new(StreamBalanceRequest {
        address: alice.clone(),
        denom: BOND_DENOM.into(),
        since_height: 0,
    });
    request
        .metadata_mut()
        .insert("authorization", bearer(&only_balance).parse().unwrap());
    let mut allowed = balance.stream_balance(request).await.unwrap().into_inner();
    assert!(allowed.message().await.unwrap().is_some());
    let only_alice = token("narrow2", json!({"stream": {"addresses": [alice]}}));
    let bobs = WsClient::refused(
        api,
        &format!("{}?token={only_alice}", balances(&bob)),
        loopback(2),
    )
    .await;
    assert_eq!(bobs.status, 403, "{bobs:?}");
    assert!(
        bobs.error().contains(&format!("following {bob}")),
        "{bobs:?}"
    );
    let mut mux = WsClient::connect(api, &format!("/ws?token={only_alice}"), loopback(2)).await;
    let reply = mux
        .request(&json!({"id": 7, "method": "subscribe", "stream": "bank/balances", "params": {"address": bob}}))
        .await;
    assert_eq!(reply["error"]["code"], 403, "{reply}");
    let reply = mux
        .request(&json!({"id": 8, "method": "subscribe", "stream": "bank/balances", "params": {"address": alice}}))
        .await;
    assert!(reply["result"]["subscription"].is_string(), "{reply}");
    let bad_claim = token("x", json!({"stream": {"addresses": ["cosmos1nope"]}}));
    let refused = WsClient::refused(
        api,
        &format!("{}?token={bad_claim}", balances(&alice)),
        loopback(2),
    )
    .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(
        refused.error().contains("claim stream.addresses"),
        "{refused:?}"
    );

    let metrics = scrape(api).await;
    assert_eq!(
        metrics.get("stream_connection_rejected_total{reason=\"permission_denied\"}"),
        3.0
    );
    assert!(metrics.get("stream_connection_rejected_total{reason=\"token_missing\"}") >= 4.0);
    drop((grpc, ws, mux, allowed));
}

#[tokio::test]
async fn streams_end_when_their_token_expires() {
    let dir = tempdir();
    let node = hs256_node(dir.path(), "0s").await;
    let (api, alice) = (node.api_addr(), address("alice"));
    // Expires in 4 s: time to open all four, well before the end.
    // Two subjects: each may hold two streams (max_subscriptions_per_client = 2).
    let exp = now() + 4;
    let short = hs256(json!({"sub": "brief", "exp": exp, "aud": AUDIENCE}));
    let other = hs256(json!({"sub": "brief-too", "exp": exp, "aud": AUDIENCE}));
    let opened = std::time::Instant::now();
    let mut grpc = grpc_balances(&node, 1, &alice, Some(&bearer(&short)))
        .await
        .unwrap();
    let mut ws = WsClient::connect(
        api,
        &format!("/ws/subscribe/bank/balances/{alice}?token={short}"),
        loopback(1),
    )
    .await;
    let mut mux = WsClient::connect(api, &format!("/ws?token={other}"), loopback(1)).await;
    let mut sse = Sse::follow(
        &format!("http://{api}/sse/subscribe/bank/balances/{alice}?token={other}"),
        &[],
    );
    sse.line_starting(": subscribed", Duration::from_secs(10))
        .await;

    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(30), grpc.message())
            .await
            .expect("the gRPC stream ends within 30 s")
        {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the gRPC stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), tonic::Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("token expired"), "{ended:?}");
    assert!(
        opened.elapsed() >= Duration::from_secs(2),
        "ended {:?} after opening, before the token expired",
        opened.elapsed()
    );
    let close = ws.closed_by_server().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4001, "{close:?}");
    let close = mux.closed_by_server().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 4001, "{close:?}");
    sse.line_starting("event: error", Duration::from_secs(30))
        .await;
    let data = sse.line_starting("data: ", Duration::from_secs(5)).await;
    let data: Json = serde_json::from_str(data.trim_start_matches("data: ")).unwrap();
    assert_eq!(data["code"], 401, "{data}");
}

/// A node verifying `algorithm` tokens with the fixture public key `public`.
async fn keyed_node(algorithm: &str, public: &str) -> TestNode {
    let mut auth = toml::Table::new();
    auth.insert("algorithm".into(), algorithm.into());
    auth.insert(
        "public_key_file".into(),
        fixture(public).display().to_string().into(),
    );
    TestNode::start(TestNodeOptions::default().stream("auth", auth)).await
}

#[tokio::test]
async fn rs256_and_eddsa_public_keys_verify_their_tokens() {
    let alice = address("alice");
    for (algorithm, alg, private, public) in [
        ("RS256", Algorithm::RS256, "rs256.key.pem", "rs256.pub.pem"),
        (
            "EdDSA",
            Algorithm::EdDSA,
            "ed25519.key.pem",
            "ed25519.pub.pem",
        ),
    ] {
        let node = keyed_node(algorithm, public).await;
        let pem = std::fs::read(fixture(private)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ed_pem(&pem).unwrap(),
        };
        let claims = json!({"sub": "k", "exp": now() + 600});
        let good = encode(&Header::new(alg), &claims, &key).unwrap();
        grpc_balances(&node, 1, &alice, Some(&bearer(&good)))
            .await
            .unwrap_or_else(|s| panic!("{algorithm}: a signed token is refused: {s:?}"));
        // An HS256 token (whatever its secret) is not accepted by a public-key node.
        let hs = hs256(claims);
        let status = grpc_balances(&node, 1, &alice, Some(&bearer(&hs)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{algorithm}");
        assert!(status.message().contains("another algorithm"), "{status:?}");
    }
}
