#!/usr/bin/env bash
# Checks for a lent GPU machine (one GPU, its own torch with CUDA/NCCL, no network), < 8 min:
#   1. installs the wheels carried in wheels/ (cattrs is not in the image):
#        before the session, on a machine with a registry: pip download --no-deps cattrs -d wheels
#   2. DDP and FSDP2 with nccl on one rank (fp32 and bf16), matched against a single device;
#   3. DDP and FSDP2 on two ranks with gloo on CUDA tensors (both ranks share the GPU);
#   4. peak GPU memory of FSDP2 vs DDP (a 4x wider MLP), on one and on two ranks;
#   5. benchmarks/gpu_features.py: bf16 and fp16 against fp32, activation checkpointing's
#      memory, the async checkpoint's stall against a synchronous save (ratios printed; a part
#      whose option this build lacks prints "skipped: option missing");
#   6. benchmarks/bench_throughput_compile.py: ddp/throughput's cost per step, compile's
#      speed-up and warm-up;
#   7. benchmarks/bench_ddp.py on CUDA: trainer vs hand-written loop (target: <= 2 % overhead).
# Without a GPU (or with --cpu-smoke) it says so and runs the same steps on the CPU with gloo
# and small models (a smoke test). All steps share one budget of BUDGET_S seconds (default 480):
# each is bounded by `timeout` and by what is left of it, and a step with no time left is
# skipped and counted as failed.
#
#   bash benchmarks/gpu_check.sh [--cpu-smoke] [OUT_DIR]   (OUT_DIR: $OUT, else a temp dir)
set -uo pipefail
cd "$(dirname "$0")/.."
cpu_smoke=0
if [ "${1:-}" = "--cpu-smoke" ]; then
    cpu_smoke=1
    shift
fi
out=${1:-${OUT:-$(mktemp -d)}}
budget=${BUDGET_S:-480}
mkdir -p "$out"
: >"$out/checks.jsonl"
export PYTHONPATH=$PWD OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} PYTHONUNBUFFERED=1
python=${PYTHON:-$(command -v python || command -v python3)}
failures=0

run() {  # run SECONDS COMMAND...: bounded (also by the budget), logged, counted when it fails
    local limit=$1 left=$((budget - SECONDS))
    shift
    if [ "$left" -lt 10 ]; then
        echo "!! SKIPPED (budget of ${budget}s spent): $*" | tee -a "$out/log.txt"
        failures=$((failures + 1))
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $* (at most ${limit}s)"
    timeout "$limit" "$@" 2>&1 | tee -a "$out/log.txt"
    local status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        echo "!! FAILED (exit $status): $*" | tee -a "$out/log.txt"
        failures=$((failures + 1))
    fi
}

shopt -s nullglob
wheels=(wheels/*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
    run 120 "$python" -m pip install --no-index --no-deps --quiet "${wheels[@]}"
fi
if ! "$python" -c "import cattrs" 2>/dev/null; then
    echo "cattrs is missing and wheels/ has no wheel for it: on a machine with a registry run" >&2
    echo "  pip download --no-deps cattrs -d wheels   then carry wheels/ with the tree" >&2
    exit 2
fi

"$python" - <<'EOF' | tee -a "$out/log.txt"
import torch
cuda = torch.cuda.is_available()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device: "
      + (torch.cuda.get_device_name(0) if cuda else "none"))
if cuda:
    print(f"NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}, "
          f"bf16 supported: {torch.cuda.is_bf16_supported()}")
EOF
if [ "$cpu_smoke" -eq 0 ] && "$python" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    device=cuda nccl=nccl hidden=1024 bench=(--pairs 6 --steps 100 --rounds 2)
    features=(--device cuda) compile=(--runs 1 --pairs 2 --steps 40 --compile-steps 30)
else
    echo "!! no CUDA device here (or --cpu-smoke): running the CPU paths only (gloo, smaller models)"
    device=cpu nccl=gloo hidden=256 bench=(--pairs 2 --steps 15 --rounds 1)
    features=(--cpu-smoke) compile=(--runs 1 --pairs 1 --steps 15 --compile-steps 10)
fi

check=(benchmarks/gpu_check.py --device "$device" --out "$out" --hidden "$hidden")
torchrun=("$python" -m torch.distributed.run --nproc-per-node)
run 120 "$python" "${check[@]}" --tag single --checks single,single-bf16
run 150 "${torchrun[@]}" 1 "${check[@]}" --tag nccl1 --backend "$nccl" \
    --checks ddp,fsdp2,ddp-bf16,fsdp2-bf16,ddp-mem,fsdp2-mem
run 150 "${torchrun[@]}" 2 "${check[@]}" --tag gloo2 --backend gloo \
    --checks ddp,ddp-mem,fsdp2,fsdp2-mem
run 150 "$python" benchmarks/gpu_check.py --summarize --out "$out"
run 150 "$python" benchmarks/gpu_features.py "${features[@]}" --out "$out"
run 150 "$python" benchmarks/bench_throughput_compile.py --device "$device" "${compile[@]}"
run 240 "$python" benchmarks/bench_ddp.py --device "$device" --backend "$nccl" --nproc 1 "${bench[@]}"

echo "== $failures step(s) failed in ${SECONDS}s; records in $out"
[ "$failures" -eq 0 ]
