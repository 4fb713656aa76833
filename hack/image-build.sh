#!/usr/bin/env bash
# Builds the operator image on this machine, without a Docker engine and without pulling any
# image, and checks that it is the image the Dockerfile describes:
#
#   hack/image-build.sh          builds localhost/tidal:<appVersion> (TIDAL_IMAGE overrides)
#
# 1. the static binary, as the Dockerfile's builder stage compiles it: `cargo build --release
#    --locked` for the musl target, `ring` compiled by musl-gcc. musl rather than glibc with
#    crt-static: it is what the user build does, so both images carry the same kind of binary
#    (and rustup can fetch the target here); a static glibc links getaddrinfo only with the
#    warning that it may need glibc's shared NSS libraries at run time, which the image lacks.
#    Its own target dir (TIDAL_IMAGE_TARGET_DIR, default $CACHE/target-static): a release build
#    for another target shares nothing with the debug builds in $CACHE/target.
# 2. the root file system, by hack/image-rootfs.sh (the script the builder stage runs), from
#    the host's Debian CA bundle;
# 3. the image, by buildah from the Dockerfile itself with `--build-context builder=DIR`: the
#    runtime stage's `COPY --from=builder /rootfs/` reads DIR/rootfs instead of the builder
#    stage, which buildah then skips, so rust:bookworm is never pulled. (Debian bookworm's
#    buildah 1.28 has --build-context; an ARG naming the stage to copy from did not work there:
#    buildah skipped the stage the ARG's default named.)
# 4. checks: the image's user, entrypoint, command, exposed port and labels are the runtime
#    stage's; its files are exactly the root file system's (same paths, modes, owners, sizes: no
#    shell, nothing else); the user build's builder stage runs the same image-rootfs.sh.
#
# Prints the image's size (uncompressed, and its layer gzip-compressed as a registry holds it).
# Installs buildah, musl-tools and binutils from Debian when missing (root), and the musl target
# with rustup. Images live in the project's own store ($CACHE/containers, see image_store_flags
# in lib.sh), where hack/image-smoke.sh finds them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TIDAL_ROOT"

hack/ensure-tools.sh buildah musl-gcc readelf jq
image_store_flags
IMAGE=$(image_name)
TARGET="$(uname -m)-unknown-linux-musl"
export CARGO_TARGET_DIR="${TIDAL_IMAGE_TARGET_DIR:-$CACHE/target-static}"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
bah() { buildah "${IMAGE_STORE[@]}" "$@"; }
say() { echo "image-build: $*"; }
die() { echo "image-build: $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tidal-image-build.XXXXXX")
CONTAINER=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  [[ -z "$CONTAINER" ]] || bah rm "$CONTAINER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------------ 1. the static binary
if ! rustup target list --installed | grep -qx "$TARGET"; then
  say "adding the Rust target $TARGET (rustup downloads its standard library)"
  rustup target add "$TARGET" || die "rustup target add $TARGET failed; the image needs a static (musl) binary"
fi
start=$SECONDS
say "cargo build --release --locked -p tidal --target $TARGET (target dir $CARGO_TARGET_DIR)"
CARGO_INCREMENTAL=0 cargo build --release --locked -p tidal --bin tidal --target "$TARGET"
BIN="$CARGO_TARGET_DIR/$TARGET/release/tidal"
say "binary built in $((SECONDS - start)) s: $BIN ($(stat -c %s "$BIN") bytes), $("$BIN" --version)"

# ------------------------------------------------------------------ 2. the root file system
[[ -s "$CA_BUNDLE" ]] || die "no CA bundle at $CA_BUNDLE: apt-get install ca-certificates"
hack/image-rootfs.sh "$BIN" "$CA_BUNDLE" "$WORK/builder/rootfs"

# ------------------------------------------------------------------ 3. the image
# The build context is empty: the runtime stage reads nothing from it (the Dockerfile is read
# from the clone, the root file system comes in as the `builder` context).
# --squash: one layer, as BuildKit makes of this Dockerfile (buildah would otherwise add an
# empty layer for the runtime stage's metadata-only instructions). --layers=false: no
# intermediate images left in the store. --identity-label=false: no io.buildah.version label,
# which the user build does not have. --timestamp 0 makes the image's dates (and, with an
# unchanged binary, its digest) independent of the time of the build.
start=$SECONDS
mkdir "$WORK/context"
bah build --quiet --squash --layers=false --identity-label=false --timestamp 0 --pull-never \
  --build-context builder="$WORK/builder" --target runtime \
  -f "$TIDAL_ROOT/Dockerfile" -t "$IMAGE" "$WORK/context" >"$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log" >&2; die "buildah build failed"; }
say "image $IMAGE built in $((SECONDS - start)) s"
# The image this name had before, now untagged: the store is the project's own, so nothing
# else's images are pruned.
bah rmi --prune >/dev/null 2>&1 || true

# ------------------------------------------------------------------ 4. checks
# The runtime stage's configuration, read from the Dockerfile (not restated here): its USER,
# ENTRYPOINT, CMD, EXPOSE and LABEL lines, compared with the built image's configuration.
stage=$(awk '/^FROM .* AS runtime$/ {on = 1; next} /^FROM / {on = 0} on' Dockerfile)
[[ -n "$stage" ]] || die "no 'FROM ... AS runtime' stage in the Dockerfile"
grep -q '^COPY --from=builder --chown=0:0 /rootfs/ /$' <<<"$stage" \
  || die "the runtime stage no longer copies the builder's /rootfs/: --build-context builder=... would not stand in for it"
inspect=$(bah inspect --type image "$IMAGE")
config=$(jq -c .OCIv1.config <<<"$inspect")
want_user=$(sed -n 's/^USER //p' <<<"$stage")
want_entrypoint=$(sed -n 's/^ENTRYPOINT //p' <<<"$stage" | jq -c .)
want_cmd=$(sed -n 's/^CMD //p' <<<"$stage" | jq -c .)
want_port=$(sed -n 's/^EXPOSE //p' <<<"$stage")
check() { # WHAT WANT GOT
  [[ "$2" == "$3" ]] || die "$1: the Dockerfile's runtime stage says $2, the image has $3"
}
check USER "$want_user" "$(jq -r .User <<<"$config")"
check ENTRYPOINT "$want_entrypoint" "$(jq -c .Entrypoint <<<"$config")"
check CMD "$want_cmd" "$(jq -c .Cmd <<<"$config")"
check EXPOSE "$want_port/tcp" "$(jq -r '.ExposedPorts // {} | keys | join(",")' <<<"$config")"
[[ "$want_user" =~ ^[1-9][0-9]*:[0-9]+$ ]] || die "USER $want_user is not a numeric non-root uid:gid (runAsNonRoot needs one)"
while read -r key; do
  jq -e --arg k "$key" '.Labels[$k] // empty' <<<"$config" >/dev/null || die "label $key of the runtime stage is missing"
done < <(grep -o 'org\.opencontainers\.image\.[a-z]*=' <<<"$stage" | tr -d =)
check "labels" "$(grep -c 'org\.opencontainers\.image\.[a-z]*=' <<<"$stage")" "$(jq '.Labels | length' <<<"$config")"
check "layers" 1 "$(jq '.OCIv1.rootfs.diff_ids | length' <<<"$inspect")"
grep -q 'hack/image-rootfs.sh /out/tidal' Dockerfile \
  || die "the Dockerfile's builder stage no longer runs hack/image-rootfs.sh: the user build would hold other files"

# The image's files, as a container of it sees them, against the directory they came from:
# path, type, mode, owner and a file's size (a directory's size is the file system's business).
# The image's owners must be 0:0 whoever owned the directory on the host (the COPY sets them).
listing() { (cd "$1" && find . -mindepth 1 -printf '%P %y %m %U:%G %s\n' | awk '$2 == "d" {$5 = "-"} 1' | sort); }
CONTAINER=$(bah from --quiet --pull-never "$IMAGE")
mnt=$(bah mount "$CONTAINER")
got=$(listing "$mnt")
want=$(listing "$WORK/builder/rootfs" | awk '{$4 = "0:0"} 1')
[[ "$got" == "$want" ]] || die "the image's files differ from hack/image-rootfs.sh's:"$'\n'"$(diff <(echo "$want") <(echo "$got"))"
[[ ! -e "$mnt/bin/sh" ]] || die "the image has a shell"
bah umount "$CONTAINER" >/dev/null
bah rm "$CONTAINER" >/dev/null
CONTAINER=""
say "image matches the Dockerfile's runtime stage: USER $want_user, ENTRYPOINT $want_entrypoint, CMD $want_cmd, $(wc -l <<<"$got") files and directories, no shell"

# ------------------------------------------------------------------ size
# Uncompressed: what the node's disk holds. Compressed: the layer as a registry stores it and a
# node pulls it (an OCI layout written with gzip, as `buildah push` to a registry does).
size=$(jq '.Manifest | fromjson | [.layers[].size] | add' <<<"$inspect")
bah push --quiet --compression-format gzip "$IMAGE" "oci:$WORK/oci:image" >/dev/null
manifest=$(jq -r '.manifests[0].digest' "$WORK/oci/index.json")
compressed=$(jq '[.layers[].size] | add' "$WORK/oci/blobs/sha256/${manifest#sha256:}")
say "size: $size bytes uncompressed, $compressed bytes compressed (its layer gzipped)"
echo "image-build: IMAGE=$IMAGE SIZE_BYTES=$size COMPRESSED_BYTES=$compressed"
