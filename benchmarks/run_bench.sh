#!/usr/bin/env bash
# Every measurement of benchmarks/RESULTS.md, in order, one after the other (never two at once:
# they would share the cores). Outputs (text, JSON, Markdown) go to OUTDIR (default
# benchmarks/results); a step whose JSON is already there is skipped (delete OUTDIR to redo all).
#
#   bash benchmarks/run_bench.sh [OUTDIR]
#
# `python -m convspec.bench` is `convspec bench`; `python -m convspec.cli` is `convspec`: both run
# from a checkout without installing. Benchmarks never assert times; they report.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results}
mkdir -p "$out"
stamp() {
    echo "== $* · $(date -u '+%Y-%m-%d %H:%M:%S UTC') · load $(cut -d' ' -f1-3 /proc/loadavg)" \
         "· commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- convspec 2>/dev/null || echo '+changes')"
}
# bench NAME ARGS...: convspec bench ARGS, written to OUTDIR/NAME.{txt,json,md}
bench() {
    local name=$1; shift
    if [[ -e "$out/$name.json" ]]; then echo "(skipped: $out/$name.json exists)"; return; fi
    python -m convspec.bench --quiet "$@" --json "$out/$name.json" --markdown "$out/$name.md" | tee "$out/$name.txt"
}

# The targets first (the machine may get busy later), then the same with one thread per library
# (robust to other jobs on the cores), suite throughput, harness, memory, the other suites.
stamp "im2col float32 vs torch, resnet50 (forward, backward)"
bench resnet50_float32 im2col --suite resnet50 --dtype float32 --repeat 7

stamp "reference float64 vs torch float64, resnet50"
bench resnet50_float64_reference reference --suite resnet50 --dtype float64 --repeat 5

stamp "im2col float32 vs torch, resnet50, 1 thread"
bench resnet50_float32_1thread im2col --suite resnet50 --dtype float32 --repeat 7 --threads 1

stamp "reference float64 vs torch float64, resnet50, 1 thread"
bench resnet50_float64_reference_1thread reference --suite resnet50 --dtype float64 --repeat 5 --threads 1

stamp "convspec check naive im2col scipy torch (default settings): wall and CPU time"
if [[ ! -e "$out/check.txt" ]]; then
    { time python -m convspec.cli check naive im2col scipy torch --quiet \
        > "$out/check.txt" 2> "$out/check.stderr" ; } 2> "$out/check.time"
    echo "exit code $? (0: all conform, 1: non-conformance found)"
fi
grep -v '^ \|Warning' "$out/check.txt" | tail -6
cat "$out/check.time"

stamp "harness overhead per call (im2col; torch for its per-call cost) and its profile (im2col)"
[[ -e "$out/harness.json" ]] || python benchmarks/harness_overhead.py im2col torch --json "$out/harness.json" \
    | tee "$out/harness.txt"
[[ -e "$out/harness_profile.json" ]] || python benchmarks/harness_overhead.py im2col --profile --pyinstrument \
    --top 40 --json "$out/harness_profile.json" > "$out/harness_profile.txt"
sed -n '1,20p' "$out/harness_profile.txt"

stamp "im2col peak memory on a layer with a 2.25 GiB column matrix"
[[ -e "$out/memory.json" ]] || python benchmarks/memory_peak.py --json "$out/memory.json" | tee "$out/memory.txt"

stamp "im2col float32 on the other suites"
bench other_suites_float32 im2col --suite mobilenetv2 audio1d unet3d pools --dtype float32 --repeat 5
stamp "im2col float32 on the other suites, 1 thread"
bench other_suites_float32_1thread im2col --suite mobilenetv2 audio1d unet3d pools --dtype float32 --repeat 5 \
    --threads 1
stamp "reference float64 vs torch float64 on the other suites, 1 thread"
bench other_suites_float64_reference_1thread reference --suite mobilenetv2 audio1d unet3d --dtype float64 \
    --repeat 3 --threads 1
stamp "done"
