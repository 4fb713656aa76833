#!/usr/bin/env bash
# Runs the operator image as the chart's pod spec runs it, against the local control plane, and
# checks that it reconciles an AutoScaler: the image hack/image-build.sh built, started by podman
# (runc underneath) with the chart's container args, env and securityContext, authenticated as
# the chart's ServiceAccount the way a pod is (a token, ca.crt and namespace mounted read-only at
# /var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT set), then README's
# walkthrough workload scaled by it. Prints the start-up time and the reaction time.
#
#   hack/image-smoke.sh          (after hack/image-build.sh; starts the local control plane if
#                                 it is not running, and stops it again)
#
# What is mapped from the rendered chart, and how (anything else in a securityContext fails the
# run rather than being silently dropped):
#   runAsUser/runAsGroup        --user UID:GID;  fsGroup  --group-add (the kubelet adds it too)
#   runAsNonRoot                checked: the uid and the image's numeric USER are not 0
#   readOnlyRootFilesystem      --read-only --read-only-tmpfs=false (podman would otherwise
#                               mount writable tmpfs on /run, /tmp, /var/tmp; a pod gets none)
#   allowPrivilegeEscalation=false  --security-opt no-new-privileges
#   capabilities drop/add       --cap-drop / --cap-add;  privileged=false  the default
#   seccompProfile RuntimeDefault   podman's default profile (containers-common's, the one
#                               CRI-O applies as RuntimeDefault)
#   resources.limits.memory     --memory
# and then checked on the running process (/proc/PID/status and mountinfo): uid and gid 65532,
# no capabilities at all, no_new_privs, seccomp filtering, root mounted read-only.
# What differs from a pod, on purpose: host network (the control plane listens on loopback);
# the token comes from `kubectl create token` (1 h), not projected by a kubelet; the admin port is a
# free one (chart value adminPort), the operator watches only this run's namespace
# (operator.watchNamespace) and syncs every 5 s (operator.syncPeriod), so it runs beside other
# tests and finishes sooner; one replica, leader election on (the chart's default).
#
# Env: TIDAL_IMAGE (default: image_name in lib.sh), HELM, KUBECTL, SMOKE_TIMEOUT (seconds for
# each wait, default 120); TIDAL_CLUSTER_DIR and TIDAL_CLUSTER_NAME pick the local control plane
# (e2e/cluster/cluster.sh).
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHART="$TIDAL_ROOT/charts/tidal"
TIMEOUT="${SMOKE_TIMEOUT:-120}"
IMAGE=$(image_name)

report_init image-smoke tail
"$TIDAL_ROOT/hack/ensure-tools.sh" podman runc jq yq || { fail "install podman, runc, jq, yq"; finish; }
image_store_flags
# cgroupfs and file events: podman's defaults (systemd, journald) need a systemd this machine
# may not run. runc named, not podman's pick: where Debian's podman also pulled in crun, podman
# chose crun, which refuses this machine's hybrid cgroup layout ("cgroups in hybrid mode not
# supported"; CI, 2026-12-03), while runc runs it.
pm() { podman "${IMAGE_STORE[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file "$@"; }
if ! pm image exists "$IMAGE"; then
  fail "image $IMAGE in the project's image store ($CACHE/containers): build it with hack/image-build.sh"
  finish
fi

use_local_cluster image-smoke
find_helm_kubectl
[[ -x "$HELM" ]] || { fail "helm not found (e2e/cluster/cluster.sh build, or HELM=...)"; finish; }
[[ -x "$KUBECTL" ]] || { fail "kubectl not found (e2e/cluster/cluster.sh build, or KUBECTL=...)"; finish; }
kc() { "$KUBECTL" "$@"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tidal-image-smoke.XXXXXX")"
RUN_ID="$(date +%s | tail -c 6)$RANDOM"
RELEASE="tidal-image-$RUN_ID"
NS="$RELEASE"
POD="$RELEASE-0"
CONTAINER=""
CLUSTER_OBJECTS=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  if [[ -n "$CONTAINER" ]]; then
    pm logs "$CONTAINER" >"$WORK/operator.log" 2>&1 || true
    pm rm -f -t 5 "$CONTAINER" >/dev/null 2>&1 || true
  fi
  drop_smoke_objects "$NS" "${CLUSTER_OBJECTS[@]}"
  ((rc == 0)) || keep_operator_log "$WORK/operator.log" "${TMPDIR:-/tmp}/tidal-image-smoke-$RUN_ID.log"
  rm -rf "$WORK"
  stop_local_cluster
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ------------------------------------------------------------------ the image
# The kubelet sets no rlimits (a container inherits the runtime's); podman asks for a million
# open files and processes, which needs CAP_SYS_RESOURCE when that is above the current hard
# limit (not granted in some sandboxes: runc then fails with "error setting rlimits"). So ask
# for no more than this shell has, and at most what an operator could use.
hard() { local v; v=$(ulimit -H "$1"); if [[ "$v" =~ ^[0-9]+$ ]] && ((v < $2)); then echo "$v"; else echo "$2"; fi; }
ULIMITS=(--ulimit "nofile=$(hard -n 65536):$(hard -n 65536)" --ulimit "nproc=$(hard -u 4096):$(hard -u 4096)")
size=$(pm image inspect --format '{{.Size}}' "$IMAGE")
user=$(pm image inspect --format '{{.Config.User}}' "$IMAGE")
pass "image $IMAGE: $size bytes, USER $user"
# No shell: the chart's pod has nothing to exec into, and neither does this image.
if out=$(pm run --rm --network none "${ULIMITS[@]}" --entrypoint /bin/sh "$IMAGE" -c true 2>&1); then
  fail "the image has no shell (/bin/sh ran)" "$out"
elif grep -qi 'no such file or directory\|not found' <<<"$out"; then
  pass "the image has no shell (/bin/sh: $(grep -oi 'no such file or directory\|executable file not found[^:]*' <<<"$out" | head -n1))"
else
  fail "the image has no shell (/bin/sh failed, but not for want of the file)" "$out"
fi

# ------------------------------------------------------------------ the chart, rendered
port=""
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[[ -n "$port" ]] || { fail "find a free loopback port"; finish; }
if ! "$HELM" template "$RELEASE" "$CHART" --namespace "$NS" --set replicaCount=1 \
    --set adminPort="$port" --set operator.watchNamespace="$NS" --set operator.syncPeriod=5s \
    >"$WORK/chart.yaml" 2>"$WORK/helm.err"; then
  fail "helm template $CHART" "$(cat "$WORK/helm.err")"; finish
fi
yq -c 'select(.kind == "Deployment") | .spec.template.spec' "$WORK/chart.yaml" >"$WORK/podspec.json"
[[ -s "$WORK/podspec.json" ]] || { fail "the chart renders a Deployment"; finish; }
container=$(jq -c '.containers[0]' "$WORK/podspec.json")
# The chart's default image reference (tidal:<appVersion>) names this image: podman resolves a
# short name to localhost/ first. Only a note when TIDAL_IMAGE chose another.
chart_image=$(jq -r '.image' <<<"$container")
if [[ "$(pm image inspect --format '{{.Id}}' "$chart_image" 2>/dev/null)" == "$(pm image inspect --format '{{.Id}}' "$IMAGE")" ]]; then
  pass "the chart's image $chart_image is $IMAGE"
else
  echo "note: the chart's image $chart_image is not $IMAGE here; running $IMAGE"
fi
# The pod and container securityContexts, the container's winning, as the kubelet merges them.
sc=$(jq -c '(.securityContext // {}) * (.containers[0].securityContext // {})' "$WORK/podspec.json")

# env: literal values and the two downward-API fields the chart uses; $(VAR) in args expanded
# from them, as the kubelet does.
declare -A envs=()
envs[KUBERNETES_SERVICE_HOST]=""
# One line per variable: name, then "=value" or "field path" (no tab-separated fields: read
# would merge an empty value into the next).
while read -r name how; do
  case "$how" in
    =*) envs[$name]=${how#=} ;;
    "field metadata.name") envs[$name]=$POD ;;
    "field metadata.namespace") envs[$name]=$NS ;;
    *) fail "env $name: the smoke does not know how to set it ($how)"; finish ;;
  esac
done < <(jq -r '.env // [] | .[] | "\(.name) \(if .valueFrom then "field \(.valueFrom.fieldRef.fieldPath // "?")" else "=\(.value // "")" end)"' <<<"$container")
mapfile -t args < <(jq -r '.args[]' <<<"$container")
for i in "${!args[@]}"; do
  for name in "${!envs[@]}"; do args[i]=${args[i]//"\$($name)"/${envs[$name]}}; done
done

# securityContext -> podman flags (see the header); unknown settings fail.
flags=()
uid=$(jq -r '.runAsUser // empty' <<<"$sc")
gid=$(jq -r '.runAsGroup // empty' <<<"$sc")
[[ -n "$uid" && -n "$gid" ]] || { fail "the chart sets runAsUser and runAsGroup" "$sc"; finish; }
flags+=(--user "$uid:$gid")
fsgroup=$(jq -r '.fsGroup // empty' <<<"$sc")
[[ -z "$fsgroup" ]] || flags+=(--group-add "$fsgroup")
if [[ "$(jq -r '.runAsNonRoot' <<<"$sc")" == true ]]; then
  if [[ "$uid" == 0 || ! "$user" =~ ^[1-9][0-9]*(:[0-9]+)?$ ]]; then
    fail "runAsNonRoot: uid $uid, image USER $user"; finish
  fi
  pass "runAsNonRoot holds: runAsUser $uid, image USER $user (numeric, as the kubelet needs)"
fi
[[ "$(jq -r '.readOnlyRootFilesystem' <<<"$sc")" == true ]] && flags+=(--read-only --read-only-tmpfs=false)
[[ "$(jq -r '.allowPrivilegeEscalation' <<<"$sc")" == false ]] && flags+=(--security-opt no-new-privileges)
while read -r cap; do [[ -z "$cap" ]] || flags+=(--cap-drop "$cap"); done < <(jq -r '.capabilities.drop // [] | .[]' <<<"$sc")
while read -r cap; do [[ -z "$cap" ]] || flags+=(--cap-add "$cap"); done < <(jq -r '.capabilities.add // [] | .[]' <<<"$sc")
[[ "$(jq -r '.privileged // false' <<<"$sc")" == false ]] || { fail "the chart asks for a privileged container"; finish; }
case "$(jq -r '.seccompProfile.type // "RuntimeDefault"' <<<"$sc")" in
  RuntimeDefault) ;;
  Unconfined) flags+=(--security-opt seccomp=unconfined) ;;
  *) fail "seccompProfile $(jq -c .seccompProfile <<<"$sc") is not mapped"; finish ;;
esac
unknown=$(jq -r 'keys - ["runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "readOnlyRootFilesystem",
  "allowPrivilegeEscalation", "privileged", "capabilities", "seccompProfile"] | join(", ")' <<<"$sc")
[[ -z "$unknown" ]] || { fail "securityContext settings the smoke does not map: $unknown"; finish; }
memory=$(jq -r '.resources.limits.memory // empty' <<<"$container")
[[ -z "$memory" ]] || flags+=(--memory "$(sed 's/Mi$/m/; s/Gi$/g/' <<<"$memory")")
flags+=("${ULIMITS[@]}")
pass "chart rendered (release $RELEASE): ${#args[@]} args, securityContext $sc"

# ------------------------------------------------------------------ cluster side
kc create namespace "$NS" >/dev/null || { fail "create namespace $NS"; finish; }
if ! kc get crd autoscalers.autoscaling.tidal.dev >/dev/null 2>&1; then
  kc create -f "$TIDAL_ROOT/crds/autoscaler.yaml" >/dev/null 2>&1 || true
fi
wait_for "CRD autoscalers.autoscaling.tidal.dev established" \
  kc wait --for=condition=Established crd/autoscalers.autoscaling.tidal.dev --timeout=5s || finish
CLUSTER_OBJECTS+=("clusterrole/$RELEASE" "clusterrolebinding/$RELEASE")
yq -y 'select(.kind == "ServiceAccount" or .kind == "ClusterRole" or .kind == "ClusterRoleBinding"
  or .kind == "Role" or .kind == "RoleBinding")' "$WORK/chart.yaml" >"$WORK/rbac.yaml"
if out=$(kc apply -f "$WORK/rbac.yaml" 2>&1); then pass "chart ServiceAccount and RBAC applied in $NS"; else fail "apply the chart's RBAC" "$out"; finish; fi
SA=$(jq -r '.serviceAccountName' "$WORK/podspec.json")

# What the kubelet mounts for automountServiceAccountToken: token, ca.crt, namespace. Readable
# by uid 65532 (0444), mounted read-only.
kc config view --minify --raw --flatten -o json >"$WORK/kubeconfig.json" || { fail "read the kubeconfig"; finish; }
server=$(jq -r '.clusters[0].cluster.server' "$WORK/kubeconfig.json")
hostport=${server#https://}; hostport=${hostport%%/*}
envs[KUBERNETES_SERVICE_HOST]=${hostport%:*}
envs[KUBERNETES_SERVICE_PORT]=${hostport##*:}
SECRETS="$WORK/serviceaccount"
mkdir -p "$SECRETS"
jq -r '.clusters[0].cluster."certificate-authority-data"' "$WORK/kubeconfig.json" | base64 -d >"$SECRETS/ca.crt"
rm -f "$WORK/kubeconfig.json"
printf '%s' "$NS" >"$SECRETS/namespace"
if ! kc create token "$SA" -n "$NS" --duration=1h >"$SECRETS/token" 2>"$WORK/token.err"; then
  fail "kubectl create token $SA (the pod's ServiceAccount token)" "$(cat "$WORK/token.err")"; finish
fi
chmod 0755 "$SECRETS"; chmod 0444 "$SECRETS"/*
pass "ServiceAccount token, ca.crt and namespace for $NS/$SA, as the kubelet mounts them"

env_flags=()
for name in "${!envs[@]}"; do env_flags+=(-e "$name=${envs[$name]}"); done

# ------------------------------------------------------------------ the container
CONTAINER="$RELEASE"
t_run=$(now)
if ! out=$(pm run -d --name "$CONTAINER" --network host "${flags[@]}" "${env_flags[@]}" \
    -v "$SECRETS:/var/run/secrets/kubernetes.io/serviceaccount:ro" "$IMAGE" "${args[@]}" 2>&1); then
  fail "podman run $IMAGE" "$out"; finish
fi
# Start-up: from `podman run` to /ready 200 (the chart's readiness probe), polled every 0.05 s;
# also from the moment podman saw the container's process started (its State.StartedAt).
# Whether it still runs is asked once a second only: `podman inspect` takes longer than a poll.
ready=""
deadline=$((SECONDS + TIMEOUT))
polls=0
while ((SECONDS < deadline)); do
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready")" == 200 ]]; then ready=$(now); break; fi
  if ((++polls % 20 == 0)); then
    [[ "$(pm inspect --format '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" == true ]] || break
  fi
  sleep 0.05
done
started=$(pm inspect --format '{{.State.StartedAt.Unix}}.{{printf "%09d" .State.StartedAt.Nanosecond}}' "$CONTAINER" 2>/dev/null || echo "$t_run")
if [[ -z "$ready" ]]; then
  fail "/ready answers 200 on port $port" "$(pm logs "$CONTAINER" 2>&1 | tail -n 40)"; finish
fi
STARTUP_RUN=$(secs "$t_run" "$ready")
STARTUP_PROCESS=$(secs "$started" "$ready")
pass "/ready 200: ${STARTUP_RUN} s after podman run, ${STARTUP_PROCESS} s after the process started"

# The settings in force, read from the kernel for the container's process.
pid=$(pm inspect --format '{{.State.Pid}}' "$CONTAINER")
status=$(cat "/proc/$pid/status")
field() { awk -v k="$1:" '$1 == k {$1 = ""; sub(/^ /, ""); print}' <<<"$status"; }
expect() { # DESCRIPTION WANT GOT
  if [[ "$2" == "$3" ]]; then pass "$1: $3"; else fail "$1: want $2, got $3"; fi
}
expect "process uids (real, effective, saved, fs)" "$uid $uid $uid $uid" "$(field Uid | tr -s '\t ' ' ')"
expect "process gids" "$gid $gid $gid $gid" "$(field Gid | tr -s '\t ' ' ')"
expect "effective capabilities" 0000000000000000 "$(field CapEff)"
expect "bounding capabilities" 0000000000000000 "$(field CapBnd)"
expect "no_new_privs" 1 "$(field NoNewPrivs)"
expect "seccomp (2: filtering)" 2 "$(field Seccomp)"
expect "root file system mount" ro "$(awk '$5 == "/" {split($6, o, ","); print o[1]}' "/proc/$pid/mountinfo")"

# ------------------------------------------------------------------ it scales a Deployment
# README's walkthrough, in this run's namespace: web at 1 replica (20m of a 100m request), its
# AutoScaler (CPU 50 %), then 150m per pod.
kc apply -n "$NS" -f "$TIDAL_ROOT/e2e/examples/web.yaml" >/dev/null || { fail "apply e2e/examples/web.yaml"; finish; }
# shellcheck disable=SC2317  # the checks wait_for runs
metrics_seen() {
  kc get autoscaler.autoscaling.tidal.dev web -n "$NS" -o json \
    | jq -e '.status.currentMetrics // [] | map(.resource.current.averageUtilization // empty) | length >= 1'
}
# shellcheck disable=SC2317
scaled_up() { (($(kc get deployment web -n "$NS" -o jsonpath='{.spec.replicas}') > 1)); }
wait_for "web's pod Ready" kc wait -n "$NS" --for=condition=Ready pod -l app=web --timeout=5s || finish
wait_for "the AutoScaler's status shows the pods' CPU utilization (the operator reconciled it)" metrics_seen || finish
kc annotate pods -n "$NS" -l app=web kwok.x-k8s.io/usage-cpu=150m --overwrite >/dev/null
t_load=$(now)
wait_for "web scaled up by the operator in the image after the load change" scaled_up || finish
REACTION=$(secs "$t_load" "$(now)")
replicas=$(kc get deployment web -n "$NS" -o jsonpath='{.spec.replicas}')
pass "web: 1 -> $replicas replicas, ${REACTION} s after the load change"

managers=$(kc get deployment web -n "$NS" --show-managed-fields -o json \
  | jq -r '.metadata.managedFields[] | select(.subresource == "scale") | .manager' | sort -u | paste -sd, -)
expect "field manager of web's scale subresource" tidal "$managers"
event=$(kc get events.events.k8s.io -n "$NS" -o json | jq -r '.items[]
  | select(.regarding.kind == "AutoScaler" and .reason == "SuccessfulRescale")
  | "\(.reportingController)/\(.reportingInstance)"' | sort -u | paste -sd, -)
expect "SuccessfulRescale event reported by (controller/instance)" "tidal/$POD" "$event"
holder=$(kc get lease -n "$NS" -o jsonpath='{.items[0].spec.holderIdentity}')
expect "Lease holder" "$POD" "$holder"

# ------------------------------------------------------------------ stop, as the kubelet does
# SIGTERM and the chart's grace period: the operator finishes, releases the Lease, exits 0.
grace=$(jq -r '.terminationGracePeriodSeconds // 30' "$WORK/podspec.json")
t_stop=$(now)
pm stop -t "$grace" "$CONTAINER" >/dev/null 2>&1
STOP=$(secs "$t_stop" "$(now)")
expect "exit status after SIGTERM" 0 "$(pm inspect --format '{{.State.ExitCode}}' "$CONTAINER")"
holder=$(kc get lease -n "$NS" -o jsonpath='{.items[0].spec.holderIdentity}')
expect "Lease released on shutdown (holder)" "(none)" "${holder:-(none)}"
pm logs "$CONTAINER" >"$WORK/operator.log" 2>&1
AUTHZ='forbidden|unauthorized|(^|[^0-9.])403([^0-9]|$)'
if grep -qiE "$AUTHZ" "$WORK/operator.log"; then
  fail "operator log has no authorization errors" "$(grep -iE "$AUTHZ" "$WORK/operator.log" | head -n 10)"
else
  pass "operator log has no authorization errors"
fi

echo
echo "image-smoke: IMAGE=$IMAGE SIZE_BYTES=$size STARTUP_S=$STARTUP_RUN (process start to ready: $STARTUP_PROCESS) REACTION_S=$REACTION STOP_S=$STOP"
finish
