"""Every docstring example in the package runs and shows what it says.

The examples are the first code a user copies, so they run as tests: one test per module,
with ``doctest``'s ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE`` and a scratch working directory
(some examples write files).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import classic_cnns
from classic_cnns import models, registry

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(classic_cnns.__path__, prefix="classic_cnns.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # Examples may register models (register_model's does): the registry comes back as it was.
    saved = [(table, dict(table)) for table in (registry._REGISTRY, models.FAMILIES)]
    try:
        _run_examples(name)
    finally:
        for table, content in saved:
            table.clear()
            table.update(content)


def _run_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    tests = [t for t in finder.find(module, name) if t.examples]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_every_module_is_checked() -> None:
    assert {"classic_cnns.task", "classic_cnns.nets.lenet", "classic_cnns.bench.throughput"} <= set(
        MODULES
    )
