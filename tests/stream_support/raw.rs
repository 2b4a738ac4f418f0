//! A `juno.stream.v1` stream read as the raw protobuf bytes of each response message, to
//! compare two servers byte for byte (not after decoding).

use std::marker::PhantomData;

use prost::bytes::Buf;
use stream_proto::juno::stream::v1::*;
use tokio::sync::mpsc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use super::StreamKey;

/// Encodes the request with prost, hands each response message over undecoded.
struct RawCodec<Req>(PhantomData<Req>);

struct RequestEncoder<Req>(PhantomData<Req>);

/// Each response message's bytes, as the server framed them.
struct RawDecoder;

impl<Req: prost::Message + Send + 'static> Codec for RawCodec<Req> {
    type Encode = Req;
    type Decode = Vec<u8>;
    type Encoder = RequestEncoder<Req>;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        RequestEncoder(PhantomData)
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl<Req: prost::Message> Encoder for RequestEncoder<Req> {
    type Item = Req;
    type Error = Status;
    fn encode(&mut self, item: Req, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encode: {e}")))
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn call<Req: prost::Message + Send + 'static>(
    channel: Channel,
    rpc: &str,
    request: Req,
) -> Result<Streaming<Vec<u8>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = format!("/juno.stream.v1.Query/{rpc}")
        .parse()
        .expect("a valid path");
    Ok(grpc
        .server_streaming(tonic::Request::new(request), path, RawCodec(PhantomData))
        .await?
        .into_inner())
}

/// Opens the stream for `key` and forwards every response message's bytes, in order.
pub async fn open_raw(
    channel: Channel,
    key: &StreamKey,
) -> Result<mpsc::UnboundedReceiver<Vec<u8>>, Status> {
    let rpc = key.rpc();
    let mut stream = match key.clone() {
        StreamKey::Balance { address, denom } => {
            let r = StreamBalanceRequest {
                address,
                denom,
                ..Default::default()
            };
            call(channel, rpc, r).await?
        }
        StreamKey::AllBalances { address } => {
            let r = StreamAllBalancesRequest {
                address,
                ..Default::default()
            };
            call(channel, rpc, r).await?
        }
        StreamKey::Delegations { delegator } => {
            let r = StreamDelegationsRequest {
                delegator_address: delegator,
                ..Default::default()
            };
            call(channel, rpc, r).await?
        }
        StreamKey::Delegation {
            delegator,
            validator,
        } => {
            let r = StreamDelegationRequest {
                delegator_address: delegator,
                validator_address: validator,
                ..Default::default()
            };
            call(channel, rpc, r).await?
        }
        StreamKey::UnbondingDelegations { delegator } => {
            let r = StreamUnbondingDelegationsRequest {
                delegator_address: delegator,
                ..Default::default()
            };
            call(channel, rpc, r).await?
        }
        StreamKey::UnbondingDelegation {
            delegator,
            validator,
        } => {
            let r = StreamUnbondingDelegationRequest {
                delegator_address: delegator,
                validator_address: validator,
                ..Default::default()
            };
            call(channel, rpc, r).await?
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(message)) = stream.message().await {
            if tx.send(message).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
