# syntax=docker/dockerfile:1
#
# The Tidal operator image: a static (musl) `tidal` binary on distroless/static, run as
# uid 65532 with nothing to write, so it works under readOnlyRootFilesystem.
#
#   docker build -t <registry>/tidal:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/tidal:0.1.0 --push .
#
# NOT BUILT ON THE DEVELOPMENT MACHINE: it has a docker client but no Docker engine, so this
# file has never been built there. It is kept correct by review; the Helm chart that runs the
# image is checked with `hack/chart-check.sh` (helm lint / template, server-side dry run,
# RBAC impersonation), and this file was linted with hadolint and BuildKit's own parser and
# linter (the `docker build --check` rules). Build it on a machine with BuildKit (Docker >= 23
# or buildx).
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
# of the image. --locked: exactly the committed Cargo.lock. A static binary has no program
# interpreter (distroless/static has no libc): anything else fails the build.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eu; \
    target="$(uname -m)-unknown-linux-musl"; \
    rustup target add "$target"; \
    cargo build --release --locked -p tidal --bin tidal --target "$target"; \
    install -D -m 0755 "target/$target/release/tidal" /out/tidal; \
    if readelf -l /out/tidal | grep -q 'program interpreter'; then \
        echo "tidal is dynamically linked; distroless/static cannot run it" >&2; exit 1; \
    fi; \
    /out/tidal --version

# ---------------------------------------------------------------------------- runtime
# distroless/static: CA certificates, /etc/passwd with the nonroot user (65532), tzdata,
# no shell, no package manager. Pinned by tag; pin by digest too in a release pipeline.
FROM gcr.io/distroless/static-debian12:nonroot

LABEL org.opencontainers.image.title="tidal" \
      org.opencontainers.image.description="Tidal: a HorizontalPodAutoscaler reimplementation (autoscaling.tidal.dev AutoScaler operator)" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder --chown=0:0 --chmod=0555 /out/tidal /tidal

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

# The admin server (/live, /ready, /metrics); --admin-addr changes it.
EXPOSE 8080

ENTRYPOINT ["/tidal"]
CMD ["operator"]
