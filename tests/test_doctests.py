"""Every docstring example in the package runs and shows what it says.

The examples are the first code a user copies, so they run as tests: one test per module,
with ``doctest``'s ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE`` and a scratch working directory
(some examples write files). ``doctest`` does not see the docstring of a constant (a string
right after a module-level assignment): those are found with ``ast``, one test each.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import itertools
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import classic_cnns
from classic_cnns import models, registry

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(classic_cnns.__path__, prefix="classic_cnns.")
    if not info.name.endswith("__main__")
)


def _attribute_docstrings(name: str) -> list[tuple[str, int, str]]:
    """``(NAME, line, docstring)`` of the module's constants whose docstring has examples."""
    origin = importlib.util.find_spec(name).origin  # read, not imported, at collection
    tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
    found = []
    for before, node in itertools.pairwise(tree.body):
        if not (
            isinstance(before, (ast.Assign, ast.AnnAssign))
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            continue
        targets = before.targets if isinstance(before, ast.Assign) else [before.target]
        doc = node.value.value
        if doctest.DocTestParser().get_examples(doc):
            found.extend((ast.unparse(target), node.lineno, doc) for target in targets)
    return found


ATTRIBUTE_DOCSTRINGS = [
    pytest.param(name, *found, id=f"{name}.{found[0]}")
    for name in MODULES
    for found in _attribute_docstrings(name)
]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    # Examples may register models (register_model's does): the registry comes back as it was.
    saved = [(table, dict(table)) for table in (registry._REGISTRY, models.FAMILIES)]
    try:
        yield
    finally:
        for table, content in saved:
            table.clear()
            table.update(content)


@pytest.mark.usefixtures("scratch")
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    attempted = _run([t for t in finder.find(module, name) if t.examples], name)
    # A module with no examples (a package's __init__, an alias) has no public name of its
    # own: what it exports is defined, and shown, elsewhere.
    public = getattr(module, "__all__", [k for k in vars(module) if not k.startswith("_")])
    own = [k for k in public if getattr(getattr(module, k), "__module__", None) == name]
    assert attempted > 0 or not own, f"{name} shows no example of {own}"


@pytest.mark.usefixtures("scratch")
@pytest.mark.parametrize(("name", "attribute", "line", "doc"), ATTRIBUTE_DOCSTRINGS)
def test_constant_docstring_examples_run(name: str, attribute: str, line: int, doc: str) -> None:
    module = importlib.import_module(name)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(
        doc, dict(vars(module)), f"{name}.{attribute}", module.__file__, line - 1
    )
    attempted = _run([test], f"{name}.{attribute}")
    assert attempted > 0


def _run(tests: list[doctest.DocTest], where: str) -> int:
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {where}"
    return result.attempted


def test_every_module_is_checked() -> None:
    assert {"classic_cnns.task", "classic_cnns.nets.lenet", "classic_cnns.bench.throughput"} <= set(
        MODULES
    )
    # The constants' docstrings are found too (doctest alone finds none of them).
    assert {
        "classic_cnns._download.DOWNLOAD_TIMEOUT",
        "classic_cnns.data.images.IMAGE_EXTENSIONS",
        "classic_cnns.data.preprocessing.ResizeMode",
        "classic_cnns.files.DATA_CHECKPOINT_KEY",
        "classic_cnns.files.DATA_ENV",
        "classic_cnns.bench.accuracy.RECIPES",
        "classic_cnns.bench.accuracy.D2L_BOOK",
        "classic_cnns.bench.accuracy.DATASETS",
        "classic_cnns.bench.accuracy.QUICK",
        "classic_cnns.bench.throughput.MAX_STEPS",
    } <= {case.id for case in ATTRIBUTE_DOCSTRINGS}
