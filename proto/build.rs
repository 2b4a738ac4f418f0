//! Compiles the .proto sources: service code for the gRPC services streamd serves, and one
//! file descriptor set for server reflection.
//!
//! Cosmos SDK and CometBFT messages are not generated here: they map to `cosmos-sdk-proto`
//! and `tendermint-proto` with `extern_path`, so the bytes on the wire are those crates'
//! encodings and the .proto files here only describe them.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "cosmos/auth/v1beta1/auth.proto",
    "cosmos/auth/v1beta1/query.proto",
    "cosmos/bank/v1beta1/query.proto",
    "cosmos/base/tendermint/v1beta1/query.proto",
    "cosmos/crypto/ed25519/keys.proto",
    "cosmos/crypto/secp256k1/keys.proto",
    "cosmos/staking/v1beta1/query.proto",
    "cosmos/tx/v1beta1/service.proto",
    "streamd/dev/v1/dev.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A system protoc is used only when the caller points at one; otherwise the vendored
    // binary keeps the build free of system installs.
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment now.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let includes = [root.clone(), protoc_bin_vendored::include_path()?];
    let protos: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();

    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".cosmos", "::cosmos_sdk_proto::cosmos")
        .extern_path(".tendermint", "::tendermint_proto")
        .file_descriptor_set_path(out.join("descriptor.bin"))
        .compile_protos(&protos, &includes)?;

    // The stream module's service gets a descriptor set of its own, so a node built without
    // the module does not advertise it through reflection.
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".cosmos", "::cosmos_sdk_proto::cosmos")
        .file_descriptor_set_path(out.join("stream_descriptor.bin"))
        .compile_protos(&[root.join("juno/stream/v1/query.proto")], &includes)?;

    // ADR-038 plugin mode (DESIGN.md section 9): the listener service a Go Cosmos SDK node
    // calls, go-plugin's controller and gRPC health. Generated into a folder of its own:
    // its CometBFT messages are our subset, not `tendermint-proto`'s.
    let adr038 = out.join("adr038");
    std::fs::create_dir_all(&adr038)?;
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&adr038)
        .file_descriptor_set_path(adr038.join("descriptor.bin"))
        .compile_protos(
            &[
                root.join("cosmos/store/streaming/abci/grpc.proto"),
                root.join("plugin/grpc_controller.proto"),
                root.join("grpc/health/v1/health.proto"),
            ],
            &includes,
        )?;

    println!("cargo:rerun-if-changed=juno");
    println!("cargo:rerun-if-changed=cosmos");
    println!("cargo:rerun-if-changed=tendermint");
    println!("cargo:rerun-if-changed=streamd");
    println!("cargo:rerun-if-changed=plugin");
    println!("cargo:rerun-if-changed=grpc");
    Ok(())
}
