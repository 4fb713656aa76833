#!/usr/bin/env bash
# Tidal's local control plane: real kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd and metrics-server, with nodes and pods simulated by
# kwok, all as loopback processes started by kwokctl's binary runtime; and a
# custom/external metrics adapter (custom-metrics-apiserver's test adapter),
# which cluster.sh starts beside them.
#
# Every binary is built from Go modules (the only reachable source here) by
# build-stack.sh beside this script and cached outside the repo under
# ${TIDAL_CACHE:-$HOME/.cache/tidal}, keyed by version (stack-env.sh). See
# e2e/README.md for figures and background.
#
#   cluster.sh build        build missing binaries (idempotent)
#   cluster.sh up           build if needed, start or reuse the cluster
#   cluster.sh down         stop the cluster, remove its state
#   cluster.sh status       exit 0 when the cluster is healthy
#   cluster.sh env          print `export KUBECONFIG=...` (and PATH) for eval
#   cluster.sh kubeconfig   print the kubeconfig path
#   cluster.sh kubectl ...  run the cluster's kubectl against it
#   cluster.sh rss          resident memory of the cluster's processes
#   cluster.sh config       print the kwokctl configuration `up` would use
#   cluster.sh nodes        print the fake Node manifests (also used by e2e/kind)
#   cluster.sh adapter-url  print the metrics adapter's write API base URL
#                           (POST <url>/write-metrics/namespaces/NS/pods/NAME/METRIC, body
#                           a quantity in JSON, e.g. '"250m"')
#   cluster.sh restart-component NAME [--flag=value ...]
#                           stop one component (SIGTERM, then wait for it to exit), wait
#                           TIDAL_RESTART_DOWN_SECONDS (default 0), and
#                           start it again with the same command line, directory and
#                           environment (kwokctl has no per-component stop/start); NAME is
#                           a pid file under kwok/clusters/<name>/pids, e.g.
#                           kube-controller-manager, metrics-server. Each --flag=value
#                           replaces that flag's value, or is added (the scale harness raises
#                           kube-controller-manager's --kube-api-qps/--kube-api-burst this
#                           way). Prints the stop and start times (epoch ms). Disruptive:
#                           never on the shared cluster while others test on it.
#
# Settings (environment): TIDAL_CACHE, TIDAL_CLUSTER_DIR, TIDAL_CLUSTER_NAME,
# TIDAL_HPA_SYNC_PERIOD (5s), TIDAL_HPA_DOWNSCALE_STABILIZATION (30s),
# TIDAL_METRIC_RESOLUTION (10s), TIDAL_KUBELET_REQUEST_TIMEOUT (5s),
# TIDAL_POD_READY_DELAY (5s), TIDAL_NODES (2), TIDAL_NODE_CPU (64),
# TIDAL_NODE_MEMORY (256Gi), TIDAL_NODE_PODS (110), TIDAL_UP_TIMEOUT (120),
# and TIDAL_{K8S,ETCD,KWOK,METRICS_SERVER,METRICS_ADAPTER,HELM}_VERSION.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=stack-env.sh
source "$HERE/stack-env.sh"

# cmd_build: build-stack.sh, which builds only what is missing (and re-checks the rest).
cmd_build() { "$HERE/build-stack.sh" 9>&-; }

# ---------------------------------------------------------------- cluster
# State lives in one temp directory (never ~/.kube or ~/.kwok), at a fixed
# path so that `up`, `env`, `status` and `down` from any shell find it.
CLUSTER_NAME="${TIDAL_CLUSTER_NAME:-tidal}"
CLUSTER_DIR="${TIDAL_CLUSTER_DIR:-${TMPDIR:-/tmp}/tidal-cluster-$(id -u)}"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig"
KWOK_DIR="$CLUSTER_DIR/kwok"
CONFIG_PATH="$CLUSTER_DIR/kwokctl.yaml"

# Test-speed settings; each can be overridden from the environment.
HPA_SYNC_PERIOD="${TIDAL_HPA_SYNC_PERIOD:-5s}"
HPA_DOWNSCALE_STABILIZATION="${TIDAL_HPA_DOWNSCALE_STABILIZATION:-30s}"
# metrics-server refuses a resolution below 10s.
METRIC_RESOLUTION="${TIDAL_METRIC_RESOLUTION:-10s}"
# Kept under 0.9 x resolution as metrics-server demands; loopback answers in ms.
KUBELET_REQUEST_TIMEOUT="${TIDAL_KUBELET_REQUEST_TIMEOUT:-5s}"
# Default time from Running to Ready for every simulated pod; a pod can set its
# own with the annotation pod-ready.stage.kwok.x-k8s.io/delay (a Go duration).
POD_READY_DELAY="${TIDAL_POD_READY_DELAY:-5s}"
NODE_COUNT="${TIDAL_NODES:-2}"
NODE_CPU="${TIDAL_NODE_CPU:-64}"
NODE_MEMORY="${TIDAL_NODE_MEMORY:-256Gi}"
NODE_PODS="${TIDAL_NODE_PODS:-110}"
UP_TIMEOUT="${TIDAL_UP_TIMEOUT:-120}"

# fd 9 holds the cluster lock: the processes kwokctl starts must not inherit it.
kwokctl() { KWOK_WORKDIR="$KWOK_DIR" "$BIN/kwokctl" --name "$CLUSTER_NAME" "$@" 9>&-; }
kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

duration_ms() { # Go-style duration (ms, s, m) to milliseconds
  local d=$1
  case "$d" in
    *ms) echo "${d%ms}" ;;
    *s) echo $(( ${d%s} * 1000 )) ;;
    *m) echo $(( ${d%m} * 60000 )) ;;
    *) die "unsupported duration '$d' (use e.g. 500ms, 5s, 1m)" ;;
  esac
}

# write_config: the kwokctl configuration, as a multi-document YAML file.
write_config() {
  local ready_ms; ready_ms=$(duration_ms "$POD_READY_DELAY")
  cat <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  # Every component listens on loopback only (kwokctl's default is 0.0.0.0).
  bindAddress: 127.0.0.1
  kubeApiserverBinary: $BIN/kube-apiserver
  kubeControllerManagerBinary: $BIN/kube-controller-manager
  kubeSchedulerBinary: $BIN/kube-scheduler
  kubectlBinary: $BIN/kubectl
  etcdBinary: $BIN/etcd
  kwokControllerBinary: $BIN/kwok
  metricsServerBinary: $BIN/metrics-server
  metricsServerManifests:
  - $ASSETS/metrics-server
  enableMetricsServer: true
  # Anything kwokctl caches stays inside this cluster's temp dir.
  cacheDir: $KWOK_DIR/cache
componentsPatches:
- name: kube-controller-manager
  extraArgs:
  - key: horizontal-pod-autoscaler-sync-period
    value: $HPA_SYNC_PERIOD
  - key: horizontal-pod-autoscaler-downscale-stabilization
    value: $HPA_DOWNSCALE_STABILIZATION
- name: metrics-server
  extraArgs:
  - key: metric-resolution
    value: $METRIC_RESOLUTION
    override: true
  - key: kubelet-request-timeout
    value: $KUBELET_REQUEST_TIMEOUT
YAML
  # kwok's own node stages and pod completion/deletion, unchanged.
  local f
  for f in "$ASSETS"/stages/*.yaml; do echo "---"; cat "$f"; done
  # Pod start in two steps so that readiness can lag (shared with e2e/kind).
  sed "s/__TIDAL_POD_READY_DELAY_MS__/$ready_ms/" "$HERE/stages/pod-readiness.yaml"
}

# node_manifests: fake nodes for kwok; the annotation tells metrics-server
# where kwok serves this node's kubelet resource metrics.
node_manifests() {
  local i
  for ((i = 0; i < NODE_COUNT; i++)); do
    cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
    metrics.k8s.io/resource-metrics-path: /metrics/nodes/kwok-node-$i/metrics/resource
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
spec:
  taints:
  - key: kwok.x-k8s.io/node
    value: fake
    effect: NoSchedule
status:
  allocatable: {cpu: "$NODE_CPU", memory: $NODE_MEMORY, pods: "$NODE_PODS"}
  capacity: {cpu: "$NODE_CPU", memory: $NODE_MEMORY, pods: "$NODE_PODS"}
YAML
  done
}

# cluster_pids: every running process started for this cluster, found by its
# working directory or its arguments naming the cluster's temp dir.
cluster_pids() {
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
    [[ "$cmd" == *"$KWOK_DIR/"* ]] && echo "${p#/proc/}"
  done
  return 0
}

# ------------------------------------------------------ custom/external metrics adapter
# kwokctl knows nothing of it, so cluster.sh starts it the way kwokctl starts metrics-server in
# its binary runtime: the cluster's admin kubeconfig for its client, for authentication and for
# authorization delegation, the admin certificate as its serving certificate, loopback only;
# registered through an ExternalName Service pointing at 127.0.0.1 and APIServices with the
# port (the pattern kwokctl applies to metrics-server's manifest). Its write API's URL is kept as
# an annotation of the APIServices, so tests find it through the cluster alone.
ADAPTER_NAME=tidal-metrics-adapter
ADAPTER_NAMESPACE=kube-system
ADAPTER_URL_ANNOTATION=e2e.tidal.dev/write-metrics-url
ADAPTER_APISERVICES=(v1beta1.custom.metrics.k8s.io v1beta1.external.metrics.k8s.io)
ADAPTER_PIDFILE="$CLUSTER_DIR/metrics-adapter.pid"
ADAPTER_PORTS="$CLUSTER_DIR/metrics-adapter.ports"

adapter_manifests() { # SECURE_PORT WRITE_URL
  local port=$1 url=$2 name group
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: $ADAPTER_NAME, namespace: $ADAPTER_NAMESPACE}
spec: {type: ExternalName, externalName: 127.0.0.1}
YAML
  for name in "${ADAPTER_APISERVICES[@]}"; do
    group=${name#v1beta1.}
    cat <<YAML
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: $name
  annotations: {$ADAPTER_URL_ANNOTATION: "$url"}
spec:
  group: $group
  version: v1beta1
  service: {name: $ADAPTER_NAME, namespace: $ADAPTER_NAMESPACE, port: $port}
  # As metrics-server's registration here: it serves with the cluster's admin certificate.
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
  done
}

adapter_available() {
  local name avail
  for name in "${ADAPTER_APISERVICES[@]}"; do
    avail=$(kc get apiservice "$name" -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) || return 1
    [[ "$avail" == True ]] || return 1
  done
  kc get --raw /apis/custom.metrics.k8s.io/v1beta1 2>/dev/null | grep -q '"kind":"APIResourceList"'
}

start_metrics_adapter() {
  local dir="$KWOK_DIR/clusters/$CLUSTER_NAME"
  local kubeconfig="$dir/kubeconfig.yaml" pki="$dir/pki"
  [[ -f "$kubeconfig" && -f "$pki/admin.crt" ]] || die "no kubeconfig.yaml or pki/admin.crt in $dir (kwokctl layout changed?)"
  rm -f "$ADAPTER_PORTS"
  # Its own session, stdin from /dev/null, like kwokctl's components; the lock stays here.
  setsid "$BIN/$ADAPTER_NAME" --bind-address=127.0.0.1 --secure-port=0 \
    --write-address=127.0.0.1:0 --ports-file="$ADAPTER_PORTS" \
    --lister-kubeconfig="$kubeconfig" --authentication-kubeconfig="$kubeconfig" \
    --authorization-kubeconfig="$kubeconfig" \
    --tls-cert-file="$pki/admin.crt" --tls-private-key-file="$pki/admin.key" \
    </dev/null >>"$dir/logs/metrics-adapter.log" 2>&1 9>&- &
  echo $! >"$ADAPTER_PIDFILE"
  wait_for 30 "the metrics adapter to listen" test -s "$ADAPTER_PORTS"
  local secure write
  secure=$(sed -n 's/^secure_port=//p' "$ADAPTER_PORTS")
  write=$(sed -n 's/^write_port=//p' "$ADAPTER_PORTS")
  adapter_manifests "$secure" "http://127.0.0.1:$write" | kc apply -f - >/dev/null
  wait_for "$UP_TIMEOUT" "the custom and external metrics APIServices to be Available" adapter_available
  log "metrics adapter serving on 127.0.0.1:$secure, write API at http://127.0.0.1:$write"
}

stop_metrics_adapter() {
  [[ -f "$ADAPTER_PIDFILE" ]] || return 0
  local pid; pid=$(cat "$ADAPTER_PIDFILE")
  if [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$BIN/$ADAPTER_NAME "* ]]; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$ADAPTER_PIDFILE"
}

cmd_adapter_url() {
  [[ -f "$KUBECONFIG_PATH" ]] || die "no cluster at $CLUSTER_DIR: run '$0 up' first"
  kc get apiservice "${ADAPTER_APISERVICES[0]}" \
    -o jsonpath="{.metadata.annotations.${ADAPTER_URL_ANNOTATION//./\\.}}"
  echo
}

healthy() {
  [[ -f "$KUBECONFIG_PATH" ]] || return 1
  [[ -n "$(cluster_pids)" ]] || return 1
  kc get --raw /readyz >/dev/null 2>&1 || return 1
  local avail
  avail=$(kc get apiservice v1beta1.metrics.k8s.io -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) || return 1
  [[ "$avail" == True ]] || return 1
  metrics_api_answers || return 1
  local ready
  ready=$(kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c '^True$' || true)
  [[ "$ready" -ge "$NODE_COUNT" ]] || return 1
  adapter_available
}

cmd_status() {
  if healthy; then
    log "cluster '$CLUSTER_NAME' is healthy (KUBECONFIG=$KUBECONFIG_PATH)"
    return 0
  fi
  log "cluster '$CLUSTER_NAME' is not running or not healthy"
  return 1
}

# assert_no_downloads CONFIG: kwokctl's dry run lists every step it would
# take. It prints "# Download <src> to <dest>" for every binary, even a local
# one (which it only symlinks), and "# Build <src> by kubectl kustomize" for
# manifests: any such source that is not a local absolute path would be
# fetched from the network, which this machine cannot do.
assert_no_downloads() {
  local out remote
  out=$(kwokctl create cluster --config "$1" --kubeconfig "$CLUSTER_DIR/dry-run.kubeconfig" --dry-run 2>&1) \
    || die "kwokctl dry run failed: $out"
  rm -f "$CLUSTER_DIR/dry-run.kubeconfig"
  remote=$(grep -E '^# (Download|Build) ' <<<"$out" | grep -vE '^# (Download|Build) /' || true)
  if [[ -n "$remote" ]]; then
    printf '%s\n' "$remote" >&2
    die "kwokctl would fetch the above; every binary and manifest must come from $BIN and $ASSETS"
  fi
  grep -qE '^# Download /' <<<"$out" || die "kwokctl dry run printed no binary steps; cannot verify offline start"
}

wait_until() { # SECONDS COMMAND...: 0 once COMMAND succeeds, 1 when SECONDS have passed
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

wait_for() { # SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  wait_until "$seconds" "$@" \
    || die "timed out after ${seconds}s waiting for $what (logs: $KWOK_DIR/clusters/$CLUSTER_NAME/logs)"
}

# exited_components: the components kwokctl started whose process is gone.
exited_components() {
  local f
  for f in "$KWOK_DIR/clusters/$CLUSTER_NAME"/pids/*.pid; do
    [[ -e "$f" ]] || continue
    [[ -e "/proc/$(cat "$f")" ]] || basename "$f" .pid
  done
}

# metrics_api_answers: the aggregated API reaches metrics-server. (Its node
# list stays empty until pods run: metrics-server drops nodes whose CPU and
# memory usage are zero, and a kwok node's usage is the sum of its pods'.)
metrics_api_answers() {
  kc get --raw /apis/metrics.k8s.io/v1beta1/nodes 2>/dev/null | grep -q '"kind":"NodeMetricsList"'
}

cmd_up() {
  exec 9>"${CLUSTER_DIR}.lock"
  flock -w 600 9 || die "another cluster.sh holds ${CLUSTER_DIR}.lock"
  cmd_build
  local want
  want=$(write_config)
  if [[ -f "$CONFIG_PATH" ]] && [[ "$want" == "$(cat "$CONFIG_PATH")" ]] && healthy; then
    log "reusing healthy cluster '$CLUSTER_NAME'"
    cmd_env_hint
    return 0
  fi
  if [[ -n "$(cluster_pids)" || -d "$KWOK_DIR" ]]; then
    log "replacing the existing cluster (unhealthy or configured differently)"
    down_locked
  fi
  mkdir -p "$CLUSTER_DIR"
  printf '%s\n' "$want" >"$CONFIG_PATH"
  local start=$SECONDS attempt exited
  assert_no_downloads "$CONFIG_PATH"
  # kwokctl starts metrics-server without waiting for kube-apiserver to serve; on a loaded
  # machine metrics-server can ask too early, exit ("connection refused"), and stay down (seen
  # on 2 busy cores). A component that exited during start-up gets one fresh cluster.
  for attempt in 1 2; do
    log "starting cluster '$CLUSTER_NAME' in $CLUSTER_DIR"
    if ! kwokctl create cluster --config "$CONFIG_PATH" --kubeconfig "$KUBECONFIG_PATH" \
      --wait "${UP_TIMEOUT}s" >"$CLUSTER_DIR/create.log" 2>&1; then
      cat "$CLUSTER_DIR/create.log" >&2
      die "kwokctl create cluster failed"
    fi
    log "control plane up after $((SECONDS - start))s"
    node_manifests | kc apply -f - >/dev/null
    wait_for "$UP_TIMEOUT" "kwok nodes to be Ready" \
      kc wait --for=condition=Ready node -l type=kwok --timeout=5s
    wait_until "$UP_TIMEOUT" metrics_api_answers && break
    exited=$(exited_components | tr '\n' ' ')
    if [[ "$attempt" == 1 && -n "$exited" ]]; then
      log "exited during start-up: ${exited}(logs: $KWOK_DIR/clusters/$CLUSTER_NAME/logs); starting afresh"
      down_locked
      mkdir -p "$CLUSTER_DIR"
      printf '%s\n' "$want" >"$CONFIG_PATH"
      continue
    fi
    die "timed out after ${UP_TIMEOUT}s waiting for the metrics.k8s.io API${exited:+ (exited: $exited)} (logs: $KWOK_DIR/clusters/$CLUSTER_NAME/logs)"
  done
  start_metrics_adapter
  healthy || die "cluster came up but is not healthy"
  log "cluster ready after $((SECONDS - start))s"
  cmd_env_hint
}

down_locked() {
  stop_metrics_adapter
  if [[ -x "$BIN/kwokctl" && -d "$KWOK_DIR" ]]; then
    kwokctl delete cluster --kubeconfig "$KUBECONFIG_PATH" >"$CLUSTER_DIR/delete.log" 2>&1 \
      || log "kwokctl delete cluster failed (see $CLUSTER_DIR/delete.log); stopping processes directly"
  fi
  # Whatever kwokctl left running is ours by construction: stop it by pid.
  local -a pids
  local tries=0
  mapfile -t pids < <(cluster_pids)
  if ((${#pids[@]} > 0)); then
    log "stopping leftover processes: ${pids[*]} "
    kill "${pids[@]}" 2>/dev/null || true
    while [[ -n "$(cluster_pids)" ]] && ((tries++ < 20)); do sleep 0.5; done
    mapfile -t pids < <(cluster_pids)
    ((${#pids[@]} == 0)) || kill -9 "${pids[@]}" 2>/dev/null || true
  fi
  [[ -z "$(cluster_pids)" ]] || die "processes still running: $(cluster_pids | tr '\n' ' ')"
  rm -rf "$CLUSTER_DIR"
}

cmd_down() {
  exec 9>"${CLUSTER_DIR}.lock"
  flock -w 600 9 || die "another cluster.sh holds ${CLUSTER_DIR}.lock"
  down_locked
  log "cluster '$CLUSTER_NAME' is down; no processes left"
}

cmd_env() {
  [[ -f "$KUBECONFIG_PATH" ]] || die "no cluster at $CLUSTER_DIR: run '$0 up' first"
  printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_PATH"
  # shellcheck disable=SC2016  # "$PATH" is for the shell that evals this, not expanded here
  printf 'export PATH=%q:"$PATH"\n' "$BIN"
}

cmd_env_hint() {
  log "use it with: eval \"\$($0 env)\""
}

cmd_kubeconfig() {
  [[ -f "$KUBECONFIG_PATH" ]] || die "no cluster at $CLUSTER_DIR: run '$0 up' first"
  echo "$KUBECONFIG_PATH"
}

cmd_rss() { # resident memory of the cluster's processes, in MiB
  local p total=0 kb name
  for p in $(cluster_pids); do
    kb=$({ awk '/^VmRSS:/{print $2}' "/proc/$p/status"; } 2>/dev/null || echo 0)
    name=$({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | awk '{print $1}'); name=${name##*/}
    printf '%-26s %8d KiB\n' "$name" "${kb:-0}"
    total=$((total + ${kb:-0}))
  done
  printf '%-26s %8d KiB (%d MiB)\n' total "$total" $((total / 1024))
}

# restart-component NAME: what kwokctl's binary runtime does when it starts a component (its
# own session, stdin from /dev/null, output appended to logs/NAME.log, pid in pids/NAME.pid),
# for one component whose running process is the template.
cmd_restart_component() {
  local name=${1:-} dir="$KWOK_DIR/clusters/$CLUSTER_NAME"
  shift || true
  local -a changes=("$@")
  local have="" f change
  for f in "$dir"/pids/*.pid; do [[ -e "$f" ]] && have+="$(basename "$f" .pid) "; done
  [[ -n "$name" ]] || die "usage: $0 restart-component NAME (one of: $have)"
  local pidfile="$dir/pids/$name.pid"
  [[ -f "$pidfile" ]] || die "cluster '$CLUSTER_NAME' has no component '$name' (have: $have)"
  exec 9>"${CLUSTER_DIR}.lock"
  flock -w 600 9 || die "another cluster.sh holds ${CLUSTER_DIR}.lock"
  local pid; pid=$(cat "$pidfile")
  [[ -r "/proc/$pid/cmdline" ]] || die "component '$name' (pid $pid) is not running"
  local -a args envs
  mapfile -d '' args <"/proc/$pid/cmdline"
  mapfile -d '' envs <"/proc/$pid/environ"
  local cwd; cwd=$(readlink "/proc/$pid/cwd")
  [[ "${args[0]}" == "$dir/"* ]] || die "pid $pid is not $name of cluster '$CLUSTER_NAME': ${args[0]}"
  for change in "${changes[@]}"; do
    [[ "$change" == --?*=* ]] || die "restart-component: '$change' is not --flag=value"
    local -a kept=()
    for f in "${args[@]}"; do [[ "$f" == "${change%%=*}="* ]] || kept+=("$f"); done
    args=("${kept[@]}" "$change")
  done
  kill -TERM "$pid"
  local tries=0
  while [[ -e "/proc/$pid" ]] && ((tries++ < 200)); do sleep 0.1; done
  [[ ! -e "/proc/$pid" ]] || { log "$name (pid $pid) ignored SIGTERM for 20s; killing it"; kill -9 "$pid" 2>/dev/null || true; sleep 0.2; }
  local stopped; stopped=$(date +%s%3N)
  # TIDAL_RESTART_DOWN_SECONDS keeps it stopped that long: an outage, not only a restart.
  local down=${TIDAL_RESTART_DOWN_SECONDS:-0}
  [[ "$down" =~ ^[0-9]+$ ]] || die "TIDAL_RESTART_DOWN_SECONDS='$down' is not a whole number of seconds"
  if ((down > 0)); then log "$name stopped; starting it again in ${down}s"; sleep "$down"; fi
  (cd "$cwd" && exec env -i "${envs[@]}" setsid "${args[@]}" </dev/null >>"$dir/logs/$name.log" 2>&1 9>&-) &
  local new=$!
  echo "$new" >"$pidfile"
  local started; started=$(date +%s%3N)
  sleep 0.5
  [[ -e "/proc/$new" ]] || die "$name exited at once after the restart; see $dir/logs/$name.log"
  log "restarted $name: pid $pid -> $new"
  echo "stopped_ms=$stopped started_ms=$started pid=$new"
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  kubeconfig) cmd_kubeconfig ;;
  rss) cmd_rss ;;
  kubectl) shift; kc "$@" ;;
  config) write_config ;;
  nodes) node_manifests ;;
  adapter-url) cmd_adapter_url ;;
  restart-component) shift; cmd_restart_component "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
