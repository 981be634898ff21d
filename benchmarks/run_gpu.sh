#!/usr/bin/env bash
# The GPU reference run, committed under benchmarks/results/h200/: one script, about 7 minutes
# on one NVIDIA H200 (no task starts after BUDGET seconds; the run is killed at LIMIT).
#
#   benchmarks/run_gpu.sh --prepare      # here: data into .gpudata/, wheels into .whl/
#   benchmarks/run_gpu.sh --smoke OUT    # here, on the CPU: the same path, tiny (~2 min)
#   benchmarks/run_gpu.sh OUT            # on the GPU machine
#
# In this order (the most wanted first, so a cut-short run loses the least):
#   accuracy    time to accuracy on the real Fashion-MNIST: ResNet-18 (96 px, batch 256,
#               bf16-mixed, channels_last) and LeNet-5, with the accuracies to time from
#               benchmarks/targets.json;
#   overhead    Lightning vs a hand-written loop vs the network alone: ResNet-18 on
#               Fashion-MNIST at 96 px, batch 256 (fp32, and bf16-mixed + channels_last), and
#               LeNet-5 on MNIST-10k;
#   throughput  ResNet-18/50, DenseNet-121, VGG-16-BN at 224 px, batch 256, fp32 / bf16-mixed /
#               fp16-mixed x contiguous / channels_last, torch.compile for ResNet-18 in
#               bf16-mixed + channels_last, side by side with torchvision, with the MFU peaks.
#
# OUT receives report.md, run.log and results.tgz (every file of the run: CSVs, results.json,
# report.md, plots). The data comes from .gpudata/ (else $CLASSIC_CNNS_DATA, else
# ../shared/data), decompressed into a scratch folder; wheels in .whl/, if any, are installed
# into a scratch --target folder first (the bench itself needs none of them). Any setting
# below can be overridden from the environment, e.g. MODELS=resnet18 benchmarks/run_gpu.sh OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
mode=run
case "${1:-}" in --smoke | --prepare) mode=${1#--} && shift ;; esac

if [[ $mode == prepare ]]; then
  shared=${CLASSIC_CNNS_DATA:-../shared/data}
  rm -rf .gpudata && mkdir -p .gpudata
  cp -r "$shared/MNIST" "$shared/FashionMNIST" .gpudata/ && chmod -R u+w .gpudata
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0
  du -sh .gpudata .whl
  exit 0
fi

out=${1:?usage: benchmarks/run_gpu.sh [--smoke | --prepare] OUT}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if compgen -G ".whl/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$work/site" .whl/*.whl
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

src=.gpudata
[[ -d $src ]] || src=${CLASSIC_CNNS_DATA:-../shared/data}
for name in MNIST FashionMNIST; do
  mkdir -p "$work/data/$name/raw"
  for f in "$src/$name/raw/"*.gz; do
    gunzip -c "$f" >"$work/data/$name/raw/$(basename "$f" .gz)"
  done
done

resnet="resnet18/fashion_mnist:size=96:batch=256"
args=(
  --modes "${MODES:-accuracy,overhead,throughput}"
  --targets benchmarks/targets.json
  --data-dir "$work/data"
  --recipes "${RECIPES:-resnet18/fashion_mnist,lenet5/fashion_mnist}"
  --overhead "${OVERHEAD:-$resnet,$resnet:precision=bf16-mixed:format=channels_last,lenet5/mnist10k}"
  --overhead-epochs 2 --overhead-repeats 2
  --models "${MODELS:-resnet18,resnet50,densenet121,vgg16_bn}"
  --precisions "${PRECISIONS:-fp32,bf16-mixed,fp16-mixed}"
  --memory-formats contiguous,channels_last
  --compile-models resnet18 --compile-scope bf16-mixed/channels_last
  --no-progress --out "$work/run"
)
if [[ $mode == smoke ]]; then
  # The same settings, shrunk: 32 px inputs, one step per epoch and evaluation, one epoch.
  args+=(--backends cpu --threads 1 --precisions fp32,bf16-mixed --compile off --batch-size 2
    --max-image-size 32 --limit-train-batches 1 --max-epochs 1 --overhead-repeats 1
    --repeats 1 --warmup 1 --min-time 0)
  limit=${LIMIT:-600}
else
  args+=(--backends cuda --batch-size 256 --compile off,on --repeats 3 --warmup 3
    --min-time 0.3 --budget "${BUDGET:-420}")
  limit=${LIMIT:-560}
fi

set +e
timeout -s KILL "$limit" "$py" -m classic_cnns.bench "${args[@]}" 2>&1 | tee "$out/run.log"
rc=${PIPESTATUS[0]}
set -e
res=$work/run
[[ -d $res ]] || res=$(find "$work" -maxdepth 1 -name '.run.partial-*' | head -n 1)
if [[ -z $res || ! -f $res/results.json ]]; then
  echo "run_gpu.sh: no results (exit status $rc); see $out/run.log" >&2
  exit 1
fi
cp "$res/report.md" "$out/"
tar -czf "$out/results.tgz" -C "$res" .

# The short table, last.
"$py" - "$res/results.json" <<'EOF'
import json, sys

data = json.load(open(sys.argv[1]))
rows = data["rows"]
print(f"\n== {data['wall_s'] or 0:.0f} s; peaks (TFLOP/s): "
      + ", ".join(f"{k} {v / 1e12:.1f}" for k, v in data["matmul_peaks_flops"].items()))
for r in rows.get("accuracy", []):
    reached = r["time_to_target_s"]
    print(f"accuracy   {r['run']:24} {r['status']:7} final {100 * (r['final_test_acc'] or 0):.2f}%"
          f"  train {r['train_s'] or 0:.1f} s  {r['target_acc']} "
          + ("not reached" if reached is None else f"after {reached:.1f} s"))
for r in rows.get("overhead", []):
    if r["status"] == "ok":
        print(f"overhead   {r['model']:9} {r['input_size']:8} {r['precision']:10} "
              f"{r['memory_format']:13} {r['loop']:14} {r['ips'] or 0:9,.0f} img/s  "
              f"vs network x{r['vs_network'] or 0:.2f}  overhead "
              + ("-" if r["overhead_pct"] is None else f"{r['overhead_pct']:+.1f}%"))
best = {}
for r in rows.get("throughput", []):
    if r["status"] == "ok" and r["impl"] == "classic_cnns":
        key = (r["backend"], r["model"])
        if r["train_ips_median"] > best.get(key, {}).get("train_ips_median", 0):
            best[key] = r
for (backend, model), r in best.items():
    print(f"fastest    {backend} {model:12} {r['precision']}/{r['memory_format']}/"
          f"{'compiled' if r['compile'] else 'eager'}: train {r['train_ips_median']:,.0f} img/s,"
          f" MFU {r['train_mfu'] or 0:.2f} ({r['peak_math']}), vs torchvision "
          f"{r['vs_torchvision_train'] or 0:.3f}")
for t in data.get("targets", []):
    print(f"[{t['verdict']}] {t['text']}: {t['measured']}")
EOF
exit "$rc"
