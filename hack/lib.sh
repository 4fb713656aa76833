# shellcheck shell=bash
# Sourced by the hack/ scripts: what more than one of them needs.
#
#   cargo:                    use_cache_target_dir
#   the local control plane:  use_local_cluster, install_crd, use_local_kubeconfig
#   the stack's tools:        newest_cached, find_helm_kubectl
#   a checks report:          report_init, pass, fail, section, finish
#   the operator image:       image_name, image_store_flags
#
# Sourcing it only defines functions and TIDAL_ROOT, CLUSTER_SH, CACHE.

TIDAL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_SH="$TIDAL_ROOT/e2e/cluster/cluster.sh"
CACHE="${TIDAL_CACHE:-$HOME/.cache/tidal}"

# use_cache_target_dir: exports CARGO_TARGET_DIR, by default $CACHE/target (outside the clone,
# as the Makefile sets it), so that a fresh clone reuses compiled crates.
use_cache_target_dir() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
}

# ------------------------------------------------------------------ the local control plane

# use_local_cluster TAG: brings the local control plane up unless a healthy one is running,
# takes it down again on exit if this script started it (TIDAL_KEEP_CLUSTER=1 keeps it), and
# exports its KUBECONFIG and PATH (its kubectl and helm). TAG prefixes the messages. Sets the
# EXIT trap.
use_local_cluster() {
  LOCAL_CLUSTER_TAG=$1
  LOCAL_CLUSTER_STARTED=0
  if ! "$CLUSTER_SH" status >/dev/null 2>&1; then
    echo "$LOCAL_CLUSTER_TAG: starting the local control plane (the first run builds it from Go modules: about 22 minutes on 2 idle cores)"
    "$CLUSTER_SH" up
    LOCAL_CLUSTER_STARTED=1
  fi
  trap stop_local_cluster EXIT
  eval "$("$CLUSTER_SH" env)"
}

# shellcheck disable=SC2317  # run by the EXIT trap that use_local_cluster sets
stop_local_cluster() {
  if [[ "$LOCAL_CLUSTER_STARTED" == 1 && -z "${TIDAL_KEEP_CLUSTER:-}" ]]; then
    echo "$LOCAL_CLUSTER_TAG: stopping the local control plane it started (TIDAL_KEEP_CLUSTER=1 keeps it)"
    "$CLUSTER_SH" down || true
  fi
}

# install_crd [FILE]: README's CRD install, as written: the AutoScaler CRD from FILE (default:
# standard input, e.g. `tidal crd | install_crd`) applied server-side, then `kubectl wait` until
# it is Established (a fresh CRD is served only then; without the wait a `get` races it).
# The wait is retried: issued within moments of the apply it can fail at once ("status.conditions
# accessor error: <nil>", seen on a fresh cluster) instead of waiting. Fails when the CRD is not
# Established in the end. Prints kubectl's output.
install_crd() {
  local crd=crd/autoscalers.autoscaling.tidal.dev
  kubectl apply --server-side --force-conflicts -f "${1:--}" || return 1
  for _ in $(seq 30); do
    kubectl wait --for condition=established --timeout=60s "$crd" >/dev/null 2>&1 && break
    sleep 1
  done
  kubectl wait --for condition=established --timeout=60s "$crd"
}

# use_local_kubeconfig: when KUBECONFIG is unset, exports the local control plane's (if it has
# one). Returns 0 either way.
use_local_kubeconfig() {
  local kc
  if [[ -z "${KUBECONFIG:-}" ]] && kc=$("$CLUSTER_SH" kubeconfig 2>/dev/null); then
    export KUBECONFIG="$kc"
  fi
  return 0
}

# ------------------------------------------------------------------ the stack's tools

# newest_cached NAME: the local control plane stack's NAME (e.g. helm), from the stack linked
# most recently under $CACHE/stack, if it is executable; prints nothing otherwise.
newest_cached() {
  local f
  f=$(find "$CACHE"/stack/*/bin -maxdepth 1 -name "$1" -printf '%T@ %p\n' 2>/dev/null | sort -rn | head -n1 | cut -d' ' -f2-)
  [[ -n "$f" && -x "$f" ]] && echo "$f"
  return 0
}

# find_helm_kubectl: sets HELM and KUBECTL, each from the environment, else the newest cached
# stack, else PATH (helm also from a wrapper module's bin/ of a stack build that did not link);
# empty when none is found.
find_helm_kubectl() {
  HELM="${HELM:-$(newest_cached helm)}"
  HELM="${HELM:-$(command -v helm || true)}"
  [[ -n "$HELM" ]] || HELM="$(find "$CACHE/go" -path '*/bin/helm' -type f 2>/dev/null | head -n1)"
  KUBECTL="${KUBECTL:-$(newest_cached kubectl)}"
  KUBECTL="${KUBECTL:-$(command -v kubectl || true)}"
}

# ------------------------------------------------------------------ the operator image

# image_name: the name hack/image-build.sh gives the image and hack/image-smoke.sh runs, unless
# TIDAL_IMAGE says otherwise: localhost/tidal:<the chart's appVersion> (the chart's default image
# is tidal:<appVersion>).
image_name() {
  local app
  app=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$TIDAL_ROOT/charts/tidal/Chart.yaml")
  echo "${TIDAL_IMAGE:-localhost/tidal:${app:-dev}}"
}

# image_store_flags: sets IMAGE_STORE, the global flags buildah and podman both take so that they
# share one image store of the project's own, under $CACHE/containers (images outlive a run;
# `rm -rf` of it is a clean slate) with run state under TMPDIR. The vfs driver: overlay needs
# a kernel and file system that allow it (nested in a container it often does not), vfs works
# anywhere, and the image is one small layer.
image_store_flags() {
  # shellcheck disable=SC2034  # read by the scripts that call this
  IMAGE_STORE=(
    --root "$CACHE/containers/storage"
    --runroot "${TMPDIR:-/tmp}/tidal-containers-$(id -u)"
    --storage-driver vfs
  )
}

# ------------------------------------------------------------------ a checks report

# report_init NAME [head|tail]: starts a report of checks. Each check prints one PASS or FAIL
# line; `finish` lists the failed ones, prints "NAME: N passed, M failed" and exits non-zero on
# any failure. A failure's details are shown indented, their first (head, the default) or last
# (tail) 40 lines.
report_init() {
  REPORT_NAME=$1
  REPORT_DETAIL=${2:-head}
  passed=0
  failed=0
  failures=()
}

# pass DESCRIPTION
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$1"; }

# fail DESCRIPTION [DETAILS]
fail() {
  failed=$((failed + 1)); failures+=("$1")
  printf 'FAIL  %s\n' "$1"
  if [[ -n "${2:-}" ]]; then
    # shellcheck disable=SC2001  # a prefix on every line: sed's ^, which ${2//...} has no match for
    sed 's/^/      | /' <<<"$2" | "$REPORT_DETAIL" -n 40
  fi
  return 0
}

# wait_for DESCRIPTION COMMAND...: retries until COMMAND succeeds or TIMEOUT passes.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then fail "$what (after ${TIMEOUT}s)"; return 1; fi
    sleep 1
  done
  pass "$what"
}

# drop_smoke_objects NAMESPACE [OBJECT...]: a smoke test's namespace (not waited for) and its
# cluster-scoped objects (kind/name), each ignored if already gone. Uses the caller's kc.
drop_smoke_objects() {
  kc delete namespace "$1" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  shift
  local o
  for o in "$@"; do kc delete "$o" --ignore-not-found >/dev/null 2>&1 || true; done
}

# keep_operator_log LOG KEEP: after a failure, copies a non-empty LOG to KEEP and shows its last
# 40 lines.
keep_operator_log() {
  [[ -s "$1" ]] || return 0
  cp "$1" "$2"
  echo "operator log (last 40 lines; all of it in $2):"; tail -n 40 "$1" | sed 's/^/      | /'
}

# section TITLE
section() { printf '\n== %s\n' "$*"; }

# finish: the summary line and the exit status. Cleanup runs from the caller's EXIT trap.
finish() {
  echo
  if ((failed > 0)); then
    printf 'failed checks:\n'; printf '  - %s\n' "${failures[@]}"
  fi
  printf '%s: %d passed, %d failed\n' "$REPORT_NAME" "$passed" "$failed"
  ((failed == 0))
  exit $?
}
