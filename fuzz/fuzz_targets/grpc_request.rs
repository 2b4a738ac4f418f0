//! Fuzz target `grpc_request`: the string fields and `since_height` of one of the six RPCs'
//! requests through the service's request check (the shared rules of `chain`).
//!
//! Input: a byte choosing the RPC, eight bytes of `since_height` (little endian), then the
//! string fields separated by `\n`.
//!
//! Properties: a refusal is `INVALID_ARGUMENT` with a non-empty message that names one of
//! the request's fields (`since_height` when it is negative, the empty field when one is
//! empty and all before it are fine); an accepted request is re-rendered to exactly the
//! fields that were sent (bech32 case aside) and starts where `since_height` says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stream_module::fuzzing::{self, GrpcOutcome, RPCS};

/// `tonic::Code::InvalidArgument`.
const INVALID_ARGUMENT: i32 = 3;

fuzz_target!(|data: &[u8]| {
    let Some((&rpc, rest)) = data.split_first() else {
        return;
    };
    let Some((height, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let since_height = i64::from_le_bytes(*height);
    let fields: Vec<String> = String::from_utf8_lossy(rest)
        .split('\n')
        .map(str::to_string)
        .collect();
    let (sent, outcome) = fuzzing::grpc_request(rpc, since_height, &fields);
    let (_, names) = RPCS[usize::from(rpc % 6)];
    assert_eq!(sent.since_height, since_height);
    assert_eq!(sent.fields.len(), names.len());
    match outcome {
        GrpcOutcome::Refused { code, message } => {
            assert_eq!(code, INVALID_ARGUMENT, "{message}");
            assert!(!message.trim().is_empty());
            let named = names
                .iter()
                .chain(&["since_height"])
                .any(|n| message.contains(n));
            assert!(named, "the message must name a field: {message}");
            if since_height < 0 {
                assert!(message.contains("since_height"), "{message}");
            }
            if since_height >= 0 {
                if let Some((field, _)) = sent.fields.first().filter(|(_, v)| v.is_empty()) {
                    assert!(
                        message.starts_with(&format!("{field} is empty")),
                        "{message}"
                    );
                }
            }
        }
        GrpcOutcome::Accepted(accepted) => {
            assert!(since_height >= 0);
            assert_eq!(accepted.since_height, since_height);
            assert_eq!(accepted.params.len(), sent.fields.len());
            for ((_, canonical), (field, given)) in accepted.params.iter().zip(&sent.fields) {
                if *field == "denom" {
                    assert_eq!(given, canonical);
                } else {
                    assert!(
                        given.eq_ignore_ascii_case(canonical),
                        "{field}: {given} {canonical}"
                    );
                }
            }
        }
    }
});
