#!/usr/bin/env bash
# `make demo`: the built-in HPA and Tidal side by side on the local control plane.
#
# Brings the local control plane up if it is not running (building it from Go modules on
# first use), installs the AutoScaler CRD, and runs `tidal-e2e compare` on a 3-minute trace
# (quiet, step up, hold, step down): twin kwok Deployments, an HPA on one, the AutoScaler
# converted from the same HPA on the other, a `tidal operator` for the namespace. Prints a
# status line every 10 s, then the summary, and says where the plot is.
#
# A cluster this script started is taken down at the end (TIDAL_KEEP_CLUSTER=1 keeps it);
# a running one (CI's, or yours) is used and left running.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=lib.sh
source hack/lib.sh
use_cache_target_dir
trace="${TIDAL_DEMO_TRACE:-e2e/traces/demo.csv}"
out="${TIDAL_DEMO_OUT:-e2e/artifacts/demo}"

use_local_cluster demo

echo "demo: building tidal and tidal-e2e"
cargo build --locked -q -p tidal -p tidal-e2e
tidal="$CARGO_TARGET_DIR/debug/tidal"
"$tidal" crd | install_crd - >/dev/null
echo "demo: AutoScaler CRD installed; comparing on $trace (about $(tail -n1 "$trace" | cut -d, -f1) s of load)"

TIDAL_E2E_OPERATOR_BIN="$tidal" RUST_LOG="${RUST_LOG:-warn}" \
    "$CARGO_TARGET_DIR/debug/tidal-e2e" compare --trace "$trace" --out "$out"
echo "demo: done. Open $out/compare.png (or compare.svg); per-second timelines: $out/hpa.csv, $out/tidal.csv"
