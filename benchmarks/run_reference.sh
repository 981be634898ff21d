#!/usr/bin/env bash
# The reference run whose results are committed under benchmarks/results/reference/.
#
# Every mode on every backend present: throughput of eight architectures (the four that
# torchvision ships side by side with its own), inputs larger than 64x64 shrunk to 64x64 so
# a 2-core CPU finishes in about an hour, torch.compile for fp32/contiguous; Lightning
# overhead, data pipeline, all accuracy recipes whose data is here, the optimizer comparison,
# DDP scaling at 1 and 2 CPU processes (1 and every GPU on CUDA).
# The targets it checks (and the accuracies it times) are in benchmarks/targets.json.
# Run it on an otherwise idle machine. Extra arguments are passed on, e.g.
#   benchmarks/run_reference.sh --threads 2
#   benchmarks/run_reference.sh --compile-scope all --max-image-size 224   # the full grid
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then
  py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
else
  py=python3
fi

exec "$py" -m classic_cnns.bench \
  --out benchmarks/results/reference --force \
  --targets benchmarks/targets.json \
  --models lenet5,resnet20,nin,densenet_bc_100,alexnet,resnet18,googlenet,densenet121 \
  --max-image-size 64 \
  --compile-scope base \
  "$@"
