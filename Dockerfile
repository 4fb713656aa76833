# syntax=docker/dockerfile:1
#
# The Tidal operator image: a static (musl) `tidal` binary, Debian's CA bundle and an
# /etc/passwd naming the nonroot user, on `scratch`; run as uid 65532 with nothing to write, so
# it works under the chart's readOnlyRootFilesystem with every capability dropped.
#
#   docker build -t <registry>/tidal:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/tidal:0.1.0 --push .
#
# Two ways to the same image. With BuildKit (Docker >= 23 or buildx), as above: the builder
# stage compiles the binary in rust:bookworm and assembles the root file system in /rootfs with
# hack/image-rootfs.sh; the runtime stage copies it onto scratch. On a machine without a Docker
# engine and without access to container registries (the development machine and CI),
# hack/image-build.sh compiles the same binary the same way (musl target, musl-gcc, --locked),
# runs the same hack/image-rootfs.sh on the host into a directory's rootfs/, and has buildah
# build this file with `--build-context builder=<that directory>`: the runtime stage's
# `COPY --from=builder` then reads the directory, the builder stage is skipped (nothing pulls an
# image), and the runtime stage's instructions are these, not a copy of them.
# hack/image-smoke.sh runs that image under the chart's securityContext against the local
# control plane and checks that it scales a Deployment (README "The image").
#
# Multi-arch: the builder stage runs on the target platform (emulated when it differs from
# the build host), so the musl target is always the native one and `musl-gcc` from
# musl-tools is the right C compiler for `ring` (rustls' crypto; there is no OpenSSL).

ARG RUST_VERSION=1.95.0

# ---------------------------------------------------------------------------- builder
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
ARG RUST_VERSION

# Pipes in RUN fail the build when any command in them fails.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# musl-tools: musl-gcc, the C compiler `ring` is built with for *-linux-musl. Not pinned to a
# Debian revision: bookworm drops superseded revisions on security updates, which would break
# the build; the Rust image tag pins the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*

# The image's preinstalled toolchain is the one pinned in rust-toolchain.toml (1.95.0).
# RUSTUP_TOOLCHAIN makes rustup use it as is: the toolchain file also asks for rustfmt and
# clippy, which a release build does not need and the image does not ship.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

WORKDIR /src
COPY . .

# Fail early (and readably) if rust-toolchain.toml and RUST_VERSION drift apart.
RUN grep -Eq "^channel = \"${RUST_VERSION}\"" rust-toolchain.toml \
 || { echo "rust-toolchain.toml does not pin ${RUST_VERSION}: update RUST_VERSION" >&2; exit 1; }

# Cache mounts keep the crates.io index, downloaded crates and compiled dependencies between
# builds; the binary is copied out of the cached target dir because cache mounts are not part
# of the image. --locked: exactly the committed Cargo.lock. image-rootfs.sh refuses a binary
# with a program interpreter (the image has no libc).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eu; \
    target="$(uname -m)-unknown-linux-musl"; \
    rustup target add "$target"; \
    cargo build --release --locked -p tidal --bin tidal --target "$target"; \
    install -D -m 0755 "target/$target/release/tidal" /out/tidal; \
    /out/tidal --version; \
    hack/image-rootfs.sh /out/tidal /etc/ssl/certs/ca-certificates.crt /rootfs

# ---------------------------------------------------------------------------- runtime
# scratch plus the builder's /rootfs (hack/image-rootfs.sh: the binary, the CA bundle,
# /etc/passwd and /etc/group), owned by root: no shell, no package manager. hack/image-build.sh
# checks the image it builds against this stage (user, entrypoint, command, port, labels, files).
FROM scratch AS runtime

COPY --from=builder --chown=0:0 /rootfs/ /

LABEL org.opencontainers.image.title="tidal" \
      org.opencontainers.image.description="Tidal: a HorizontalPodAutoscaler reimplementation (autoscaling.tidal.dev AutoScaler operator)" \
      org.opencontainers.image.licenses="Apache-2.0"

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

# The admin server (/live, /ready, /metrics); --admin-addr changes it.
EXPOSE 8080

ENTRYPOINT ["/tidal"]
CMD ["operator"]
