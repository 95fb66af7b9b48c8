#!/usr/bin/env bash
# The GPU check docs/accuracy.md asks for whenever a CUDA GPU is at hand, in under 10 minutes:
# profile the GPU (`inferplan profile --cuda`), then time two catalog models on it with `validate`
# against that profile (eager PyTorch steps, as transformers runs them). CATALOG_DEVICE names the catalog
# GPU this is when its CUDA name does not match one.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR] [CATALOG_DEVICE]     # e.g. bash benchmarks/gpu_check.sh gpu-check h100-sxm
#
# Needs `pip install '.[measure]'` with a CUDA build of torch. Everything lands in OUT_DIR (default
# gpu-check-YYYYMMDD): profile.yaml, profile.json, one validate JSON per model, gpu.txt.
set -euo pipefail
out=${1:-${OUT:-gpu-check-$(date -u +%Y%m%d)}}
device=${2:-}
mkdir -p "$out"
export INFERPLAN_REGISTRY="$out/runs.sqlite" INFERPLAN_PROFILE="$out/profile.yaml"
python -c "import torch; assert torch.cuda.is_available(), 'this torch sees no CUDA GPU'; \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" | tee "$out/gpu.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >> "$out/gpu.txt" 2>&1 || true
time inferplan profile --cuda ${device:+--as "$device"} --json > "$out/profile.json"
for model in llama-3.2-1b qwen2.5-7b; do
  args=(validate "$model" --dtype bf16 --layers 4 --batches 1,8,32 --contexts 512,4096 --prompts 128,512,2048
        --out "$out/runs" --json)
  time inferplan "${args[@]}" --device local > "$out/validate-$model.json"
done
python - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for f in sorted(out.glob("validate-*.json")):
    s = json.loads(f.read_text())
    print(f"{f.stem}: median APE {s['median_ape_pct']:.1f}% over {s['num_points']} points ({s['backend']})")
PY
