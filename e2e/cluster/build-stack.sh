#!/usr/bin/env bash
# Builds the local control plane's binaries from Go modules (the only reachable source here):
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, kwokctl,
# metrics-server, helm and the custom/external metrics adapter, each in a wrapper module of its own under
# ${TIDAL_CACHE:-$HOME/.cache/tidal}/go, linked into one directory per version set
# (stack-env.sh), with the upstream files the cluster needs. Idempotent: only what is missing is
# built; with everything present it re-links, checks every binary's --version and exits.
# A cold build takes about 22 minutes on 2 idle cores, 2 of them for the adapter (figures in
# e2e/README.md).
#
#   build-stack.sh          build missing binaries (what `cluster.sh build` and `up` run)
#
# Settings (environment): TIDAL_CACHE and
# TIDAL_{K8S,ETCD,KWOK,METRICS_SERVER,METRICS_ADAPTER,HELM}_VERSION.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=stack-env.sh
source "$HERE/stack-env.sh"

# Hermetic-enough Go settings: modules only from the proxy, never a toolchain
# download (the machine's Go is what we build with), static binaries like the
# upstream release builds. GOCACHE/GOMODCACHE stay at their defaults so every
# checkout and CI run on this machine shares them.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

# The checksum database as this machine's proxy serves it has no entry for
# these module versions (404), so they are checked against hashes pinned here
# instead: recorded from the proxy's download on first use, then enforced on
# every fresh machine through the wrapper's go.sum.
declare -A PINNED_SUMS=(
  [k8s.io/kubernetes@v1.36.5]="h1:bLFTShnoNlRCkuYqoSIwgU7Ozf47DsOAiwOekTHpZJw= h1:ZyLkHB4+fxSZ4LqpShPGJhikj4ngJaYAFlaZKs7goP4="
  [sigs.k8s.io/metrics-server@v0.8.0]="h1:Zlsi3sBWEtFKCD3+xSysThvXyLQ363rUAlqpnsY5JwI= h1:Y9fklRHhVcd444vB0DcTXrKlv8tNVGmqb/06rsrMpMo="
)
nosumdb=""
for mv in "k8s.io/kubernetes@$K8S_VERSION" "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION"; do
  [[ -n "${PINNED_SUMS[$mv]:-}" ]] && nosumdb+="${nosumdb:+,}${mv%@*}"
done
export GONOSUMDB="$nosumdb"

# ------------------------------------------------------------------ build
TIMES_LOG="$GOWORK_ROOT/build-times.log"

# module_time MODULE VERSION: the version's commit time from the proxy, used as
# buildDate so ldflags never change between runs (a changed value re-links).
module_time() {
  go list -m -json "$1@$2" 2>/dev/null | sed -n 's/^[[:space:]]*"Time": "\(.*\)",*$/\1/p' | head -n1
}

# timed_build NAME VERSION DIR OUT PKG LDFLAGS [TAGS]: one go build, timed.
timed_build() {
  local name=$1 version=$2 dir=$3 out=$4 pkg=$5 ldflags=$6 tags=${7:-}
  local start end
  log "building $name $version ($pkg)"
  start=$(date +%s)
  (cd "$dir" && go build -trimpath ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$out" "$pkg")
  end=$(date +%s)
  printf '%s\t%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "$name" "$version" "$((end - start))" >>"$TIMES_LOG"
  log "built $name in $((end - start))s"
}

# new_wrapper DIR MODULE: a fresh wrapper module of our own. Each upstream
# project gets its own, so minimum version selection never lifts one
# project's dependencies (grpc, otel) past what that project was tested with.
new_wrapper() {
  local dir=$1 name=$2
  mkdir -p "$dir/bin"
  if [[ ! -f "$dir/go.mod" ]]; then
    printf 'module tidal.local/build/%s\n\ngo 1.26.0\n' "$name" >"$dir/go.mod"
  fi
  local mv zip mod
  for mv in "${!PINNED_SUMS[@]}"; do
    read -r zip mod <<<"${PINNED_SUMS[$mv]}"
    grep -qF "${mv%@*} ${mv#*@} $zip" "$dir/go.sum" 2>/dev/null && continue
    printf '%s %s %s\n%s %s/go.mod %s\n' "${mv%@*}" "${mv#*@}" "$zip" "${mv%@*}" "${mv#*@}" "$mod" >>"$dir/go.sum"
  done
}

build_k8s() {
  local dir="$GOWORK_ROOT/kubernetes-$K8S_VERSION"
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  if all_present "$dir/bin" "${want[@]}"; then return; fi
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local staging_version="v0.${K8S_VERSION#v1.}"
  # The last `tool` line is written only when resolution succeeded; without
  # it (first run, or an interrupted one) the wrapper is generated afresh.
  if ! grep -Eq "^(tool[[:space:]]+|[[:space:]]+)k8s\.io/kubernetes/cmd/kubectl$" "$dir/go.mod" 2>/dev/null; then
    rm -f "$dir/go.mod" "$dir/go.sum"
    new_wrapper "$dir" kubernetes
    # k8s.io/kubernetes replaces its staging modules with ./staging/...,
    # which a consumer never sees: pin each one it requires to the matching
    # v0.X.Y tag. Derived from the go.mod the proxy serves; only required
    # modules, since sample-cli-plugin/sample-controller are not served.
    local modfile
    modfile=$(mktemp)
    (cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null)
    cp "$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod" "$modfile"
    {
      echo
      awk '/=> \.\/staging\//{print $1}' "$modfile" | while read -r m; do
        if grep -Eq "^[[:space:]]+$m v0\.0\.0" "$modfile"; then
          echo "replace $m => $m $staging_version"
        fi
      done
    } >>"$dir/go.mod"
    rm -f "$modfile"
    (cd "$dir" && go get -tool \
      "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION")
  fi
  local date ldf=""
  date=$(cd "$dir" && module_time k8s.io/kubernetes "$K8S_VERSION")
  # Without these every component reports v0.0.0-master: kwokctl then takes
  # it for the newest release, kubectl warns about skew, helm's kubeVersion
  # checks fail.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldf+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  for b in "${want[@]}"; do
    [[ -x "$dir/bin/$b" ]] && continue
    timed_build "$b" "$K8S_VERSION" "$dir" "bin/$b" "k8s.io/kubernetes/cmd/$b" \
      "-s -w$ldf" "selinux,notest,grpcnotrace"
  done
}

build_etcd() {
  local dir="$GOWORK_ROOT/etcd-$ETCD_VERSION"
  if all_present "$dir/bin" etcd; then return; fi
  new_wrapper "$dir" etcd
  # The server module's root is package main; a plain require works where
  # `go install` trips over the module's own replace directives.
  (cd "$dir" && go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  timed_build etcd "$ETCD_VERSION" "$dir" bin/etcd go.etcd.io/etcd/server/v3 "-s -w"
}

build_kwok() {
  local dir="$GOWORK_ROOT/kwok-$KWOK_VERSION"
  if all_present "$dir/bin" kwok kwokctl; then return; fi
  new_wrapper "$dir" kwok
  (cd "$dir" && go get -tool "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION")
  local ldf="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  ldf+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"
  for b in kwok kwokctl; do
    [[ -x "$dir/bin/$b" ]] && continue
    timed_build "$b" "$KWOK_VERSION" "$dir" "bin/$b" "sigs.k8s.io/kwok/cmd/$b" "$ldf"
  done
}

build_metrics_server() {
  local dir="$GOWORK_ROOT/metrics-server-$METRICS_SERVER_VERSION"
  if all_present "$dir/bin" metrics-server; then return; fi
  new_wrapper "$dir" metrics-server
  (cd "$dir" && go get -tool "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION")
  local date ldf="-s -w"
  date=$(cd "$dir" && module_time sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION")
  # Upstream stamps client-go's version package; kwokctl parses `--version`.
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldf+=" -X $p.gitVersion=$METRICS_SERVER_VERSION -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  timed_build metrics-server "$METRICS_SERVER_VERSION" "$dir" \
    bin/metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "$ldf"
}

build_helm() {
  local dir="$GOWORK_ROOT/helm-$HELM_VERSION"
  if all_present "$dir/bin" helm; then return; fi
  new_wrapper "$dir" helm
  local major=${HELM_VERSION%%.*}
  (cd "$dir" && go get -tool "helm.sh/helm/$major/cmd/helm@$HELM_VERSION")
  # helm derives its default kubeVersion from the client-go it was built with.
  local cg kmaj kmin
  cg=$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/client-go)
  cg=${cg#v}; kmaj=$((${cg%%.*} + 1)); kmin=${cg#*.}; kmin=${kmin%%.*}
  local ldf="-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION"
  ldf+=" -X helm.sh/helm/$major/internal/version.metadata= -X helm.sh/helm/$major/internal/version.gitTreeState=clean"
  ldf+=" -X helm.sh/helm/$major/pkg/lint/rules.k8sVersionMajor=$kmaj -X helm.sh/helm/$major/pkg/lint/rules.k8sVersionMinor=$kmin"
  ldf+=" -X helm.sh/helm/$major/pkg/chartutil.k8sVersionMajor=$kmaj -X helm.sh/helm/$major/pkg/chartutil.k8sVersionMinor=$kmin"
  timed_build helm "$HELM_VERSION" "$dir" bin/helm "helm.sh/helm/$major/cmd/helm" "$ldf"
}

# build_metrics_adapter: the custom/external metrics adapter, our main (metrics-adapter/main.go
# beside this script, which says why it is not the module's own test-adapter command) around the
# test adapter's provider and the adapter server of sigs.k8s.io/custom-metrics-apiserver. Rebuilt
# when main.go changes.
build_metrics_adapter() {
  local dir="$GOWORK_ROOT/custom-metrics-apiserver-$METRICS_ADAPTER_VERSION"
  local src="$HERE/metrics-adapter/main.go"
  if all_present "$dir/bin" tidal-metrics-adapter && cmp -s "$src" "$dir/main.go"; then return; fi
  new_wrapper "$dir" metrics-adapter
  cp "$src" "$dir/main.go"
  rm -f "$dir/bin/tidal-metrics-adapter"
  (cd "$dir" && go get "sigs.k8s.io/custom-metrics-apiserver@$METRICS_ADAPTER_VERSION" && go mod tidy)
  local date ldf="-s -w"
  date=$(cd "$dir" && module_time sigs.k8s.io/custom-metrics-apiserver "$METRICS_ADAPTER_VERSION")
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldf+=" -X $p.gitVersion=$METRICS_ADAPTER_VERSION -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  timed_build tidal-metrics-adapter "$METRICS_ADAPTER_VERSION" "$dir" bin/tidal-metrics-adapter . "$ldf"
}

all_present() {
  local d=$1; shift
  for b in "$@"; do [[ -x "$d/$b" ]] || return 1; done
}

# link_stack: one directory with every binary of this version set, for PATH
# and for kwokctl's configuration.
link_stack() {
  mkdir -p "$BIN"
  local k="$GOWORK_ROOT/kubernetes-$K8S_VERSION/bin"
  ln -sfn "$k/kube-apiserver" "$BIN/kube-apiserver"
  ln -sfn "$k/kube-controller-manager" "$BIN/kube-controller-manager"
  ln -sfn "$k/kube-scheduler" "$BIN/kube-scheduler"
  ln -sfn "$k/kubectl" "$BIN/kubectl"
  ln -sfn "$GOWORK_ROOT/etcd-$ETCD_VERSION/bin/etcd" "$BIN/etcd"
  ln -sfn "$GOWORK_ROOT/kwok-$KWOK_VERSION/bin/kwok" "$BIN/kwok"
  ln -sfn "$GOWORK_ROOT/kwok-$KWOK_VERSION/bin/kwokctl" "$BIN/kwokctl"
  ln -sfn "$GOWORK_ROOT/metrics-server-$METRICS_SERVER_VERSION/bin/metrics-server" "$BIN/metrics-server"
  ln -sfn "$GOWORK_ROOT/helm-$HELM_VERSION/bin/helm" "$BIN/helm"
  ln -sfn "$GOWORK_ROOT/custom-metrics-apiserver-$METRICS_ADAPTER_VERSION/bin/tidal-metrics-adapter" \
    "$BIN/tidal-metrics-adapter"
}

STACK_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl metrics-server helm
  tidal-metrics-adapter)

# module_dir WRAPPER MODULE: where the Go module cache holds MODULE's source
# (downloaded again if the module cache was cleaned).
module_dir() {
  (cd "$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
}

# prepare_assets: files taken from the upstream modules at the versions built,
# so they always match the binaries: kwok's default node and pod stages that
# we keep (supplying any Stage replaces kwok's whole default set) and
# metrics-server's kustomize base (kwokctl v0.8.0 would otherwise download
# components.yaml from a release page).
prepare_assets() {
  [[ -f "$ASSETS/.complete" ]] && return
  rm -rf "$ASSETS"; mkdir -p "$ASSETS/stages" "$ASSETS/metrics-server"
  local kwok ms
  kwok=$(module_dir "$GOWORK_ROOT/kwok-$KWOK_VERSION" "sigs.k8s.io/kwok@$KWOK_VERSION")
  ms=$(module_dir "$GOWORK_ROOT/metrics-server-$METRICS_SERVER_VERSION" "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION")
  [[ -d "$kwok" && -d "$ms" ]] || die "module sources not found (kwok: '$kwok', metrics-server: '$ms')"
  cp "$kwok/kustomize/stage/node/fast/node-initialize.yaml" \
     "$kwok/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$kwok/kustomize/stage/pod/fast/pod-complete.yaml" \
     "$kwok/kustomize/stage/pod/fast/pod-delete.yaml" "$ASSETS/stages/"
  cp -r "$ms/manifests/base/." "$ASSETS/metrics-server/"
  chmod -R u+w "$ASSETS"
  touch "$ASSETS/.complete"
}

verify_versions() {
  local b out
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl metrics-server; do
    out=$("$BIN/$b" --version 2>&1) || die "$b --version failed: $out"
    log "$(printf '%-24s %s' "$b" "$(head -n1 <<<"$out")")"
  done
  log "$(printf '%-24s %s' kubectl "$("$BIN/kubectl" version --client 2>&1 | head -n1)")"
  log "$(printf '%-24s %s' helm "$("$BIN/helm" version --short 2>&1)")"
  # The adapter has no --version; --help exits 0 once it links and parses its flags.
  "$BIN/tidal-metrics-adapter" --help >/dev/null 2>&1 || die "tidal-metrics-adapter --help failed"
  log "$(printf '%-24s %s' tidal-metrics-adapter "sigs.k8s.io/custom-metrics-apiserver $METRICS_ADAPTER_VERSION")"
}

cmd_build() {
  command -v go >/dev/null || die "go is not on PATH"
  mkdir -p "$GOWORK_ROOT"
  local start=$SECONDS
  build_k8s
  build_etcd
  build_kwok
  build_metrics_server
  build_helm
  build_metrics_adapter
  link_stack
  all_present "$BIN" "${STACK_BINARIES[@]}" || die "some binaries are missing in $BIN"
  prepare_assets
  verify_versions
  log "binaries ready in $BIN ($((SECONDS - start))s)"
}

case "${1:-}" in
  "" | build) cmd_build ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
