"""The package's layers: every import of ``src/classic_cnns`` goes down, and none closes a circle.

The layers are drawn in ``docs/architecture.md``. This test reads the source (no import
runs): every ``import`` and ``from ... import`` at module level, inside functions and under
``TYPE_CHECKING``, resolved to the module it names. A module may import its own layer and
the layers below; an import of a higher layer fails, and so does a cycle between modules.
Imports inside functions are allowed only for the optional or slow third-party packages
listed below, each with its reason; never to dodge a cycle.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

import classic_cnns
from conftest import in_clone

SRC = Path(classic_cnns.__file__).resolve().parent

# Lowest first. A unit is the first name below classic_cnns ("data" for classic_cnns.data.base);
# "__init__" is the package root.
LAYERS: list[set[str]] = [
    {"_version", "_download", "files", "_atomic", "_warn", "_checks", "_signals"},  # disk, checks
    {"recipes", "registry"},  # facts: builders, metadata, recipes, pretrained weights
    {"nets"},  # pure nn.Module networks
    {"finetune", "weights"},  # heads and freezing; tensors into a network
    {"_guard", "_data_classes", "metrics", "optim", "losses", "data", "checkpoint", "_arguments"}
    | {"_distributed", "resume"},
    {"task", "models"},  # the LightningModule and its family classes
    {"hub"},  # create_model / load_model
    {"export", "predict", "plots", "inspect", "inspection", "_measured", "_cli_helpers", "cli"}
    | {"_cli_args", "_cli_errors", "_cli_ckpt", "_cli_loggers", "_launch", "_writers", "bench"},
    {"__init__", "__main__"},
]

# Units with a stricter rule than their layer's: what they may import of ours.
ONLY: dict[str, set[str]] = {
    "files": {"_download", "_checks", "_atomic"},
    "_atomic": {"_signals"},
    "_download": {"_signals"},
    "_signals": set(),
    "_warn": set(),
    "_checks": set(),
    "_version": set(),
    "nets": {"nets", "registry", "_checks"},
    "registry": {"recipes", "_checks"},
}

# Third-party packages a function may import, and why not at the top of the module.
LAZY_IMPORTS_ALLOWED: dict[str, str] = {
    "safetensors": "optional: the export extra",
    "onnx": "optional: the export extra",
    "onnxscript": "optional: the export extra",
    "onnxruntime": "optional: the export extra",
    "matplotlib": "optional: the plot extra",
    "torchcodec": "optional: the image decoder where torchvision no longer has one",
    "sklearn": "slow to import (about 1 s); only the Digits datamodule reads its data",
}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(unit: str) -> int:
    found = [i for i, layer in enumerate(LAYERS) if unit in layer]
    assert found, f"classic_cnns.{unit} is in no layer: add it to LAYERS (and the docs' diagram)"
    return found[0]


def _module_name(path: Path) -> str:
    relative = path.relative_to(SRC.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str) -> str:
    # "classic_cnns.data.Digits" names a class of classic_cnns.data: the longest prefix that
    # is a module of the package.
    parts = module.split(".")
    while parts:
        path = SRC.parent.joinpath(*parts)
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return module


@functools.cache
def _imports(path: Path) -> tuple[tuple[str, int, bool], ...]:
    """``(module imported, line, inside a function)`` for every import in the file."""
    return tuple(_read_imports(path))


def _read_imports(path: Path) -> Iterator[tuple[str, int, bool]]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function |= {id(n) for n in ast.walk(node) if n is not node}
    for node in ast.walk(tree):
        lazy = id(node) in in_function
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _resolve(alias.name), node.lineno, lazy
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                yield _resolve(f"{base}.{alias.name}" if base else alias.name), node.lineno, lazy


@functools.cache
def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        source = _module_name(path)
        targets = graph.setdefault(source, set())
        for target, _, _ in _imports(path):
            if target.startswith("classic_cnns") and target != source:
                targets.add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    # Depth-first search with colours; returns one cycle as a path, or None.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_module_is_in_a_layer() -> None:
    for path in SRC.rglob("*.py"):
        _layer(_unit(_module_name(path)))


def test_imports_only_go_down() -> None:
    wrong = []
    for source, targets in _graph().items():
        unit = _unit(source)
        for target in targets:
            other = _unit(target)
            if other == unit:
                continue
            if unit in ONLY and other not in ONLY[unit]:
                wrong.append(f"{source} imports {target} ({unit} imports only {ONLY[unit]})")
            elif _layer(other) > _layer(unit):
                wrong.append(f"{source} (layer {_layer(unit)}) imports {target} (layer "
                             f"{_layer(other)})")  # fmt: skip
    assert not wrong, "imports that go up a layer:\n" + "\n".join(sorted(wrong))


def test_no_import_circles() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "an import circle: " + " -> ".join(cycle or [])


def test_functions_import_only_optional_or_slow_packages() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for target, line, lazy in _imports(path):
            top = target.split(".")[0]
            if lazy and top not in LAZY_IMPORTS_ALLOWED:
                found.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert not found, "imports inside functions without a stated reason:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"a2"}, "a2": set(), "b": {"b"}}, ["b", "b"]),
    ],
)
def test_the_cycle_finder_finds_what_it_should(
    graph: dict[str, set[str]], cycle: list[str] | None
) -> None:
    assert _cycle(graph) == cycle


def test_the_import_reader_sees_every_kind_of_import() -> None:
    names = {target: lazy for target, _, lazy in _imports(SRC / "hub.py")}
    assert names["classic_cnns.task"] is False  # from classic_cnns.task import ImageClassifier
    assert "classic_cnns.files" in names and "os" in names
    lazy = {target.split(".")[0] for target, _, is_lazy in _imports(SRC / "export.py") if is_lazy}
    assert {"safetensors", "onnx", "onnxruntime"} <= lazy


def _is_string(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(getattr(node.value, "value", None), str)


def _lines(paths: list[Path], docstrings: bool = True) -> dict[str, int]:
    # Lines per file; without `docstrings`, a Python file's docstrings are not counted.
    found = {}
    for path in paths:
        text = path.read_text()
        n = len(text.splitlines())
        if not docstrings and path.suffix == ".py":
            for node in ast.walk(ast.parse(text)):
                body = getattr(node, "body", None)
                if (
                    isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                    and body
                    and ast.get_docstring(node, clean=False) is not None
                ):
                    n -= body[0].end_lineno - body[0].lineno + 1  # type: ignore[operator]
            # A constant's docstring: the string that follows its assignment.
            for node, after in itertools.pairwise(ast.parse(text).body):
                if isinstance(node, ast.Assign | ast.AnnAssign) and _is_string(after):
                    n -= after.end_lineno - after.lineno + 1  # type: ignore[operator]
        found[path.relative_to(SRC.parents[1]).as_posix()] = n
    return found


def test_no_source_file_is_over_600_lines() -> None:
    found = _lines(sorted(SRC.rglob("*.py")))
    assert len(found) > 40, f"expected the package's modules under {SRC}; found {len(found)}"
    assert {path: n for path, n in found.items() if n > 600} == {}


@in_clone
def test_the_benchmark_code_is_at_most_1600_lines() -> None:
    # Wherever it lives: the installed `classic-cnns bench` and the repository's benchmarks/.
    # Code, comments and blank lines count; docstrings, whose examples every public name must
    # have, do not. 1,500 until the GPU run's step profiler (benchmarks/profile_step.py).
    benchmarks = SRC.parents[1] / "benchmarks"
    scripts = [*benchmarks.glob("*.py"), *benchmarks.glob("*.sh")]
    paths = sorted([*(SRC / "bench").glob("*.py"), *scripts])
    found, total = _lines(paths, docstrings=False), _lines(paths)
    assert "benchmarks/dev.py" in found and "src/classic_cnns/bench/core.py" in found
    assert sum(found.values()) < sum(total.values())  # the docstrings were found and left out
    assert sum(found.values()) <= 1600, found
