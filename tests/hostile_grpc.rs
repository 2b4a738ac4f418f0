//! End-to-end, hostile gRPC requests ([5/11] D8): a stream request is read only up to 4 KiB;
//! a larger one (up to 100 MB here) is answered RESOURCE_EXHAUSTED, as gRPC defines for a
//! message over the receiver's limit, and the node keeps serving.

mod support;

use std::time::Duration;

use stream_proto::juno::stream::v1::StreamBalanceRequest;
use stream_proto::juno::stream::v1::query_client::QueryClient;
use support::accounts::{BOND_DENOM, address};
use support::{TestNode, TestNodeOptions};
use tonic::Code;

fn request(address: String) -> StreamBalanceRequest {
    StreamBalanceRequest {
        address,
        denom: BOND_DENOM.into(),
        since_height: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_stream_requests_get_resource_exhausted() {
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let mut client = QueryClient::new(node.channel())
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    for size in [4097, 1 << 20, 100 << 20] {
        let answered = tokio::time::timeout(
            Duration::from_secs(60),
            client.stream_balance(request("a".repeat(size))),
        )
        .await;
        let Ok(answer) = answered else {
            panic!("a {size}-byte request must be answered");
        };
        let status = answer.expect_err("an oversize request is refused");
        assert_eq!(
            status.code(),
            Code::ResourceExhausted,
            "{size} bytes: {status:?}"
        );
        assert!(
            status.message().contains("4096"),
            "the message names the limit: {status:?}"
        );
    }
    // Just under the limit, the request is read and its field judged.
    let status = client
        .stream_balance(request("a".repeat(4000)))
        .await
        .expect_err("a 4000-character address is not an address");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // The node still serves.
    let mut stream = client
        .stream_balance(request(address("alice")))
        .await
        .expect("a good request opens")
        .into_inner();
    stream
        .message()
        .await
        .expect("snapshot")
        .expect("a message");
}
