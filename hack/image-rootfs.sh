#!/usr/bin/env bash
# Assembles the operator image's root file system in a directory: the one list of what the image
# holds. The Dockerfile's builder stage runs it (the user build, with BuildKit) and so does
# hack/image-build.sh (the build on a machine without a Docker engine or registry access), so
# both images are made of the same files from the same script:
#
#   hack/image-rootfs.sh TIDAL_BINARY CA_BUNDLE OUT_DIR
#
#   /tidal                                 the static operator binary (0555)
#   /etc/passwd, /etc/group                root, nobody and nonroot (65532), as distroless has them
#   /etc/ssl/certs/ca-certificates.crt     Debian's ca-certificates bundle (0444)
#
# Nothing else: no shell, no libc, no package manager, no writable directory (the chart runs the
# image with readOnlyRootFilesystem, and the operator writes nothing). No tzdata: the operator
# logs and computes in UTC only. The CA bundle is not needed to reach the API server (the
# ServiceAccount's ca.crt or the kubeconfig names that CA); it is there for anything else a
# user points the operator at over TLS, as distroless/static, the former base, carried it.
# Every file is owned by root and read-only for everyone; the Dockerfile's COPY sets 0:0 again.
#
# OUT_DIR must not exist yet. Fails when the binary is not static (a program interpreter
# means it needs a libc the image does not have).
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 TIDAL_BINARY CA_BUNDLE OUT_DIR" >&2
  exit 2
fi
bin=$1 ca=$2 out=$3

[[ -x "$bin" ]] || { echo "image-rootfs: $bin is not an executable file" >&2; exit 1; }
[[ -s "$ca" ]] || { echo "image-rootfs: no CA bundle at $ca (Debian's ca-certificates package provides it)" >&2; exit 1; }
[[ ! -e "$out" ]] || { echo "image-rootfs: $out exists; give a new directory" >&2; exit 1; }
if readelf -l "$bin" | grep -q 'program interpreter'; then
  echo "image-rootfs: $bin is dynamically linked (it has a program interpreter); the image has no libc" >&2
  exit 1
fi

# umask 022 so that directories come out 0755 whatever the caller's umask (mktemp, CI).
umask 022
mkdir -p "$out/etc/ssl/certs"
install -m 0555 "$bin" "$out/tidal"
install -m 0444 "$ca" "$out/etc/ssl/certs/ca-certificates.crt"
# The nonroot user is distroless's: the chart's runAsUser/runAsGroup (65532) and the image's
# numeric USER name it. Its home does not exist; nothing reads it (kube's client looks for
# ~/.kube/config, finds none and uses the pod's ServiceAccount).
printf '%s\n' \
  'root:x:0:0:root:/root:/sbin/nologin' \
  'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$out/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$out/etc/group"
chmod 0444 "$out/etc/passwd" "$out/etc/group"
