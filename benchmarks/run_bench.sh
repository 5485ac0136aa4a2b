#!/usr/bin/env bash
# Every measurement of benchmarks/RESULTS.md, in order, one after the other (never two at once:
# they would share the cores). Outputs (text, JSON, Markdown) go to OUTDIR (default benchmarks/results).
#
#   bash benchmarks/run_bench.sh [OUTDIR]
#
# `python -m convspec.bench` is `convspec bench`; `python -m convspec.cli` is `convspec`: both run
# from a checkout without installing. Benchmarks never assert times; they report.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results}
mkdir -p "$out"
bench() { python -m convspec.bench --quiet "$@"; }
stamp() { echo "== $* · $(date -u '+%Y-%m-%d %H:%M:%S UTC') · load $(cut -d' ' -f1-3 /proc/loadavg)"; }

stamp "im2col float32 vs torch, resnet50 (forward, backward)"
bench im2col --suite resnet50 --dtype float32 --repeat 7 \
    --json "$out/resnet50_float32.json" --markdown "$out/resnet50_float32.md" | tee "$out/resnet50_float32.txt"

stamp "the same with one thread for every library (robust to other jobs on the cores)"
bench im2col --suite resnet50 --dtype float32 --repeat 7 --threads 1 \
    --json "$out/resnet50_float32_1thread.json" --markdown "$out/resnet50_float32_1thread.md" \
    | tee "$out/resnet50_float32_1thread.txt"

stamp "reference float64 vs torch float64, resnet50"
bench reference --suite resnet50 --dtype float64 --repeat 5 \
    --json "$out/resnet50_float64_reference.json" --markdown "$out/resnet50_float64_reference.md" \
    | tee "$out/resnet50_float64_reference.txt"

stamp "im2col float32 on the other suites"
bench im2col --suite mobilenetv2 audio1d unet3d pools --dtype float32 --repeat 5 \
    --json "$out/other_suites_float32.json" --markdown "$out/other_suites_float32.md" \
    | tee "$out/other_suites_float32.txt"

stamp "im2col peak memory on a layer with a 2.25 GiB column matrix"
python benchmarks/memory_peak.py --json "$out/memory.json" | tee "$out/memory.txt"

stamp "convspec check naive im2col scipy torch (default settings): wall and CPU time"
{ time python -m convspec.cli check naive im2col scipy torch --quiet --report "$out/check.json" \
    > "$out/check.txt" 2> "$out/check.stderr" ; } 2> "$out/check.time"
grep -v '^ \|Warning' "$out/check.txt" | tail -6
cat "$out/check.time"

stamp "harness overhead per call and its profile (im2col, default settings)"
python benchmarks/harness_overhead.py im2col torch --profile --top 25 --json "$out/harness.json" \
    | tee "$out/harness.txt"
stamp "done"
