#!/usr/bin/env bash
# Makes the toolchain pinned in rust-toolchain.toml usable without a download: this machine
# reaches only package registries, so rustup cannot fetch toolchains. If the pinned version is
# missing but the installed stable toolchain is that exact version, link it under the pinned name.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! command -v rustup >/dev/null 2>&1; then
    echo "ensure-rust: rustup not found; install Rust $pinned" >&2
    exit 1
fi
if rustup toolchain list | grep -q "^$pinned"; then
    exit 0
fi
stable_dir=$(rustup toolchain list -v | awk '/^stable/ {print $NF; exit}')
if [ -n "$stable_dir" ] && "$stable_dir/bin/rustc" --version | grep -q "^rustc $pinned "; then
    # `rustup toolchain link` refuses official-looking names such as 1.95.0, so link the directory.
    host=$(basename "$stable_dir" | sed 's/^stable-//')
    ln -s "$stable_dir" "$(dirname "$stable_dir")/$pinned-$host"
    echo "ensure-rust: linked stable ($pinned) as toolchain $pinned-$host"
    exit 0
fi
echo "ensure-rust: Rust $pinned is not installed and cannot be downloaded here; install it or update rust-toolchain.toml" >&2
exit 1
