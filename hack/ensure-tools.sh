#!/usr/bin/env bash
# Installs the Debian-packaged tools the project's scripts use, when they are missing:
#
#   hack/ensure-tools.sh TOOL...    e.g. hack/ensure-tools.sh shellcheck; hack/ensure-tools.sh jq yq
#
# Each TOOL is a command; it is installed with `apt-get install -y` from its Debian package: the
# package of the same name (jq, yq: Debian's jq wrapper, shellcheck, buildah, podman, runc), or
# musl-tools for musl-gcc and binutils for readelf. `apt-get update` runs once, and only when
# something is missing. Needs root to install; says so clearly otherwise.
set -euo pipefail

[[ $# -gt 0 ]] || { echo "usage: $0 TOOL..." >&2; exit 2; }

missing=()
packages=()
for tool in "$@"; do
  case "$tool" in
    jq | yq | shellcheck | buildah | podman | runc) package=$tool ;;
    musl-gcc) package=musl-tools ;;
    readelf) package=binutils ;;
    *) echo "ensure-tools: no Debian package known for '$tool'" >&2; exit 2 ;;
  esac
  if ! command -v "$tool" >/dev/null 2>&1; then
    missing+=("$tool")
    packages+=("$package")
  fi
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-tools: ${missing[*]} not installed and this is not root; install the Debian package(s) yourself: sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
echo "ensure-tools: installing ${packages[*]} from Debian's packages (for ${missing[*]})" >&2
apt-get update -qq
apt-get install -y -qq "${packages[@]}" >/dev/null
for tool in "${missing[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ensure-tools: $tool still not on PATH after apt-get install" >&2; exit 1; }
done
