#!/usr/bin/env bash
# `make compare-reaction`: how soon Tidal and the built-in HPA react to a fresh metrics sample.
#
# Runs `tidal-e2e compare` on a trace of 20 load steps (e2e/traces/steps20.csv, about 19
# minutes) once per kube-controller-manager sync period in TIDAL_REACTION_SYNC_PERIODS
# (default "5 15": the rig's and kcm's default), each on its own local control plane started
# with that `--horizontal-pod-autoscaler-sync-period` and stopped afterwards. Tidal runs with
# its defaults (metrics batching and reconciling on fresh metrics on) and the same sync period;
# both sides are sampled every 250 ms. The load drivers change usage only between
# metrics-server scrapes (--usage-between-scrapes), so no sample mixes two loads and both sides
# decide on the same values; reactions count from the first sample taken after a step was
# applied. Reacting sooner costs replicas, so the built-in HPA also runs at the lower CPU
# targets in TIDAL_REACTION_HPA_COST_TARGETS (default "45 40"), each on its own Deployment in
# the same run, and the summary gives its overload-seconds at Tidal's replica-seconds,
# interpolated between those runs. Each run's summary (reaction p50/p90/p99/max of every
# replica change after the newest PodMetrics sample, sizes in order, replica- and
# overload-seconds, overload at equal replica-seconds, Tidal's PodMetrics LISTs per namespace
# per resolution) is printed and written to TIDAL_REACTION_OUT/sync-<period>s/ (default
# e2e/artifacts/reaction).
#
# TIDAL_REACTION_TRACE picks another trace. TIDAL_REACTION_SHARED_CLUSTER=1 runs a single
# period on the running local control plane instead (CI's smoke: it must have been started
# with that period, 5 s by default), and checks that every figure was produced.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=lib.sh
source hack/lib.sh
use_cache_target_dir
trace="${TIDAL_REACTION_TRACE:-e2e/traces/steps20.csv}"
out="${TIDAL_REACTION_OUT:-e2e/artifacts/reaction}"
read -r -a periods <<<"${TIDAL_REACTION_SYNC_PERIODS:-5 15}"
read -r -a cost_targets <<<"${TIDAL_REACTION_HPA_COST_TARGETS:-45 40}"
for t in "${cost_targets[@]}"; do
    [[ "$t" =~ ^[1-9][0-9]*$ && "$t" -lt 50 ]] ||
        { echo "compare-reaction: TIDAL_REACTION_HPA_COST_TARGETS: '$t' is not a whole percentage below the 50% target (e.g. \"45 40\")" >&2; exit 2; }
done
cost_flag=()
if [[ "${#cost_targets[@]}" -gt 0 ]]; then
    cost_flag=(--hpa-cost-targets "$(IFS=,; echo "${cost_targets[*]}")")
fi
shared="${TIDAL_REACTION_SHARED_CLUSTER:-}"
if [[ -n "$shared" && "${#periods[@]}" -ne 1 ]]; then
    echo "compare-reaction: TIDAL_REACTION_SHARED_CLUSTER=1 runs one sync period on the running cluster; set TIDAL_REACTION_SYNC_PERIODS to it (e.g. 5)" >&2
    exit 2
fi

echo "compare-reaction: building tidal and tidal-e2e"
cargo build --locked -q -p tidal -p tidal-e2e
tidal="$CARGO_TARGET_DIR/debug/tidal"

# check_summary FILE: every figure the comparison reports is there.
check_summary() {
    local f=$1 side
    for side in "built-in HPA" "Tidal"; do
        grep -Eq "^  $side: [1-9][0-9]* changes, p50 [0-9.]+s, p90 [0-9.]+s, p99 [0-9.]+s, max [0-9.]+s$" "$f" ||
            { echo "compare-reaction: no reaction distribution for $side in $f" >&2; return 1; }
    done
    for side in "built-in HPA" "Tidal"; do
        grep -Eq "^  $side: [1-9][0-9]* steps up, p50 [0-9.]+s, p90 [0-9.]+s, max [0-9.]+s$" "$f" ||
            { echo "compare-reaction: no step-up reactions for $side in $f" >&2; return 1; }
    done
    grep -q "^  sizes in order: " "$f" || { echo "compare-reaction: no size order in $f" >&2; return 1; }
    grep -Eq "^Tidal's PodMetrics LISTs: [0-9]+ in [0-9]+s for 1 namespace = [0-9.]+ per namespace" "$f" ||
        { echo "compare-reaction: no PodMetrics LIST count in $f" >&2; return 1; }
    grep -q "replica-seconds" "$f" || { echo "compare-reaction: no summary table in $f" >&2; return 1; }
    if [[ "${#cost_targets[@]}" -gt 0 ]]; then
        grep -Eq "^  built-in HPA at Tidal's [0-9]+ replica-seconds: " "$f" ||
            { echo "compare-reaction: no overload at equal replica-seconds in $f" >&2; return 1; }
    fi
}

for period in "${periods[@]}"; do
    [[ "$period" =~ ^[1-9][0-9]*$ ]] || { echo "compare-reaction: sync period '$period' is not a whole number of seconds" >&2; exit 2; }
    dir="$out/sync-${period}s"
    if [[ -n "$shared" ]]; then
        use_local_cluster compare-reaction
    else
        # Its own cluster, so kube-controller-manager runs with this sync period.
        export TIDAL_CLUSTER_NAME="tidal-reaction-${period}s"
        export TIDAL_CLUSTER_DIR="$CACHE/cluster-reaction-${period}s"
        export TIDAL_HPA_SYNC_PERIOD="${period}s"
        echo "compare-reaction: starting a local control plane with a ${period}s HPA sync period"
        "$CLUSTER_SH" up
        trap '"$CLUSTER_SH" down || true' EXIT
        eval "$("$CLUSTER_SH" env)"
    fi
    "$tidal" crd | install_crd - >/dev/null
    echo "compare-reaction: ${period}s sync, trace $trace (about $(tail -n1 "$trace" | cut -d, -f1) s)"
    TIDAL_E2E_OPERATOR_BIN="$tidal" RUST_LOG="${RUST_LOG:-warn}" \
        "$CARGO_TARGET_DIR/debug/tidal-e2e" compare --trace "$trace" --out "$dir" \
        --sync-period-seconds "$period" --sample-every-ms 250 --usage-between-scrapes \
        "${cost_flag[@]}"
    check_summary "$dir/summary.txt"
    if [[ -z "$shared" ]]; then
        "$CLUSTER_SH" down
        trap - EXIT
    fi
done
for period in "${periods[@]}"; do
    echo "compare-reaction: ---- ${period}s sync: $out/sync-${period}s/summary.txt ----"
    cat "$out/sync-${period}s/summary.txt"
done
