"""Peak memory of one DenseNet training step, with and without ``memory_efficient``.

Each configuration runs in a fresh process: build the network and a batch, then one
forward and backward pass in training mode. The figure is the process's peak resident
memory (``ru_maxrss``) minus its resident memory just before the step, so it counts the
activations kept for the backward pass, the gradients and the allocator's slack.

    OMP_NUM_THREADS=1 python benchmarks/densenet_memory.py [--model densenet121]
        [--batch 8] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _child(model: str, batch: int, size: int, memory_efficient: bool) -> None:
    import torch
    import torch.nn.functional as F

    from classic_cnns import model_info

    torch.manual_seed(0)
    net = model_info(model).build_net(num_classes=10, memory_efficient=memory_efficient).train()
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    before = _rss_bytes()
    start = time.perf_counter()
    F.cross_entropy(net(x), y).backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"step_mib": (peak - before) / 2**20, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="densenet121")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--child", choices=("plain", "efficient"))
    args = parser.parse_args()
    if args.child:
        _child(args.model, args.batch, args.size, args.child == "efficient")
        return
    threads = __import__("os").environ.get("OMP_NUM_THREADS", "unset")
    print(f"{args.model}, batch {args.batch} at {args.size}x{args.size}, OMP_NUM_THREADS={threads}")
    for mode in ("plain", "efficient"):
        command = [sys.executable, __file__, "--child", mode]
        command += ["--model", args.model, "--batch", str(args.batch), "--size", str(args.size)]
        result = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        print(
            f"  {mode:9s}  peak step memory {result['step_mib']:7.1f} MiB  "
            f"forward+backward {result['seconds']:5.1f} s"
        )


if __name__ == "__main__":
    main()
