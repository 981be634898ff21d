#!/usr/bin/env bash
# The GPU tests and reference run, about 8 minutes on one H200 (benchmarks/README.md says how):
#   benchmarks/run_gpu.sh [--smoke] OUT    # --smoke: here, on the CPU, the same path, tiny
#   benchmarks/run_gpu.sh --prepare        # here, once: the data and wheels to carry
# Most wanted first: `pytest -m gpu`, a step's profile, time to accuracy on Fashion-MNIST,
# Lightning overhead, throughput with MFU beside torchvision. No part starts after BUDGET s;
# LIMIT s kills all; OUT gets the reports and an archive of the finished parts after each part.
set -euo pipefail
here=$PWD data=${CLASSIC_CNNS_DATA:+$(realpath -m -- "${CLASSIC_CNNS_DATA/#\~/$HOME}")}  # the caller's
cd "$(dirname "$0")/.." && data=${data:-../shared/data}  # the clone's root; beside it, the default
py=${PYTHON:-python3} mode=run
[[ ${1:-} == --smoke ]] && mode=smoke && shift
if [[ ${1:-} == --prepare ]]; then  # ../shared does not travel; the GPU's Python lacks these
  rm -rf .gpudata .whl && mkdir -p .gpudata
  cp -r "$data/MNIST" "$data/FashionMNIST" .gpudata/ && chmod -R u+w .gpudata
  exec "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0
fi
[[ ${1:-} == [!-]* ]] || { echo "usage: benchmarks/run_gpu.sh [--smoke | --prepare] OUT" >&2; exit 2; }
out=$(cd "$here" && realpath -m -- "$1") work=$(mktemp -d) && mkdir -p "$out" "$work/run"
trap 'rm -rf "$work"' EXIT
if compgen -G ".whl/*.whl" >/dev/null; then  # what the GPU machine's Python lacks
  "$py" -m pip install -q --no-index --no-deps --no-compile --target "$work/site" .whl/*.whl
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
src=.gpudata && [[ -d $src ]] || src=$data
for f in "$src"/{MNIST,FashionMNIST}/raw/*.gz; do  # decompressed: no md5 check of the .gz
  d=$work/data/${f#"$src"/} && mkdir -p "${d%/*}" && gunzip -c "$f" >"${d%.gz}"
done
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 CLASSIC_CNNS_DATA=$work/data
"$py" -c 'import jsonargparse' 2>/dev/null || { echo "no jsonargparse: benchmarks/GPU-MACHINE.md" >&2 && exit 1; }
[[ $mode == smoke ]] || "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' \
  || { echo "no CUDA device" >&2; exit 1; }  # else every part would measure the CPU
tta=$("$py" -c 'import json; print(json.load(open("benchmarks/targets.json"))["time_to_accuracy"])')
r18="model: resnet18, dataset: fashion_mnist, image_size: 96, batch_size: 256"
if [[ $mode == smoke ]]; then  # the same path, shrunk: 32 px, one step per epoch, CPU
  dev=cpu r18="model: resnet18, dataset: fashion_mnist, image_size: 32, batch_size: 8"
  acc=(--accuracy.backend cpu --accuracy.max_image_size 32 --accuracy.max_epochs 1
    --accuracy.limit_train_batches 1)
  ovh=(--epochs 2 --repeats 1 --limit_train_batches 1) prof=(--dataset digits --warmup 3 --steps 3)
  thr=(--throughput.precisions '[fp32,bf16-mixed]' --throughput.compile '[]'
    --throughput.batch_size 2 --throughput.max_image_size 32 --throughput.repeats 1
    --throughput.warmup 1 --throughput.min_time 0 --threads 1)
else
  dev=cuda acc=(--accuracy.backend cuda) ovh=(--epochs 3 --repeats 2)
  prof=(--model resnet18 --dataset fashion_mnist --image_size 96 --batch_size 256)
  thr=(--throughput.precisions '[fp32,bf16-mixed]' --throughput.batch_size 256
    --throughput.compile '[resnet18/bf16-mixed/channels_last]' --throughput.min_time 0.3
    --throughput.repeats 3 --throughput.warmup 2)
fi
budget=${BUDGET:-420} limit=${LIMIT:-560} log=$out/run.log
collect() {  # the reports and an archive of what is finished, into OUT
  cat "$work"/run/*/report.md >"$out/report.md" 2>/dev/null || true
  tar -czf "$out/results.tgz" -C "$work/run" . 2>/dev/null || true
}
step() {  # NAME COMMAND...: unless the budget is spent; killed at the limit, a hang after cap s
  ((SECONDS < budget)) || { echo "$1: not run, $budget s spent" | tee -a "$log" && return; }
  local left=$((limit > SECONDS ? limit - SECONDS : 1))
  timeout -s KILL $((${cap:-$left} < left ? ${cap:-$left} : left)) "${@:2}" 2>&1 | tee -a "$log" \
    || true
  collect
}
[[ ${TESTS:-1} == 0 ]] || cap=180 step tests env CLASSIC_CNNS_DATA="$src" "$py" -m pytest \
  tests/test_gpu.py -m gpu -n 4 -q -p no:cacheprovider  # TESTS=0: the measurements alone
cap=90 step profile "$py" benchmarks/profile_step.py --out "$work/run/profile" --backend $dev \
  "${prof[@]}"  # where a step's time goes: the task's against a loss-only step
step accuracy "$py" -m classic_cnns bench --modes '[accuracy]' "${acc[@]}" \
  --accuracy.recipes "${RECIPES:-[resnet18/fashion_mnist,lenet5/fashion_mnist]}" \
  --accuracy.time_to_accuracy "$tta" --budget $((budget - SECONDS)) --out "$work/run/accuracy"
settings="[{$r18}, {$r18, precision: bf16-mixed, channels_last: true}, {model: lenet5}]"
cap=150 step overhead "$py" benchmarks/dev.py overhead --backend $dev "${ovh[@]}" \
  --settings "${OVERHEAD:-$settings}" --out "$work/run/overhead"
step throughput "$py" -m classic_cnns bench --modes '[throughput]' --throughput.backends "[$dev]" \
  --throughput.models "${MODELS:-[resnet18,resnet50,densenet121,vgg16_bn]}" "${thr[@]}" \
  --throughput.memory_formats '[contiguous,channels_last]' --budget $((budget - SECONDS)) \
  --out "$work/run/throughput"
"$py" benchmarks/dev.py targets --folder "$work/run" | tee -a "$log"
cp "$work/run/targets.md" "$out/" && collect
grep -h '^- On ' "$work"/run/*/report.md || true  # the fastest configuration per backend
