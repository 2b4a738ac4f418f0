//! ABCI `Query` as the Cosmos SDK answers it for gRPC query paths: the request's `path` is a
//! gRPC method (`/cosmos.bank.v1beta1.Query/Balance`), `data` its protobuf request and
//! `height` the height to answer at (0: the latest). The query goes through the node's own
//! gRPC services in process, so ABCI and the gRPC port give the same answers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tendermint::abci::{Code, response};
use tendermint::v0_38::abci::request;
use tonic::service::Routes;
use tower::ServiceExt;

/// The SDK's codespace and code for a query it cannot route or that fails.
const UNKNOWN_REQUEST: u32 = 6;

/// Answers `r` through `routes` (the node's gRPC services).
pub async fn answer(routes: Routes, r: request::Query) -> response::Query {
    let refuse = |code: u32, log: String| response::Query {
        code: Code::from(code),
        log,
        codespace: "sdk".into(),
        height: r.height,
        ..Default::default()
    };
    if !r.path.starts_with('/') || r.path.matches('/').count() != 2 {
        return refuse(
            UNKNOWN_REQUEST,
            format!(
                "unknown query path {:?}: streamd answers gRPC query paths \
                 (/cosmos.bank.v1beta1.Query/Balance, ...)",
                r.path
            ),
        );
    }
    let mut frame = Vec::with_capacity(5 + r.data.len());
    frame.push(0);
    frame.extend((r.data.len() as u32).to_be_bytes());
    frame.extend_from_slice(&r.data);
    let mut req = http::Request::builder()
        .method(http::Method::POST)
        .uri(r.path.as_str())
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if r.height.value() > 0 {
        req = req.header(crate::grpc::HEIGHT_HEADER, r.height.value().to_string());
    }
    let req = match req.body(Full::new(Bytes::from(frame))) {
        Ok(req) => req,
        Err(e) => {
            return refuse(
                UNKNOWN_REQUEST,
                format!("invalid query path {:?}: {e}", r.path),
            );
        }
    };
    let resp = match routes.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    let (parts, body) = resp.into_parts();
    let answered = parts
        .headers
        .get(crate::grpc::HEIGHT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let collected = match body.collect().await {
        Ok(c) => c,
        Err(e) => return refuse(1, format!("query {:?} failed: {e}", r.path)),
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = |name: &str| {
        trailers
            .get(name)
            .or_else(|| parts.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let code: u32 = status("grpc-status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if code != 0 {
        let message = percent_decode(&status("grpc-message").unwrap_or_default());
        if code == tonic::Code::Unimplemented as u32 {
            return refuse(UNKNOWN_REQUEST, format!("unknown query path {:?}", r.path));
        }
        return refuse(sdk_code(code), format!("{}: {message}", r.path));
    }
    let data = collected.to_bytes();
    let value = if data.len() >= 5 {
        data.slice(5..)
    } else {
        Bytes::new()
    };
    response::Query {
        value,
        height: answered.and_then(|h| h.try_into().ok()).unwrap_or(r.height),
        ..Default::default()
    }
}

/// The SDK error a gRPC status becomes in an ABCI query (baseapp's `gRPCErrorToSDKError`).
fn sdk_code(grpc: u32) -> u32 {
    match tonic::Code::from(grpc as i32) {
        tonic::Code::InvalidArgument => 18, // ErrInvalidRequest
        tonic::Code::NotFound => 38,        // ErrKeyNotFound
        tonic::Code::Unauthenticated => 4,  // ErrUnauthorized
        _ => 1,                             // ErrInternal
    }
}

/// gRPC percent-encodes `grpc-message`.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if bytes[i] == b'%'
            && let Some(b) = hex
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
