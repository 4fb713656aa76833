#!/usr/bin/env bash
# Checks the Helm chart in charts/tidal. One PASS/FAIL line per check, a closing
# "chart-check: N passed, M failed" line, and a non-zero exit on any failure.
#
#   hack/chart-check.sh              everything (needs a cluster: $KUBECONFIG, or the local
#                                    control plane from e2e/cluster/cluster.sh)
#   hack/chart-check.sh --offline    only (a): lint, render, assertions; no cluster
#
# (a) helm lint --strict and helm template for every values file in charts/tests/, assertions
#     on the rendered objects (security context, flags, RBAC shape), refusal of every file
#     in charts/tests/invalid/, and the chart's CRD equal to crds/autoscaler.yaml.
# (b) helm template | kubectl apply --dry-run=server for every variant, into a throwaway
#     namespace (the ServiceMonitor only when the cluster serves monitoring.coreos.com/v1).
# (c) the rendered ServiceAccount and RBAC applied for real into that namespace, then
#     `kubectl auth can-i --as=system:serviceaccount:<ns>:<sa>` for everything the operator
#     needs (must be yes) and things it must never do (must be no). Everything created is
#     deleted on exit. Names are unique per run, so runs can overlap.
#
# Tools: helm and kubectl (the local control plane's own, from ${TIDAL_CACHE:-~/.cache/tidal}
# when present, else $HELM/$KUBECTL or PATH); yq (Debian's jq wrapper) and jq for assertions.
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHART="$TIDAL_ROOT/charts/tidal"
TESTS="$TIDAL_ROOT/charts/tests"
OFFLINE=0
case "${1:-}" in
  --offline) OFFLINE=1 ;;
  "") ;;
  *) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 2 ;;
esac

report_init chart-check
find_helm_kubectl

section "tools"
if [[ -n "$HELM" && -x "$HELM" ]]; then
  pass "helm found: $HELM ($("$HELM" version --short 2>&1))"
else
  fail "helm not found (build it with: e2e/cluster/cluster.sh build; or set HELM=/path/to/helm)"
  finish
fi
for tool in yq jq; do
  if command -v "$tool" >/dev/null; then pass "$tool found: $(command -v "$tool")"
  else fail "$tool not found (apt-get install -y yq jq)"; fi
done
((failed == 0)) || finish

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tidal-chart-check.XXXXXX")"
RUN_ID="$(date +%s | tail -c 6)$RANDOM"
RELEASE="tidal-chk-$RUN_ID"
NS="$RELEASE"
APP_NS="tidal-chk-app-$RUN_ID"   # a namespace the operator has no business in but scales into
CLUSTER_OBJECTS=()               # kind/name of cluster-scoped objects created for real
NS_CREATED=0
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  if ((NS_CREATED)); then
    "$KUBECTL" delete namespace "$NS" --wait=false --ignore-not-found >/dev/null 2>&1 \
      || echo "warning: could not delete namespace $NS" >&2
  fi
  local o
  for o in "${CLUSTER_OBJECTS[@]}"; do
    "$KUBECTL" delete "$o" --ignore-not-found >/dev/null 2>&1 || echo "warning: could not delete $o" >&2
  done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- (a) offline
VARIANTS=(default single-replica no-leader-election all-on extra-args existing-sa no-read-targets)
values_args() { # values_args VARIANT: helm's -f arguments for a variant
  [[ "$1" == default ]] || printf -- '-f\n%s\n' "$TESTS/values-$1.yaml"
}

section "(a) lint and render"
if cmp -s "$CHART/crds/autoscaler.yaml" "$TIDAL_ROOT/crds/autoscaler.yaml"; then
  pass "charts/tidal/crds/autoscaler.yaml equals crds/autoscaler.yaml"
else
  fail "charts/tidal/crds/autoscaler.yaml differs from crds/autoscaler.yaml (cp crds/autoscaler.yaml charts/tidal/crds/)"
fi

for v in "${VARIANTS[@]}"; do
  mapfile -t args < <(values_args "$v")
  if out=$("$HELM" lint --strict "$CHART" --namespace "$NS" "${args[@]}" 2>&1); then
    pass "helm lint --strict [$v]"
  else
    fail "helm lint --strict [$v]" "$out"
  fi
  if out=$("$HELM" template "$RELEASE" "$CHART" --namespace "$NS" --include-crds "${args[@]}" 2>&1 >"$WORK/$v.yaml"); then
    # One JSON array of the rendered objects, for the assertions below.
    if yq -s 'map(select(. != null))' "$WORK/$v.yaml" >"$WORK/$v.json" 2>"$WORK/$v.err"; then
      pass "helm template [$v] renders $(jq length "$WORK/$v.json") objects"
    else
      fail "helm template [$v] output is not YAML" "$(cat "$WORK/$v.err")"
    fi
  else
    fail "helm template [$v]" "$out"
  fi
done

# Each invalid file names, in a "# expect: TEXT" line, the error it must be refused with.
for f in "$TESTS"/invalid/*.yaml; do
  name="$(basename "$f" .yaml)"
  expect="$(sed -n 's/^# expect: //p' "$f" | head -n1)"
  if [[ -z "$expect" ]]; then fail "refuses invalid values [$name]" "$f has no '# expect: ...' line"; continue; fi
  if out=$("$HELM" template "$RELEASE" "$CHART" --namespace "$NS" -f "$f" 2>&1); then
    fail "refuses invalid values [$name]" "rendered without error: $(head -c 300 <<<"$out")"
  elif grep -qF -- "$expect" <<<"$out"; then
    pass "refuses invalid values [$name]: $(grep -m1 -F -- "$expect" <<<"$out" | sed 's/^[- ]*//' | cut -c1-150)"
  else
    fail "refuses invalid values [$name] for the wrong reason (want: $expect)" "$out"
  fi
done

# assert VARIANT DESCRIPTION JQ-EXPRESSION: the expression must be true on the rendered objects.
assert() {
  local v=$1 what=$2 expr=$3 got
  if [[ ! -s "$WORK/$v.json" ]]; then fail "[$v] $what" "no rendered output"; return; fi
  if got=$(jq -e "$expr" "$WORK/$v.json" 2>&1); then pass "[$v] $what"
  else fail "[$v] $what" "jq: $expr => $got"; fi
}

section "(a) assertions on the rendered objects"
# Shorthands, prepended to every expression.
# shellcheck disable=SC2016  # jq's $k and $a, not the shell's
J='def kind($k): map(select(.kind == $k));
   def one($k): kind($k) | if length == 1 then .[0] else error("expected one \($k), got \(length)") end;
   def deploy: one("Deployment");
   def ctr: deploy.spec.template.spec.containers[0];
   def args: ctr.args;
   def has_arg($a): args | index([$a]) != null;
   def rules($k): one($k).rules;'

for v in "${VARIANTS[@]}"; do
  assert "$v" "container runs as 65532, non-root, read-only root, no privilege escalation, ALL capabilities dropped, RuntimeDefault seccomp" \
    "$J ctr.securityContext as \$s | deploy.spec.template.spec.securityContext as \$p |
     \$s.runAsNonRoot == true and \$s.runAsUser == 65532 and \$s.readOnlyRootFilesystem == true
     and \$s.allowPrivilegeEscalation == false and \$s.capabilities.drop == [\"ALL\"]
     and \$s.seccompProfile.type == \"RuntimeDefault\" and \$p.runAsNonRoot == true
     and \$p.seccompProfile.type == \"RuntimeDefault\""
  assert "$v" "probes: /live and /ready on the admin port" \
    "$J ctr as \$c | \$c.livenessProbe.httpGet == {path: \"/live\", port: \"admin\"}
     and \$c.readinessProbe.httpGet == {path: \"/ready\", port: \"admin\"}
     and (\$c.ports[0].name == \"admin\")"
  assert "$v" "args start with the operator subcommand; identity from the pod name (downward API)" \
    "$J args[0] == \"operator\" and has_arg(\"--identity=\$(POD_NAME)\")
     and (ctr.env | map(select(.name == \"POD_NAME\"))[0].valueFrom.fieldRef.fieldPath == \"metadata.name\")
     and (ctr.env | map(select(.name == \"POD_NAMESPACE\"))[0].valueFrom.fieldRef.fieldPath == \"metadata.namespace\")"
  assert "$v" "admin address matches the container port" \
    "$J has_arg(\"--admin-addr=0.0.0.0:\(ctr.ports[0].containerPort)\")"
  assert "$v" "no Secret, ConfigMap or other RBAC-widening object rendered" \
    "map(.kind) - [\"CustomResourceDefinition\",\"Deployment\",\"ServiceAccount\",\"ClusterRole\",\"ClusterRoleBinding\",\"Role\",\"RoleBinding\",\"Service\",\"ServiceMonitor\",\"NetworkPolicy\",\"PodDisruptionBudget\"] == []"
  assert "$v" "every namespaced object is in the release namespace" \
    "map(select(.kind | IN(\"CustomResourceDefinition\",\"ClusterRole\",\"ClusterRoleBinding\") | not)) | all(.metadata.namespace == \"$NS\")"
  if [[ "$v" != existing-sa ]]; then
    assert "$v" "ClusterRole: no secrets/configmaps, no wildcard verb, only get on workloads, no leases, no delete" \
      "$J rules(\"ClusterRole\") as \$r |
       (\$r | map(.resources[]) | any(IN(\"secrets\",\"configmaps\",\"leases\",\"*/status\"))) == false
       and (\$r | map(select(.resources | any(IN(\"deployments\",\"statefulsets\",\"replicasets\",\"replicationcontrollers\"))))
            | all(.verbs == [\"get\"]))
       and (\$r | map(.verbs[]) | unique) == [\"create\",\"get\",\"list\",\"patch\",\"update\",\"watch\"]
       and (\$r | map(select(.verbs | any(IN(\"create\")))) | map(.resources) | flatten | unique) == [\"events\"]
       and (\$r | map(select(.apiGroups | index([\"*\"]))) | map(.resources) | flatten) == [\"*/scale\"]"
    assert "$v" "ClusterRoleBinding binds the ClusterRole to the chart's ServiceAccount in the release namespace" \
      "$J one(\"ClusterRoleBinding\") as \$b | \$b.roleRef.name == one(\"ClusterRole\").metadata.name
       and \$b.subjects == [{kind: \"ServiceAccount\", name: one(\"ServiceAccount\").metadata.name, namespace: \"$NS\"}]"
  fi
done

assert default "2 replicas, leader election on, Lease in the pod's namespace" \
  "$J deploy.spec.replicas == 2 and has_arg(\"--leader-election=on\")
   and has_arg(\"--leader-election-namespace=\$(POD_NAMESPACE)\") and has_arg(\"--leader-election-lease=tidal-operator\")"
assert default "operator flags carry the kube-controller-manager defaults" \
  "$J [\"--sync-period=15s\",\"--tolerance=0.1\",\"--downscale-stabilization=5m\",\"--cpu-initialization-period=5m\",
       \"--initial-readiness-delay=30s\",\"--concurrency=5\",\"--metrics-batching=on\",\"--reconcile-on-fresh-metrics=on\",\"--log-format=text\",
       \"--admin-addr=0.0.0.0:8080\",\"--lease-duration=15s\"] - args == []"
assert default "no --namespace flag (all namespaces)" "$J args | any(startswith(\"--namespace\")) | not"
assert default "rolling update keeps a standby: maxUnavailable 0" \
  "$J deploy.spec.strategy == {type: \"RollingUpdate\", rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"
assert default "PodDisruptionBudget minAvailable 1 selecting the operator pods" \
  "$J one(\"PodDisruptionBudget\").spec as \$s | \$s.minAvailable == 1 and \$s.selector.matchLabels == deploy.spec.selector.matchLabels"
assert default "Lease Role: create, and get/update/patch on the one Lease only, in the release namespace" \
  "$J one(\"Role\") as \$r | \$r.metadata.namespace == \"$NS\" and \$r.rules == [
     {apiGroups: [\"coordination.k8s.io\"], resources: [\"leases\"], verbs: [\"create\"]},
     {apiGroups: [\"coordination.k8s.io\"], resources: [\"leases\"], resourceNames: [\"tidal-operator\"], verbs: [\"get\",\"update\",\"patch\"]}]
   and one(\"RoleBinding\").roleRef.name == \$r.metadata.name"
assert default "metrics Service targets the admin port" \
  "$J one(\"Service\").spec as \$s | \$s.ports == [{name: \"http-metrics\", port: 8080, targetPort: \"admin\", protocol: \"TCP\"}]
   and \$s.selector == deploy.spec.selector.matchLabels"
assert default "no ServiceMonitor, no NetworkPolicy by default" \
  "$J (kind(\"ServiceMonitor\") + kind(\"NetworkPolicy\")) == []"
assert default "ServiceAccount does not automount; the pod does" \
  "$J one(\"ServiceAccount\").automountServiceAccountToken == false and deploy.spec.template.spec.automountServiceAccountToken == true"
assert default "CRD autoscalers.autoscaling.tidal.dev with the status subresource" \
  "$J one(\"CustomResourceDefinition\") | .metadata.name == \"autoscalers.autoscaling.tidal.dev\" and .spec.versions[0].subresources.status == {}"
assert default "soft anti-affinity spreads the replicas" \
  "$J deploy.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution | length == 1"

assert single-replica "one replica: no PodDisruptionBudget, no anti-affinity, still leader election" \
  "$J deploy.spec.replicas == 1 and kind(\"PodDisruptionBudget\") == [] and deploy.spec.template.spec.affinity == null and has_arg(\"--leader-election=on\")"

assert no-leader-election "leader election off: no Lease Role, Recreate strategy, no lease flags" \
  "$J has_arg(\"--leader-election=off\") and (kind(\"Role\") + kind(\"RoleBinding\")) == []
   and deploy.spec.strategy.type == \"Recreate\" and (args | any(startswith(\"--leader-election-namespace\") or startswith(\"--lease-duration\")) | not)"

assert all-on "flags follow the values" \
  "$J [\"--sync-period=30s\",\"--tolerance=0.05\",\"--downscale-stabilization=2m30s\",\"--cpu-initialization-period=3m\",
       \"--initial-readiness-delay=10s\",\"--concurrency=10\",\"--metrics-batching=off\",\"--reconcile-on-fresh-metrics=off\",\"--log-format=json\",
       \"--namespace=team-a\",\"--leader-election-lease=tidal-leader\",\"--lease-duration=20s\",\"--admin-addr=0.0.0.0:9090\"] - args == []"
assert all-on "image by digest" \
  "$J ctr.image == \"registry.example.invalid/tidal@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""
assert all-on "Lease Role follows leaderElection.leaseName" \
  "$J rules(\"Role\")[1].resourceNames == [\"tidal-leader\"]"
assert all-on "ServiceMonitor scrapes /metrics on the Service's port" \
  "$J one(\"ServiceMonitor\") | .spec.endpoints == [{port: \"http-metrics\", path: \"/metrics\", scheme: \"http\", interval: \"15s\", scrapeTimeout: \"5s\"}]
   and .metadata.labels.release == \"prometheus\""
assert all-on "NetworkPolicy: ingress only to the admin port, egress only to the API server and DNS" \
  "$J one(\"NetworkPolicy\").spec as \$s | \$s.policyTypes == [\"Ingress\",\"Egress\"]
   and \$s.ingress == [{ports: [{port: \"admin\", protocol: \"TCP\"}], from: [{namespaceSelector: {matchLabels: {\"kubernetes.io/metadata.name\": \"monitoring\"}}}]}]
   and \$s.egress[0] == {ports: [{port: 6443, protocol: \"TCP\"}], to: [{ipBlock: {cidr: \"10.0.0.1/32\"}}]}
   and (\$s.egress[1].ports | map(.port) | unique) == [53] and (\$s.egress | length) == 2"
assert all-on "3 replicas: PodDisruptionBudget still minAvailable 1" \
  "$J deploy.spec.replicas == 3 and one(\"PodDisruptionBudget\").spec.minAvailable == 1"

assert default "ReplicaFight's reads: get only, on the apps workload kinds and ReplicationControllers" \
  "$J rules(\"ClusterRole\") | map(select(.resources | index(\"deployments\") or index(\"replicationcontrollers\")))
   | map({g: .apiGroups, r: .resources, v: .verbs})
   == [{g: [\"apps\"], r: [\"deployments\",\"statefulsets\",\"replicasets\"], v: [\"get\"]},
       {g: [\"\"], r: [\"replicationcontrollers\"], v: [\"get\"]}]"
assert no-read-targets "rbac.readTargets=[]: no rule names a workload kind" \
  "$J rules(\"ClusterRole\") | map(.resources[]) | map(select(IN(\"deployments\",\"statefulsets\",\"replicasets\",\"replicationcontrollers\"))) == []"

assert extra-args "extra args come last" \
  "$J args[-1] == \"--namespace=team-b\""

assert existing-sa "rbac.create=false and an existing ServiceAccount: no RBAC, no ServiceAccount, pod uses the given name" \
  "$J (kind(\"ClusterRole\") + kind(\"ClusterRoleBinding\") + kind(\"Role\") + kind(\"RoleBinding\") + kind(\"ServiceAccount\")) == []
   and deploy.spec.template.spec.serviceAccountName == \"tidal-preprovisioned\""

if ((OFFLINE)); then
  echo; echo "offline: (b) server-side dry run and (c) RBAC impersonation were not run"
  finish
fi

# ---------------------------------------------------------------- cluster
section "cluster"
use_local_kubeconfig
if [[ -z "$KUBECTL" || ! -x "$KUBECTL" ]]; then
  fail "kubectl not found (e2e/cluster/cluster.sh build provides it; or set KUBECTL)"
  finish
fi
if [[ -z "${KUBECONFIG:-}" ]] || ! out=$("$KUBECTL" get --raw /readyz 2>&1); then
  fail "a cluster is reachable (KUBECONFIG=${KUBECONFIG:-unset}); start the local one with: e2e/cluster/cluster.sh up" "${out:-}"
  finish
fi
pass "cluster reachable: $("$KUBECTL" version -o json 2>/dev/null | jq -r '.serverVersion.gitVersion') via $KUBECTL (KUBECONFIG=$KUBECONFIG)"

if out=$("$KUBECTL" create namespace "$NS" 2>&1); then
  NS_CREATED=1
  pass "throwaway namespace $NS created"
else
  fail "create throwaway namespace $NS" "$out"
  finish
fi

section "(b) helm template | kubectl apply --dry-run=server"
# The CRD on its own, so a CRD the server refuses is reported as such and does not hide
# the templates' result.
if out=$("$KUBECTL" apply --dry-run=server -f "$CHART/crds/autoscaler.yaml" 2>&1); then
  pass "kubectl apply --dry-run=server [crds/autoscaler.yaml]: $(head -n1 <<<"$out")"
else
  fail "kubectl apply --dry-run=server [crds/autoscaler.yaml]: the API server refuses the CRD" "$out"
fi
has_servicemonitor=0
"$KUBECTL" api-resources --api-group=monitoring.coreos.com -o name 2>/dev/null | grep -qx 'servicemonitors.monitoring.coreos.com' && has_servicemonitor=1
for v in "${VARIANTS[@]}"; do
  mapfile -t args < <(values_args "$v")
  extra=()
  if [[ "$v" == all-on ]] && ((!has_servicemonitor)); then
    extra=(--set serviceMonitor.enabled=false)
    echo "SKIP  [all-on] ServiceMonitor left out of the dry run: the cluster does not serve monitoring.coreos.com/v1 (checked by lint and assertions only)"
  fi
  if ! "$HELM" template "$RELEASE" "$CHART" --namespace "$NS" "${args[@]}" "${extra[@]}" >"$WORK/$v.server.yaml" 2>"$WORK/$v.server.err"; then
    fail "kubectl apply --dry-run=server [$v]" "helm template: $(cat "$WORK/$v.server.err")"
    continue
  fi
  if out=$("$KUBECTL" apply --dry-run=server -f "$WORK/$v.server.yaml" 2>&1); then
    pass "kubectl apply --dry-run=server [$v]: $(grep -c 'server dry run' <<<"$out") objects accepted"
  else
    fail "kubectl apply --dry-run=server [$v]" "$out"
  fi
done

# Helm's own install path against the server (release rendering, NOTES.txt, ownership checks),
# without creating anything.
if out=$("$HELM" install "$RELEASE" "$CHART" --namespace "$NS" --dry-run=server 2>&1); then
  pass "helm install --dry-run=server [default]: $(grep -m1 '^STATUS:' <<<"$out")"
else
  fail "helm install --dry-run=server [default]" "$out"
fi

section "(c) RBAC for real in $NS, then impersonation"
if out=$("$HELM" template "$RELEASE" "$CHART" --namespace "$NS" \
    --show-only templates/serviceaccount.yaml --show-only templates/clusterrole.yaml \
    --show-only templates/leader-election-role.yaml 2>&1 >"$WORK/rbac.yaml"); then
  # Record the cluster-scoped names before applying, so a half-applied run is still cleaned up.
  while read -r kind name; do
    CLUSTER_OBJECTS+=("$kind/$name")
  done < <(yq -r 'select(. != null) | select(.kind | IN("ClusterRole","ClusterRoleBinding")) | "\(.kind | ascii_downcase) \(.metadata.name)"' "$WORK/rbac.yaml")
  if out=$("$KUBECTL" apply -f "$WORK/rbac.yaml" 2>&1); then
    pass "ServiceAccount, ClusterRole(Binding), Role(Binding) applied: $(tr '\n' ' ' <<<"$out" | cut -c1-200)"
  else
    fail "apply the rendered RBAC" "$out"
    finish
  fi
else
  fail "render the RBAC" "$out"
  finish
fi

SA="$(yq -r 'select(.kind == "ServiceAccount") | .metadata.name' "$WORK/rbac.yaml")"
USER_NAME="system:serviceaccount:$NS:$SA"
GROUPS_JSON="[\"system:serviceaccounts\",\"system:serviceaccounts:$NS\",\"system:authenticated\"]"
AS=(--as="$USER_NAME" --as-group=system:serviceaccounts --as-group="system:serviceaccounts:$NS" --as-group=system:authenticated)
LEASE=tidal-operator
# Resources the API server's discovery knows ("pods", "deployments.apps", ...).
KNOWN="$("$KUBECTL" api-resources -o name 2>/dev/null)"

# can EXPECT VERB RESOURCE[.GROUP][/NAME] [--subresource=S] [-n NS | -A]
# The ServiceAccount (with the groups a real token carries) must be allowed (yes) or refused
# (no). Two answers are taken and must agree:
#  - a SubjectAccessReview with group, resource, subresource, namespace and name spelled out:
#    exact for every resource, including ones the server does not serve (the AutoScaler CRD
#    when it is not installed, custom/external metrics APIs, a made-up scalable kind);
#  - `kubectl auth can-i --as=...`, when discovery knows the resource. (For a resource it does
#    not know, kubectl sends the dotted name as a core-group resource and answers for that,
#    so it is not asked.)
can() {
  local want=$1 verb=$2 spec=$3; shift 3
  local sub="" ns="" opt
  for opt in "$@"; do
    case "$opt" in
      --subresource=*) sub="${opt#--subresource=}" ;;
      -A) ns="" ;;
      -n) ;;
      *) ns="$opt" ;;
    esac
  done
  local res="${spec%%/*}" name="" group=""
  [[ "$spec" == */* ]] && name="${spec#*/}"
  if [[ "$res" == "*" ]]; then group="*"
  elif [[ "$res" == *.* ]]; then group="${res#*.}"; res="${res%%.*}"; fi
  local label="$verb $spec${sub:+ --subresource=$sub}${ns:+ -n $ns}"
  [[ -z "$ns" && "$*" == *-A* ]] && label+=" -A"
  local review sar
  review=$(jq -n --arg u "$USER_NAME" --argjson g "$GROUPS_JSON" --arg v "$verb" --arg gr "$group" \
    --arg r "$res" --arg s "$sub" --arg n "$ns" --arg nm "$name" \
    '{apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview",
      spec: {user: $u, groups: $g, resourceAttributes: {verb: $v, group: $gr, resource: $r,
             subresource: $s, namespace: $n, name: $nm}}}')
  if ! sar=$("$KUBECTL" create -o json -f - <<<"$review" 2>&1); then
    fail "can-i $label => error, want $want" "$sar"; return
  fi
  sar=$(jq -r 'if .status.allowed == true then "yes" else "no" end' <<<"$sar")
  local how="SubjectAccessReview"
  local known="$res${group:+.$group}"
  if grep -qxF -- "$known" <<<"$KNOWN" || [[ "$res" == "*" ]]; then
    local out answer
    out=$("$KUBECTL" auth can-i "$verb" "$spec" "$@" "${AS[@]}" 2>"$WORK/can-i.err")
    answer=$(awk 'NR==1{print $1}' <<<"$out")
    if [[ "$answer" != yes && "$answer" != no ]]; then
      fail "can-i $label => kubectl auth can-i error, want $want" "$out $(cat "$WORK/can-i.err")"; return
    elif [[ "$answer" != "$sar" ]]; then
      fail "can-i $label => kubectl auth can-i says $answer, SubjectAccessReview says $sar"; return
    fi
    how="kubectl auth can-i --as and SubjectAccessReview agree"
  else
    how="SubjectAccessReview; $known unknown to discovery"
  fi
  if [[ "$sar" == "$want" ]]; then pass "can-i $label => $sar ($how)"
  else fail "can-i $label => $sar, want $want ($how)"; fi
}

# The authorizer sees new bindings almost at once; wait until one of them shows.
for _ in $(seq 1 20); do
  [[ "$("$KUBECTL" auth can-i list pods -A "${AS[@]}" 2>/dev/null)" == yes ]] && break
  sleep 0.5
done

echo "-- must be allowed"
can yes get autoscalers.autoscaling.tidal.dev -A
can yes list autoscalers.autoscaling.tidal.dev -A
can yes watch autoscalers.autoscaling.tidal.dev -A
can yes get autoscalers.autoscaling.tidal.dev -n "$APP_NS"
can yes get autoscalers.autoscaling.tidal.dev --subresource=status -n "$APP_NS"
can yes update autoscalers.autoscaling.tidal.dev --subresource=status -n "$APP_NS"
can yes patch autoscalers.autoscaling.tidal.dev --subresource=status -n "$APP_NS"
for target in deployments.apps statefulsets.apps replicasets.apps replicationcontrollers widgets.example.com; do
  can yes get "$target" --subresource=scale -n "$APP_NS"
  can yes update "$target" --subresource=scale -n "$APP_NS"
done
can yes list pods -A
can yes watch pods -A
can yes list pods -n "$APP_NS"
can yes get pods.metrics.k8s.io -n "$APP_NS"
can yes list pods.metrics.k8s.io -A
can yes get pods.custom.metrics.k8s.io -n "$APP_NS"
can yes list pods.custom.metrics.k8s.io -n "$APP_NS"
can yes get services.custom.metrics.k8s.io -n "$APP_NS"
can yes get queue_depth.external.metrics.k8s.io -n "$APP_NS"
can yes list queue_depth.external.metrics.k8s.io -n "$APP_NS"
can yes create events -n "$APP_NS"
can yes patch events -n "$APP_NS"
can yes create events.events.k8s.io -n "$APP_NS"
can yes patch events.events.k8s.io -n "$APP_NS"
can yes get apiservices.apiregistration.k8s.io/v1beta1.metrics.k8s.io
can yes list horizontalpodautoscalers.autoscaling -A
can yes watch horizontalpodautoscalers.autoscaling -A
can yes create leases.coordination.k8s.io -n "$NS"
can yes get "leases.coordination.k8s.io/$LEASE" -n "$NS"
can yes update "leases.coordination.k8s.io/$LEASE" -n "$NS"
can yes patch "leases.coordination.k8s.io/$LEASE" -n "$NS"

echo "-- must be refused"
for verb in get list watch; do
  can no "$verb" secrets -A
  can no "$verb" secrets -n "$NS"
done
can no get secrets -n kube-system
can no get configmaps -n "$NS"
can no get serviceaccounts --subresource=token -n "$NS"
can no create serviceaccounts --subresource=token -n "$NS"
# ReplicaFight reads the target's managedFields: get, and nothing else, on the workload kinds.
can yes get deployments.apps -n "$APP_NS"
can yes get statefulsets.apps -n "$APP_NS"
can yes get replicationcontrollers -n "$APP_NS"
for verb in list watch create update patch delete; do
  can no "$verb" deployments.apps -n "$APP_NS"
done
can no list deployments.apps -A
can no get widgets.example.com -n "$APP_NS"
can no update deployments.apps --subresource=status -n "$APP_NS"
can no patch deployments.apps --subresource=scale -n "$APP_NS"
can no update statefulsets.apps -n "$APP_NS"
can no patch statefulsets.apps -n "$APP_NS"
can no update widgets.example.com -n "$APP_NS"
for verb in get create update patch delete; do
  can no "$verb" pods -n "$APP_NS"
done
can no create pods --subresource=eviction -n "$APP_NS"
can no create pods --subresource=exec -n "$APP_NS"
for verb in create update patch delete deletecollection; do
  can no "$verb" autoscalers.autoscaling.tidal.dev -n "$APP_NS"
done
can no delete autoscalers.autoscaling.tidal.dev --subresource=status -n "$APP_NS"
can no get horizontalpodautoscalers.autoscaling -n "$APP_NS"
for verb in create update patch delete; do
  can no "$verb" horizontalpodautoscalers.autoscaling -n "$APP_NS"
done
can no update events -n "$APP_NS"
can no delete events -n "$APP_NS"
can no list events -n "$APP_NS"
can no list apiservices.apiregistration.k8s.io
can no update apiservices.apiregistration.k8s.io/v1beta1.metrics.k8s.io
can no get nodes.metrics.k8s.io
can no list nodes
can no list namespaces
can no create leases.coordination.k8s.io -n default
can no get "leases.coordination.k8s.io/$LEASE" -n default
can no update "leases.coordination.k8s.io/$LEASE" -n kube-system
can no get leases.coordination.k8s.io/kube-controller-manager -n kube-system
can no get leases.coordination.k8s.io/some-other-lease -n "$NS"
can no update leases.coordination.k8s.io/some-other-lease -n "$NS"
can no list leases.coordination.k8s.io -n "$NS"
can no delete "leases.coordination.k8s.io/$LEASE" -n "$NS"
can no create customresourcedefinitions.apiextensions.k8s.io
can no update customresourcedefinitions.apiextensions.k8s.io/autoscalers.autoscaling.tidal.dev
can no create clusterrolebindings.rbac.authorization.k8s.io
can no bind clusterroles.rbac.authorization.k8s.io
can no escalate clusterroles.rbac.authorization.k8s.io
can no create rolebindings.rbac.authorization.k8s.io -n "$NS"
can no impersonate users
can no impersonate serviceaccounts -n "$NS"
can no '*' '*' -A

finish
