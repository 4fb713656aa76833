#!/usr/bin/env bash
# `make scale`: kube-controller-manager's HPA controller and Tidal at N objects
# (`tidal-e2e scale`, e2e/src/scale.rs), on a cluster of its own with room for the largest N.
#
# The cluster is separate from the e2e one (TIDAL_CLUSTER_NAME=tidal-scale, its state under
# $TIDAL_CACHE/cluster-scale) because the harness restarts its kube-controller-manager and
# fills its nodes; it has TIDAL_NODES nodes of 250 pods, enough for the largest N, and is taken
# down at the end unless it was already running (TIDAL_KEEP_CLUSTER=1 keeps it).
#
# Settings: TIDAL_SCALE_OBJECTS (100,1000,5000,10000), TIDAL_SCALE_NAMESPACES (10),
# TIDAL_SCALE_WINDOW (120 s), TIDAL_SCALE_OUT (e2e/artifacts/scale), TIDAL_SCALE_CONCURRENCY
# (Tidal's --concurrency, 5: kube-controller-manager's HPA workers).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=lib.sh
source hack/lib.sh
use_cache_target_dir

objects="${TIDAL_SCALE_OBJECTS:-100,1000,5000,10000}"
namespaces="${TIDAL_SCALE_NAMESPACES:-10}"
window="${TIDAL_SCALE_WINDOW:-120}"
out="${TIDAL_SCALE_OUT:-e2e/artifacts/scale}"
concurrency="${TIDAL_SCALE_CONCURRENCY:-5}"

largest=$(tr ',' '\n' <<<"$objects" | sort -n | tail -n1)
export TIDAL_CLUSTER_NAME="${TIDAL_CLUSTER_NAME:-tidal-scale}"
export TIDAL_CLUSTER_DIR="${TIDAL_CLUSTER_DIR:-$CACHE/cluster-scale}"
export TIDAL_NODE_PODS="${TIDAL_NODE_PODS:-250}"
# One node more than the pods need: kwok's own and leftover pods take places too.
export TIDAL_NODES="${TIDAL_NODES:-$(( (largest + TIDAL_NODE_PODS - 1) / TIDAL_NODE_PODS + 1 ))}"
# A loaded 2-core machine can take more than the default 2 minutes to serve.
export TIDAL_UP_TIMEOUT="${TIDAL_UP_TIMEOUT:-300}"
echo "scale: N=$objects over $namespaces namespaces, ${window} s windows; cluster $TIDAL_CLUSTER_NAME with $TIDAL_NODES nodes x $TIDAL_NODE_PODS pods"

# A release build, as users run it. Without LTO: the release profile's thin LTO over every
# crate took far longer on 2 shared cores, and the operator's hot path is in its own crates.
echo "scale: building tidal and tidal-e2e (release, no LTO)"
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo build --locked --release -q -p tidal -p tidal-e2e
tidal="$CARGO_TARGET_DIR/release/tidal"

use_local_cluster scale
"$CLUSTER_SH" up
"$tidal" crd | install_crd - >/dev/null

started=$SECONDS
TIDAL_E2E_OPERATOR_BIN="$tidal" RUST_LOG="${RUST_LOG:-warn,kube_client::client::tls=error}" \
    "$CARGO_TARGET_DIR/release/tidal-e2e" scale --objects "$objects" --namespaces "$namespaces" \
    --window "$window" --tidal-concurrency "$concurrency" --out "$out"
echo "scale: done in $(( (SECONDS - started) / 60 )) min; $out/summary.md, $out/scale-N.csv, $out/requests.csv, $out/scale.svg"
