#!/usr/bin/env bash
# The CPU reference run, committed under benchmarks/results/reference/: 12 to 30 minutes on 2
# cores. Every command of benchmarks/README.md into OUT/<part>, then our targets, OUT/targets.md.
#   CLASSIC_CNNS_DATA=../shared/data benchmarks/run_reference.sh [--quick] [OUT] [BENCH FLAGS...]
# --quick: small grids (minutes), OUT by default reference-quick. THREADS: every part's threads.
set -euo pipefail
here=$PWD && export CLASSIC_CNNS_DATA=${CLASSIC_CNNS_DATA:+$(realpath -m -- "${CLASSIC_CNNS_DATA/#\~/$HOME}")}
cd "$(dirname "$0")/.."  # the clone's root; OUT and CLASSIC_CNNS_DATA are the caller's
py=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
full=(--throughput.max_image_size 64 --throughput.compile "['*/fp32/contiguous']" --accuracy.recipes
  "[lenet5/digits, '*/mnist10k*', lenet5/mnist, lenet5/fashion_mnist, '*/cifar10']")
quick=() && [[ ${1:-} == --quick ]] && quick=(--quick) full=() && shift  # flags given still win
out=benchmarks/results/reference${quick[*]:+-quick} common=(--force true ${THREADS:+--threads $THREADS})
[[ ${1:-} && $1 != -* ]] && out=$(cd "$here" && realpath -m -- "$1") && shift
tta=$("$py" -c 'import json; print(json.load(open("benchmarks/targets.json"))["time_to_accuracy"])')
"$py" -m classic_cnns bench "${quick[@]}" "${full[@]}" --out "$out/bench" "${common[@]}" \
  --accuracy.time_to_accuracy "$tta" "$@"
dev() { "$py" benchmarks/dev.py "$1" --out "$out/$1" "${common[@]}" "${@:2}"; }
dev overhead ${quick[*]:+--epochs 2 --repeats 2}  # --quick: fewer
dev pipeline ${quick[*]:+--repeats 3}
dev scaling ${quick[*]:+--epochs 2}
"$py" benchmarks/dev.py targets --folder "$out"
