"""Regenerate the golden logits in this folder (only after a deliberate architecture change).

Usage, from the repository root::

    .venv/bin/python tests/expected/regenerate.py            # every registered model
    .venv/bin/python tests/expected/regenerate.py lenet5 nin # some models

Each ``<name>.json`` holds the configuration, the state dict digest and the float64
logits that ``tests/test_expected_outputs.py`` compares against. Review the diff before
committing: a changed file means that model now computes something else.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classic_cnns import list_models
from test_expected_outputs import EXPECTED_DIR, write


def main(names: list[str]) -> int:
    """Write the golden file of each name (all registered models if none are given)."""
    known = list_models()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown model(s) {unknown}; expected names from classic_cnns.list_models()")
        return 2
    for name in names or known:
        print(f"wrote {write(name).relative_to(EXPECTED_DIR.parents[1])}")
    stale = [p for p in EXPECTED_DIR.glob("*.json") if p.stem not in known]
    for path in stale:
        print(f"{path.name} belongs to no registered model; delete it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
