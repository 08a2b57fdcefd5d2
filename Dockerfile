# syntax=docker/dockerfile:1
#
# One image for `tessera plugin` and `tessera extender` (the chart picks the subcommand in
# `args`). Build (docs/install.md):
#
#   docker build -t <registry>/tessera:0.1.0 .
#
# Releases: .github/workflows/release.yml builds it natively on amd64 and arm64 runners (no
# emulation: the Rust toolchain image exists for both) and pushes one multi-arch index with SBOM
# and provenance attestations to ghcr.io.
#
# Stages: chef (toolchain + cargo-chef) → planner (dependency recipe) → builder (dependencies
# cooked in their own cached layer, then the crate) → a minimal glibc runtime. glibc, not musl:
# the plugin loads the host's libnvidia-ml.so (NVML) at run time, which is linked against glibc.

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

# Builder and runtime must be the same Debian release (bookworm = Debian 12, glibc 2.36): a
# binary linked on a newer glibc (e.g. a `-trixie` builder, 2.41) does not start on an older one.
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
# recipe.json changes only when Cargo.toml / Cargo.lock do, so the cook layer below stays cached
# across source edits.
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# --locked: cook exactly the Cargo.lock versions the final `--locked` build uses; without it a
# stale lock would be re-resolved here and the cached layer would hold other versions.
RUN cargo chef cook --release --locked --features nvml --bin tessera --recipe-path recipe.json
COPY . .
# .proto files are compiled by protox (pure Rust) in build.rs: no protoc in the image.
RUN cargo build --release --locked --features nvml --bin tessera \
 && install -D -m 0755 target/release/tessera /out/tessera

# distroless/cc: glibc, libgcc and CA certificates, no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
# OCI annotations (https://github.com/opencontainers/image-spec, annotations.md). The release
# workflow passes VERSION and REVISION and adds created/url labels of its own.
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tessera" \
      org.opencontainers.image.description="Cost-aware GPU partitioning and placement for Kubernetes: DRA kubelet plugin and scheduler extender" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tessera-dev/tessera" \
      org.opencontainers.image.documentation="https://github.com/tessera-dev/tessera/blob/main/docs/install.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /out/tessera /usr/local/bin/tessera
# Non-root by default (the extender). The plugin's DaemonSet runs it privileged as root through
# its securityContext: it writes kubelet sockets and CDI specs on the host and changes MIG.
USER 65532:65532
# 8888: extender verbs; 9090: admin (/healthz, /readyz, /metrics).
EXPOSE 8888 9090
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["--help"]
