#!/usr/bin/env bash
# Long fuzz runs (DESIGN P9) of every decoder that takes outside bytes, under AFL++ through
# cargo-afl (stable toolchain). `scripts/fuzz.sh [SECONDS] [TARGET...]`: each target runs SECONDS
# (default 600), FUZZ_JOBS at a time (default 2); then the figures from afl's fuzzer_stats. Crashes stay in
# target/fuzz/out/TARGET/default/crashes for `anonchat-fuzz TARGET < file` to replay.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_packages ca-certificates build-essential pkg-config
need_rust
secs="${1:-600}"
shift || true
command -v cargo-afl >/dev/null || cargo install cargo-afl --locked
cargo afl config --build >/dev/null 2>&1 || true
out="${CARGO_TARGET_DIR:-target}/fuzz"
(cd fuzz && cargo afl build --release)
bin="$(cd fuzz && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/anonchat-fuzz"
rm -rf "$out/seeds" "$out/out"
mkdir -p "$out/out"
"$bin" --seeds "$out/seeds"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(ls "$out/seeds")
run() {
    AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
        cargo afl fuzz -V "$secs" -i "$out/seeds/$1" -o "$out/out/$1" "$bin" "$1" >"$out/$1.log" 2>&1 || true
}
jobs="${FUZZ_JOBS:-2}"
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    for ((j = i; j < i + jobs && j < ${#targets[@]}; j++)); do
        run "${targets[j]}" &
    done
    wait
done
printf '%-18s %12s %10s %8s %8s\n' target execs execs/s crashes hangs
for t in "${targets[@]}"; do
    s="$out/out/$t/default/fuzzer_stats"
    [ -f "$s" ] || { echo "$t: no stats (see $out/$t.log)"; continue; }
    get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$s"; }
    printf '%-18s %12s %10s %8s %8s\n' "$t" "$(get execs_done)" "$(get execs_per_sec)" "$(get saved_crashes)" "$(get saved_hangs)"
done
