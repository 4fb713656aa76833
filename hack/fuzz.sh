#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (README "Fuzzing"), one at a time, one job each:
#
#   hack/fuzz.sh --seconds N [TARGET...]   each target for N seconds (`make fuzz`, `make fuzz-smoke`)
#   hack/fuzz.sh --runs N [TARGET...]      each target for N executions
#
# TARGET defaults to every target (quantity, selector, calc). Each run starts from the committed
# corpus, fuzz/corpus/TARGET/, which it only reads: new inputs go to a scratch corpus under the
# cache, so a run leaves the clone as it was. A crashing input lands in fuzz/artifacts/TARGET/
# (ignored by git; copy it into the corpus once the bug is fixed). Prints, per target, libFuzzer's
# final figures (executions, exec/s, seconds) and whether it crashed; exits non-zero on any crash.
#
# Needs the nightly toolchain (cargo-fuzz builds with sanitizer-coverage flags that only nightly
# accepts; this machine cannot download toolchains) and installs cargo-fuzz if it is missing.
# Builds into $TIDAL_CACHE/fuzz-target, apart from the normal target dir: the instrumented
# build would otherwise evict its artifacts.
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$TIDAL_ROOT/fuzz"

ALL_TARGETS=(quantity selector calc)
# The version the README's figures were measured with; a newer one may build differently.
CARGO_FUZZ_VERSION=0.13.2
TARGET_DIR="$CACHE/fuzz-target"
SCRATCH="$CACHE/fuzz-scratch"

usage() { echo "usage: $0 --seconds N | --runs N [TARGET...]" >&2; exit 2; }

limit=()
case "${1:-}" in
  --seconds) [[ "${2:-}" =~ ^[0-9]+$ ]] || usage; limit=("-max_total_time=$2") ;;
  --runs) [[ "${2:-}" =~ ^[0-9]+$ ]] || usage; limit=("-runs=$2") ;;
  *) usage ;;
esac
shift 2
targets=("$@")
((${#targets[@]} > 0)) || targets=("${ALL_TARGETS[@]}")

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is not installed (cargo-fuzz needs it): rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $(dirname "$(command -v cargo)")" >&2
  cargo install --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi

# No sanitizer: the fuzzed crates forbid unsafe code, so AddressSanitizer would only slow every
# execution (selector target, one 30 s comparison: 8,000 exec/s with it, 13,500 without). Debug
# assertions stay on (cargo-fuzz's default), so an arithmetic overflow panics like any other defect.
fuzz=(cargo +nightly fuzz run --sanitizer none --target-dir "$TARGET_DIR")
# Built once up front, so that each target's time limit is spent fuzzing, not compiling.
cargo +nightly fuzz build --sanitizer none --target-dir "$TARGET_DIR"

summary=()
crashed=()
for t in "${targets[@]}"; do
  [[ -d "corpus/$t" ]] || { echo "fuzz: no target '$t' (expected fuzz/corpus/$t/)" >&2; exit 2; }
  scratch="$SCRATCH/$t"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  options=("${limit[@]}" -print_final_stats=1 -timeout=10)
  [[ -f "$t.dict" ]] && options+=("-dict=$t.dict")
  # A scale's selector is a few requirements; 512 bytes hold a dozen, and every parser branch is
  # reachable within that. Left to grow to libFuzzer's 4 KB, inputs of a hundred requirements
  # and more took over the corpus and the rate fell to about 6,500 exec/s (15,000 with the cap).
  [[ "$t" == selector ]] && options+=(-max_len=512)
  log="$SCRATCH/$t.log"
  echo "== fuzz $t (${limit[*]}), log $log"
  status=0
  # The scratch corpus comes first: libFuzzer writes new inputs to the first directory only.
  "${fuzz[@]}" "$t" "$scratch" "corpus/$t" -- "${options[@]}" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
  if ((status != 0)); then
    crashed+=("$t")
    grep -E "panicked at|^SUMMARY|^artifact_prefix|Test unit written" "$log" || tail -n 20 "$log"
    summary+=("$(printf '%-9s CRASHED (exit %d) after %s executions; see %s' "$t" "$status" "${runs:-?}" "$log")")
  else
    summary+=("$(printf '%-9s %12s executions  %8s exec/s  %6s s  0 crashes' "$t" "$runs" "$rate" "$seconds")")
  fi
  echo "${summary[-1]}"
done

echo
echo "fuzz: $(date -u +%FT%TZ), $(nproc) cores, one job per target"
printf '  %s\n' "${summary[@]}"
if ((${#crashed[@]} > 0)); then
  echo "fuzz: crashed: ${crashed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
