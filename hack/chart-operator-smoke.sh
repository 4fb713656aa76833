#!/usr/bin/env bash
# Shows that the chart's RBAC is sufficient, not just valid: runs `tidal operator` on this
# machine against the cluster in $KUBECONFIG (default: the local control plane from
# e2e/cluster/cluster.sh) authenticated as the chart's ServiceAccount, and checks that it
# reconciles an AutoScaler: takes the Lease, scales the target through its scale subresource,
# writes the AutoScaler's status and records an event, and names another writer of the
# target's replicas (ReplicaFight reads the Deployment's managedFields).
#
#   hack/chart-operator-smoke.sh
#
# The ServiceAccount and RBAC are rendered from charts/tidal and applied for real in a
# throwaway namespace; the operator watches only that namespace (so it never touches other
# tests' AutoScalers) and authenticates with a short-lived token of the ServiceAccount
# (`kubectl create token`), or, when the cluster cannot issue tokens, by impersonating it.
# The CRD is applied from crds/autoscaler.yaml only when the cluster lacks it, and is left in
# place (other tests share it). Everything else is removed on exit.
#
# Env: TIDAL_BIN (default: cargo build -p tidal, in $CARGO_TARGET_DIR), HELM, KUBECTL,
# SMOKE_TIMEOUT (seconds to wait for each step, default 90).
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHART="$TIDAL_ROOT/charts/tidal"
TIMEOUT="${SMOKE_TIMEOUT:-90}"

report_init chart-operator-smoke tail
find_helm_kubectl
[[ -x "$HELM" ]] || { fail "helm not found (e2e/cluster/cluster.sh build, or HELM=...)"; finish; }
[[ -x "$KUBECTL" ]] || { fail "kubectl not found (e2e/cluster/cluster.sh build, or KUBECTL=...)"; finish; }
use_local_kubeconfig
if [[ -z "${KUBECONFIG:-}" ]] || ! "$KUBECTL" get --raw /readyz >/dev/null 2>&1; then
  fail "a cluster is reachable (KUBECONFIG=${KUBECONFIG:-unset}); start it with: e2e/cluster/cluster.sh up"
  finish
fi
kc() { "$KUBECTL" "$@"; }

# ------------------------------------------------------------------ the binary
if [[ -z "${TIDAL_BIN:-}" ]]; then
  if ! out=$(cd "$TIDAL_ROOT" && cargo build -q --locked -p tidal --bin tidal 2>&1); then
    fail "cargo build -p tidal" "$out"; finish
  fi
  TIDAL_BIN="${CARGO_TARGET_DIR:-$TIDAL_ROOT/target}/debug/tidal"
fi
if ! "$TIDAL_BIN" operator --help >/dev/null 2>&1; then
  fail "$TIDAL_BIN has an \`operator\` subcommand (not implemented yet?)" "$("$TIDAL_BIN" operator --help 2>&1 | head -5)"
  finish
fi
pass "tidal operator available: $TIDAL_BIN"

# The flags every chart variant renders must be accepted by this binary's parser. With no
# reachable configuration the binary stops right after parsing: exit status 2 with clap's
# "error:" is a flag problem, anything else got past the parser.
for vf in "" "$TIDAL_ROOT"/charts/tests/values-*.yaml; do
  label="${vf:+$(basename "$vf" .yaml)}"; label="${label:-default}"
  # shellcheck disable=SC2016  # the literal $(POD_NAME) the chart renders, replaced by sed
  mapfile -t fargs < <("$HELM" template t "$CHART" ${vf:+-f "$vf"} --show-only templates/deployment.yaml \
    | yq -r '.spec.template.spec.containers[0].args[]' | sed 's/\$(POD_NAME)/pod-0/; s/\$(POD_NAMESPACE)/tidal-system/')
  out=$(env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT KUBECONFIG=/nonexistent HOME=/nonexistent \
    timeout 10 "$TIDAL_BIN" "${fargs[@]}" 2>&1); rc=$?
  if ((rc == 2)) || grep -q '^error:' <<<"$out"; then
    fail "chart args [$label] accepted by tidal operator" "${fargs[*]}"$'\n'"$out"
  elif ((rc == 124)); then
    fail "chart args [$label] accepted by tidal operator (it did not stop without a kubeconfig)"
  else
    pass "chart args [$label] accepted by tidal operator (${#fargs[@]} args)"
  fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tidal-chart-smoke.XXXXXX")"
RUN_ID="$(date +%s | tail -c 6)$RANDOM"
RELEASE="tidal-smoke-$RUN_ID"
NS="$RELEASE"
OP_PID=""
CLUSTER_OBJECTS=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  if [[ -n "$OP_PID" ]] && kill -0 "$OP_PID" 2>/dev/null; then
    kill "$OP_PID" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$OP_PID" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$OP_PID" 2>/dev/null || true
  fi
  drop_smoke_objects "$NS" "${CLUSTER_OBJECTS[@]}"
  ((rc == 0)) || keep_operator_log "$WORK/operator.log" "${TMPDIR:-/tmp}/tidal-chart-smoke-$RUN_ID.log"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ------------------------------------------------------------------ cluster side
kc create namespace "$NS" >/dev/null || { fail "create namespace $NS"; finish; }
if ! kc get crd autoscalers.autoscaling.tidal.dev >/dev/null 2>&1; then
  kc create -f "$TIDAL_ROOT/crds/autoscaler.yaml" >/dev/null 2>&1 || true
fi
wait_for "CRD autoscalers.autoscaling.tidal.dev established" \
  kc wait --for=condition=Established crd/autoscalers.autoscaling.tidal.dev --timeout=5s || finish

"$HELM" template "$RELEASE" "$CHART" --namespace "$NS" \
  --show-only templates/serviceaccount.yaml --show-only templates/clusterrole.yaml \
  --show-only templates/leader-election-role.yaml >"$WORK/rbac.yaml" || { fail "render the chart's RBAC"; finish; }
CLUSTER_OBJECTS+=("clusterrole/$RELEASE" "clusterrolebinding/$RELEASE")
if out=$(kc apply -f "$WORK/rbac.yaml" 2>&1); then pass "chart RBAC applied in $NS"; else fail "apply chart RBAC" "$out"; finish; fi
SA="$RELEASE"
LEASE=tidal-operator

# A target at 1 replica and an AutoScaler whose minReplicas is 2: upstream scales to
# minReplicas without needing any metric, so this exercises the RBAC path, not the metrics.
kc apply -n "$NS" -f - >/dev/null <<YAML || { fail "create the target Deployment"; finish; }
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      containers:
      - name: web
        image: web:smoke
        resources: {requests: {cpu: 100m}}
YAML
kc apply -n "$NS" -f - >/dev/null <<YAML || { fail "create the AutoScaler"; finish; }
apiVersion: autoscaling.tidal.dev/v1alpha1
kind: AutoScaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
YAML

# ------------------------------------------------------------------ the identity
# The admin kubeconfig, flattened (files such as the CA inlined), with its user replaced.
kc config view --minify --raw --flatten -o json >"$WORK/admin.json" || { fail "read the admin kubeconfig"; finish; }
if token=$(kc create token "$SA" -n "$NS" --duration=15m 2>"$WORK/token.err"); then
  how="a token of serviceaccount $NS/$SA"
  user=$(jq -n --arg t "$token" '{token: $t}')
else
  # Impersonation: the admin identity acts as the ServiceAccount, with the groups a token
  # would carry; the authorizer then sees only the ServiceAccount's rights.
  how="impersonation of system:serviceaccount:$NS:$SA ($(head -c 120 "$WORK/token.err"))"
  user=$(jq --arg u "system:serviceaccount:$NS:$SA" --arg g "system:serviceaccounts:$NS" \
    '.users[0].user + {as: $u, "as-groups": ["system:serviceaccounts", $g, "system:authenticated"]}' "$WORK/admin.json")
fi
jq --argjson user "$user" --arg ns "$NS" '
  .users = [{name: "tidal", user: $user}]
  | .contexts = [{name: "tidal", context: {cluster: .clusters[0].name, user: "tidal", namespace: $ns}}]
  | ."current-context" = "tidal"' "$WORK/admin.json" >"$WORK/kubeconfig"
rm -f "$WORK/admin.json"
chmod 600 "$WORK/kubeconfig"
if [[ "$(KUBECONFIG="$WORK/kubeconfig" kc auth can-i get secrets -n "$NS")" == no ]] \
   && [[ "$(KUBECONFIG="$WORK/kubeconfig" kc auth can-i list pods -A)" == yes ]]; then
  pass "operator identity is the chart's ServiceAccount: $how"
else
  fail "operator identity is the chart's ServiceAccount ($how)"; finish
fi

# ------------------------------------------------------------------ the operator
port=""
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[[ -n "$port" ]] || { fail "find a free loopback port"; finish; }

KUBECONFIG="$WORK/kubeconfig" "$TIDAL_BIN" operator \
  --namespace "$NS" \
  --sync-period 2s \
  --leader-election on --leader-election-namespace "$NS" --leader-election-lease "$LEASE" \
  --lease-duration 15s --identity "smoke-$RUN_ID" \
  --admin-addr "127.0.0.1:$port" --log-format text \
  >"$WORK/operator.log" 2>&1 &
OP_PID=$!
pass "tidal operator started (pid $OP_PID, admin 127.0.0.1:$port, watching $NS)"

# The checks wait_for runs (shellcheck does not see a function called as "$@").
# shellcheck disable=SC2317
ready() { kill -0 "$OP_PID" && [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" == 200 ]]; }
# shellcheck disable=SC2317
lease_held() { [[ "$(kc get lease "$LEASE" -n "$NS" -o jsonpath='{.spec.holderIdentity}')" == "smoke-$RUN_ID" ]]; }
# shellcheck disable=SC2317
scaled() { [[ "$(kc get deployment web -n "$NS" -o jsonpath='{.spec.replicas}')" == 2 ]]; }
# shellcheck disable=SC2317
status_written() {
  local s
  s=$(kc get autoscaler.autoscaling.tidal.dev web -n "$NS" -o json) || return 1
  jq -e '.status.desiredReplicas == 2 and (.status.conditions // [] | map(select(.type == "AbleToScale" and .status == "True")) | length == 1)' <<<"$s"
}
# shellcheck disable=SC2317
event_recorded() {
  kc get events.events.k8s.io -n "$NS" -o json \
    | jq -e '.items | map(select(.regarding.kind == "AutoScaler" and .regarding.name == "web" and .reason == "SuccessfulRescale")) | length >= 1'
}

# Readiness is reported but does not gate the RBAC checks below: those show what the
# ServiceAccount could do, whatever /ready says.
wait_for "/ready answers 200" ready
kill -0 "$OP_PID" 2>/dev/null || { fail "operator exited early"; finish; }
wait_for "Lease $NS/$LEASE held by the operator" lease_held
wait_for "target scaled 1 -> 2 through deployments/scale (minReplicas)" scaled
wait_for "AutoScaler status written (desiredReplicas 2, AbleToScale True)" status_written
wait_for "SuccessfulRescale event recorded (events.k8s.io)" event_recorded

# Another writer: kubectl (as the admin) sets 1 again. With the chart's `get` on Deployments
# (rbac.readTargets) the ReplicaFight condition names kubectl, not `unknown`.
# shellcheck disable=SC2317
fight_named() {
  kc get autoscaler.autoscaling.tidal.dev web -n "$NS" -o json \
    | jq -e '.status.conditions // [] | map(select(.type == "ReplicaFight" and .status == "True")) | .[0].message // "" | test("by manager kubectl ")'
}
if out=$(kc scale deployment web -n "$NS" --replicas=1 2>&1); then
  wait_for "ReplicaFight=True names the manager kubectl under the chart's RBAC" fight_named
else
  fail "kubectl scale deployment web --replicas=1" "$out"
fi

# 403 only as a number of its own: timestamps such as 38.774039Z contain the digits.
AUTHZ='forbidden|unauthorized|(^|[^0-9.])403([^0-9]|$)'
if grep -qiE "$AUTHZ" "$WORK/operator.log"; then
  fail "operator log has no authorization errors" "$(grep -iE "$AUTHZ" "$WORK/operator.log" | head -n 10)"
else
  pass "operator log has no authorization errors"
fi
if kill -0 "$OP_PID" 2>/dev/null; then pass "operator still running"; else fail "operator still running"; fi

finish
