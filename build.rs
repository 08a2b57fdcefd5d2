//! Compiles the kubelet gRPC APIs in `proto/` with a pure-Rust protobuf compiler (`protox`),
//! so building needs no system `protoc`. The generated code goes to `OUT_DIR` only.

use std::error::Error;

const PROTOS: [&str; 4] = [
    "proto/dra_v1.proto",
    "proto/dra-health/v1alpha1/api.proto",
    "proto/dra_v1beta1.proto",
    "proto/pluginregistration.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        // Clients are what the integration tests (and an operator's debugging tool) dial with.
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
