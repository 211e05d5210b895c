#!/usr/bin/env bash
# Every compute benchmark on one GPU machine, sized for a few minutes in all; logs to $OUT (or ./bench-logs).
# Each benchmark checks its fast path against its baseline and exits non-zero on a mismatch; this
# script runs them all and exits non-zero if any failed.
# Usage: bash bench/run_gpu.sh   (needs ../shared: the real BERT vocabulary, wikitext and StereoSet)
set -u
cd "$(dirname "$0")"
out="${OUT:-../bench-logs}"
mkdir -p "$out" /tmp/bench-model
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
  | tee -a "$out/gpu.txt"
failed=()
run() {
  local name=$1; shift
  echo "== $name $*"
  timeout 150 python3 "$@" --model-dir /tmp/bench-model --device cuda >"$out/$name.log" 2>&1 || failed+=("$name")
  grep -v "WARNING" "$out/$name.log"
}
run ig2 ig2_bench.py --prompts 34 --pattern-prompts 34 --steps 20
run heads heads_bench.py --texts 64
run eval eval_bench.py --examples 2106
run prune prune_bench.py --steps 20 --batch 32 --tokens 128
run generation generation_bench.py --prompts 256 --baseline-prompts 64 --scan-prompts 64
run distill distill_bench.py --steps 10 --batch 16 --tokens 128
run glue glue_bench.py --steps 6 --batch 32 --tokens 128 --repeats 2
if ((${#failed[@]})); then echo "FAILED: ${failed[*]}"; exit 1; fi
