# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings below are used by the scripts that source this file
# Sourced by build-stack.sh and cluster.sh: the versions of the local control plane's stack and
# where its binaries are cached. One key per version set, so binaries built once are reused by
# every checkout on this machine.
#
# Settings (environment): TIDAL_CACHE and
# TIDAL_{K8S,ETCD,KWOK,METRICS_SERVER,METRICS_ADAPTER,HELM}_VERSION.

# Kubernetes: the newest 1.36 patch the Go module proxy serves (v1.36.6 is
# tagged for the staging modules but k8s.io/kubernetes itself is not served).
K8S_VERSION="${TIDAL_K8S_VERSION:-v1.36.5}"
ETCD_VERSION="${TIDAL_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${TIDAL_KWOK_VERSION:-v0.8.0}"
METRICS_SERVER_VERSION="${TIDAL_METRICS_SERVER_VERSION:-v0.8.0}"
HELM_VERSION="${TIDAL_HELM_VERSION:-v3.22.0}"
# sigs.k8s.io/custom-metrics-apiserver, whose test adapter serves the custom and external
# metrics APIs: the release built against the same Kubernetes minor.
METRICS_ADAPTER_VERSION="${TIDAL_METRICS_ADAPTER_VERSION:-v1.36.0}"

CACHE="${TIDAL_CACHE:-$HOME/.cache/tidal}"
# Wrapper modules and their binaries, one directory per upstream project and version.
GOWORK_ROOT="$CACHE/go"
STACK_KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_ms-${METRICS_SERVER_VERSION}_helm-${HELM_VERSION}_cma-${METRICS_ADAPTER_VERSION}"
# Every binary of this version set, linked into one directory (for PATH and kwokctl).
BIN="$CACHE/stack/$STACK_KEY/bin"
# Files taken from the upstream modules at the versions built (kwok stages, metrics-server's
# kustomize base).
ASSETS="$CACHE/stack/$STACK_KEY/assets"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
