#!/usr/bin/env bash
# The e2e stage of `make test`: brings up the local control plane (or reuses a healthy one),
# runs every e2e test against it, the chart checks, the chart-RBAC operator smoke test and the
# operator image (built, then run as the chart runs it), then tears the cluster down if this
# script started it (TIDAL_KEEP_CLUSTER=1 keeps it).
#
# Tests that only read or that create their own namespace run concurrently; tests that disturb
# the shared cluster (stopping metrics-server, restarting kube-controller-manager) run alone
# afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source-path=SCRIPTDIR source=lib.sh
source hack/lib.sh
use_cache_target_dir

# jq and Debian's yq (a jq wrapper) are the chart checks' only tools beyond helm/kubectl.
hack/ensure-tools.sh jq yq

use_local_cluster e2e

cargo build --locked -p tidal
export TIDAL_BIN="$CARGO_TARGET_DIR/debug/tidal"

# run_e2e_binaries_in_parallel SKIP_ARGS...: builds every tidal-e2e test binary, then runs them
# and README's `make demo` and `make compare-reaction` (a short smoke of it) as parallel
# processes, at most TIDAL_E2E_JOBS at once (default 3),
# each with its ignored tests on TIDAL_E2E_THREADS threads. The control plane, every test's
# operator and load driver share 2 cores, and the comparisons with the built-in HPA are timing
# tests (one sync plus one metrics resolution of skew): with all of them at once, seen here,
# kube-controller-manager fell 17 s behind. So the long comparisons start first and one at a
# time per slot, and the short tests fill the gaps. Each process's output is printed whole when
# all have ended (cargo's `test result:` lines included); fails when any process failed.
run_e2e_binaries_in_parallel() {
    local -a bins jobs
    local logs bin name status failed=0 running=0 i=0 job jobs_max=${TIDAL_E2E_JOBS:-3}
    mapfile -t bins < <(cargo test --locked -p tidal-e2e --no-run --message-format=json-render-diagnostics \
        | jq -r 'select(.reason == "compiler-artifact" and .profile.test == true) | .executable // empty' \
        | sort -u)
    [ "${#bins[@]}" -gt 0 ] || { echo "e2e: no test binaries were built" >&2; return 1; }
    # The order the slots take them: the long timing comparisons spread out, each followed
    # by short tests; then everything not named here, in name order.
    for name in compare explain doctor metrics_client demo crd_validation reaction \
        admission_differential custom_metrics operator_hpa_conflict operator_scaling operator_leader e2e \
        operator_shadow operator_restart operator_behavior replica_fight; do
        if [ "$name" = demo ] || [ "$name" = reaction ]; then jobs+=("$name"); continue; fi
        for bin in "${bins[@]}"; do [[ "$(basename "$bin")" == "$name"-* ]] && jobs+=("$bin"); done
    done
    for bin in "${bins[@]}"; do
        [[ " ${jobs[*]} " == *" $bin "* ]] || jobs+=("$bin")
    done
    logs=$(mktemp -d)
    echo "e2e: running ${#jobs[@]} processes ($((${#jobs[@]} - 2)) test binaries, make demo and the make compare-reaction smoke), $jobs_max at a time"
    for job in "${jobs[@]}"; do
        if [ "$running" -ge "$jobs_max" ]; then
            wait -n || true
            running=$((running - 1))
        fi
        i=$((i + 1))
        if [ "$job" = demo ]; then
            (make --no-print-directory demo >"$logs/$i.log" 2>&1; echo $? >"$logs/$i.rc") &
        elif [ "$job" = reaction ]; then
            # README's `make compare-reaction`, short: one 2-minute run of two steps on this
            # cluster (its 5 s sync period), checking every figure is produced.
            (TIDAL_REACTION_SYNC_PERIODS=5 TIDAL_REACTION_SHARED_CLUSTER=1 \
                TIDAL_REACTION_TRACE=e2e/traces/steps2.csv TIDAL_REACTION_OUT=e2e/artifacts/reaction-smoke \
                make --no-print-directory compare-reaction >"$logs/$i.log" 2>&1
             echo $? >"$logs/$i.rc") &
        else
            # As `cargo test` runs them: from the package's directory.
            (cd e2e && TIDAL_E2E_OPERATOR_BIN="$TIDAL_BIN" "$job" --ignored \
                --test-threads="${TIDAL_E2E_THREADS:-6}" "$@" >"$logs/$i.log" 2>&1
             echo $? >"$logs/$i.rc") &
        fi
        running=$((running + 1))
        echo "e2e: started $(basename "$job") ($(date -u +%T))"
    done
    wait
    for i in $(seq "${#jobs[@]}"); do
        job=${jobs[$((i - 1))]}
        status=$(cat "$logs/$i.rc" 2>/dev/null || echo 1)
        echo "e2e: ---- $(basename "$job") (exit $status) ----"
        cat "$logs/$i.log"
        [ "$status" = 0 ] || failed=1
    done
    rm -rf "$logs"
    [ "$failed" = 0 ] || { echo "e2e: some e2e processes failed (see above)" >&2; return 1; }
}

# README's "Run the operator" commands, as written: install_crd is its `kubectl apply` and
# `kubectl wait`, the wait retried (the operator itself is exercised by the operator e2e tests,
# which start the same binary with the same flags).
"$TIDAL_BIN" crd | install_crd -
kubectl get autoscalers -A >/dev/null
echo "e2e: README commands (tidal crd | kubectl apply, kubectl wait, kubectl get autoscalers) ok"

# README's cluster convert examples, as written, on an HPA named web in the default namespace
# (its Deployment does not exist: nothing is scaled), then removed again.
cat <<'EOF' | kubectl apply -f - >/dev/null
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
EOF
kubectl get hpa.v2.autoscaling web -o yaml | cargo run -q --locked -p tidal -- convert | kubectl apply -f - >/dev/null
cargo run -q --locked -p tidal -- convert --from-cluster default/web | grep -q 'kind: AutoScaler'
kubectl delete --ignore-not-found -n default hpa.v2.autoscaling/web autoscalers.autoscaling.tidal.dev/web >/dev/null
echo "e2e: README convert commands (kubectl get hpa | tidal convert | kubectl apply, --from-cluster) ok"

# README's walkthrough, as written: the operator as README starts it (cluster-wide, so it runs
# before any test's AutoScalers exist and is stopped before they start), the example workload,
# the load changed by hand, and the scale-up README promises.
cargo run -q --locked -p tidal -- operator --leader-election off --admin-addr 127.0.0.1:8080 \
    >"$CARGO_TARGET_DIR/walkthrough-operator.log" 2>&1 &
walkthrough_operator=$!
kubectl apply -f e2e/examples/web.yaml >/dev/null
kubectl wait --for=condition=Ready pod -l app=web --timeout=120s >/dev/null
kubectl annotate pods -l app=web kwok.x-k8s.io/usage-cpu=150m --overwrite >/dev/null
timeout 5 kubectl get autoscalers -w | grep -q '^web ' || true
scaled=""
for _ in $(seq 60); do
    replicas=$(kubectl get deployment web -o jsonpath='{.spec.replicas}')
    if [ "$replicas" -gt 1 ]; then scaled=$replicas; break; fi
    sleep 2
done
kubectl delete -f e2e/examples/web.yaml >/dev/null
kill "$walkthrough_operator"; wait "$walkthrough_operator" || true
if [ -z "$scaled" ]; then
    echo "e2e: README walkthrough: web was not scaled up within 120 s; operator log:" >&2
    tail -n 40 "$CARGO_TARGET_DIR/walkthrough-operator.log" >&2
    exit 1
fi
echo "e2e: README walkthrough ok (web scaled 1 -> $scaled after the load change)"

# README's doctor commands on the healthy cluster (exit 0 means no check failed).
cargo run -q --locked -p tidal -- doctor >/dev/null
cargo run -q --locked -p tidal -- doctor -n default >/dev/null
echo "e2e: README doctor commands ok"
cargo run -q --locked -p tidal -- simulate --spec crds/examples/cpu-utilization.yaml --trace e2e/traces/spike.csv \
    --compare defaults --metric-resolution 10s --out-dir "$CARGO_TARGET_DIR/simulate-out" >/dev/null
echo "e2e: README simulate command ok"
cargo run -q --locked -p tidal -- simulate --spec crds/examples/extensions/metric-policy-fixed.yaml \
    --compare crds/examples/cpu-utilization.yaml --trace e2e/traces/demo.csv \
    --metric-resolution 10s --sync-period 5s --downscale-stabilization 30s \
    --metrics-outage 100s-180s --out-dir "$CARGO_TARGET_DIR/simulate-outage" >/dev/null
echo "e2e: README simulate --metrics-outage command ok"

# The e2e test binaries run as parallel processes (each test in its own namespace with its
# own operator; within a binary the tests run concurrently too), with `make demo` beside them
# in its own namespace: one after another they took over 20 minutes, mostly waiting. The
# disruptive tests (metrics-server stopped; kube-controller-manager restarted under a built-in
# HPA; kube-apiserver and etcd restarted under the operator) are skipped by name here (never a
# vacuous pass) and run alone at the end.
run_e2e_binaries_in_parallel \
    --skip without_the_metrics_api --skip builtin_hpa_across_a_controller_manager_restart \
    --skip disruptive_doctor --skip simulate_reproduces_the_operators_timeline --skip scale_smoke \
    --skip across_an_api_server_restart --skip across_an_etcd_restart

# The operator against `tidal simulate` on the spike trace, alone: it compares timing to one
# sync plus one scrape, which a loaded machine could stretch.
cargo test --locked -p tidal-e2e --test simulate_vs_operator -- --ignored

hack/chart-check.sh
hack/chart-operator-smoke.sh

# The operator image, built without a Docker engine and run under the chart's securityContext
# until it has scaled a Deployment (README "The image"). After the parallel tests, alone: the
# release build of the static binary would take the cores their timing comparisons need.
hack/image-build.sh
hack/image-smoke.sh

if [ -f e2e/tests/operator_disruptive.rs ]; then
    TIDAL_E2E_DISRUPTIVE=1 cargo test --locked -p tidal-e2e --test operator_disruptive -- \
        --ignored --test-threads=1
fi
# The scale harness at N=150 (about 4 minutes): 150 HPAs keep kube-controller-manager's workers
# busy and its kcm-qps phase restarts it, so it runs here, alone. It uses the debug operator:
# it checks that every phase ran and every figure came out, not what the figures are.
TIDAL_E2E_DISRUPTIVE=1 TIDAL_E2E_OPERATOR_BIN="$TIDAL_BIN" cargo test --locked -p tidal-e2e \
    --test scale_smoke -- --ignored --test-threads=1
# tidal doctor with metrics-server stopped and with the APIService deleted (both put back).
TIDAL_E2E_DISRUPTIVE=1 cargo test --locked -p tidal-e2e --test doctor_disruptive -- \
    --ignored --test-threads=1
