#!/usr/bin/env bash
# Runs Tidal's e2e tests against a kind cluster, for machines with Docker.
# (The development machine has no Docker engine: there the rig is
# e2e/cluster/cluster.sh. This path is written to the same facts but has not
# been run; see e2e/README.md.)
#
#   e2e/kind/run.sh            create the cluster, run the tests, delete it
#   KEEP=1 e2e/kind/run.sh     leave the cluster running afterwards
#
# Needs: kind, kubectl (its kustomize fetches remote bases with git), git,
# openssl, cargo, and network access to GitHub and registry.k8s.io.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NAME="${KIND_CLUSTER_NAME:-tidal-e2e}"
WORK="$(mktemp -d)"
# The kubeconfig lives in a temp dir: never touch ~/.kube/config.
export KUBECONFIG="$WORK/kubeconfig"

log() { printf '[kind] %s\n' "$*" >&2; }
die() { printf '[kind] ERROR: %s\n' "$*" >&2; exit 1; }
cleanup() {
  if [[ -n "${KEEP:-}" ]]; then
    log "kept cluster '$NAME'; use: export KUBECONFIG=$KUBECONFIG"
  else
    kind delete cluster --name "$NAME" --kubeconfig "$KUBECONFIG" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

kind create cluster --name "$NAME" --config "$HERE/kind-config.yaml" --kubeconfig "$KUBECONFIG" \
  ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 180s

# The test timings only hold if the HPA flags reached kube-controller-manager.
kcm=$(kubectl -n kube-system get pod -l component=kube-controller-manager -o jsonpath='{.items[0].spec.containers[0].command}')
for flag in horizontal-pod-autoscaler-sync-period=5s horizontal-pod-autoscaler-downscale-stabilization=30s; do
  grep -q -- "--$flag" <<<"$kcm" || die "kube-controller-manager lacks --$flag (kubeadm config patch not applied)"
done

log "installing metrics-server"
# v0.8.0's own manifest, with the flags kind needs: kind's kubelets (and kwok's
# fake ones) serve self-signed certificates, hence --kubelet-insecure-tls; and
# the local rig's 10 s resolution.
kubectl apply -f https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.8.0/components.yaml
kubectl -n kube-system patch deployment metrics-server --type=json --patch-file "$HERE/metrics-server-args.json"

log "installing kwok"
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=kwok-controller \
  -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
kubectl -n kube-system create secret tls kwok-tls --cert "$WORK/tls.crt" --key "$WORK/tls.key"
kubectl apply -k "$HERE/kwok"
kubectl wait --for=condition=Established --timeout=60s \
  crd/stages.kwok.x-k8s.io crd/metrics.kwok.x-k8s.io crd/clusterresourceusages.kwok.x-k8s.io
kubectl apply -k "$HERE/kwok-stages"
sed "s/__TIDAL_POD_READY_DELAY_MS__/5000/" "$ROOT/e2e/cluster/stages/pod-readiness.yaml" | kubectl apply -f -
kubectl -n kube-system rollout status deployment/kwok-controller --timeout=180s

log "creating fake nodes"
"$ROOT/e2e/cluster/cluster.sh" nodes | kubectl apply -f -
kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s
kubectl -n kube-system rollout status deployment/metrics-server --timeout=180s

# The kind node has a real kubelet and real usage; kwok nodes only appear once
# pods run on them (metrics-server drops nodes with zero usage).
log "waiting for metrics-server to serve node metrics"
deadline=$((SECONDS + 120))
until kubectl get --raw /apis/metrics.k8s.io/v1beta1/nodes 2>/dev/null | grep -q "\"$NAME-control-plane\""; do
  ((SECONDS < deadline)) || die "metrics.k8s.io never listed $NAME-control-plane"
  sleep 2
done

log "running the e2e tests"
cd "$ROOT"
TIDAL_METRIC_RESOLUTION=10s TIDAL_HPA_DOWNSCALE_STABILIZATION=30s \
  cargo test -p tidal-e2e -- --ignored
