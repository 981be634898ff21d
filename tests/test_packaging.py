"""Release hygiene that needs no build: docstrings, one version, changelog, metadata, CI pins.

Building and installing the wheel is ``.ci/check_wheel``'s job (run by ``.ci/run``); the
documentation site's strict build is ``mkdocs build --strict``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pytest itself depends on tomli there)
    import tomli as tomllib

import classic_cnns
from conftest import in_clone

ROOT = Path(__file__).parents[1]
# The modules with a page in the API reference (docs/api/<name>.md); each has an __all__.
PUBLIC_MODULES = (
    "files",
    "registry",
    "task",
    "models",
    "nets",
    "hub",
    "optim",
    "recipes",
    "data",
    "inspection",
    "metrics",
    "losses",
    "finetune",
    "weights",
    "export",
    "predict",
    "plots",
    "checkpoint",
    "resume",
    "bench",
    "cli",
    # The bench's modes and shared core, on the bench page.
    "bench.core",
    "bench.throughput",
    "bench.accuracy",
)


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _public_objects() -> dict[str, object]:
    """``{qualified name: object}`` for the classes and functions of every public ``__all__``."""
    found: dict[str, object] = {}
    for module_name in ("classic_cnns", *(f"classic_cnns.{m}" for m in PUBLIC_MODULES)):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return found


def test_every_public_module_is_in_the_api_reference() -> None:
    # classic_cnns.recipes, nets and cli had none. Submodules of a package are on its page;
    # classic_cnns.inspect is the deprecated alias of classic_cnns.inspection.
    top = {
        info.name
        for info in pkgutil.iter_modules(classic_cnns.__path__)
        if not info.name.startswith("_") and info.name != "inspect"
    }
    assert top == {m.split(".")[0] for m in PUBLIC_MODULES}


def test_every_public_module_declares_all_and_it_names_real_objects() -> None:
    for module_name in ("classic_cnns", *(f"classic_cnns.{m}" for m in PUBLIC_MODULES)):
        module = importlib.import_module(module_name)
        assert isinstance(getattr(module, "__all__", None), list), f"{module_name} has no __all__"
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module_name}.__all__ names what it lacks: {missing}"
        assert module.__doc__, f"{module_name} has no module docstring"


def test_every_public_class_and_function_has_a_docstring_with_an_example() -> None:
    without = [
        name for name, obj in sorted(_public_objects().items()) if ">>>" not in (obj.__doc__ or "")
    ]
    assert not without, f"public names whose docstring has no '>>>' example: {without}"


def test_the_version_has_one_source() -> None:
    from classic_cnns import _version

    assert classic_cnns.__version__ is _version.__version__
    Version(classic_cnns.__version__)  # PEP 440, or this raises
    project = _pyproject()
    assert "version" not in project["project"], "pyproject.toml must not repeat the version"
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "classic_cnns._version.__version__"
    # The installed metadata says the same (reinstall after changing _version.py).
    assert importlib.metadata.version("classic-cnns") == classic_cnns.__version__
    others = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "src" / "classic_cnns").rglob("*.py")
        if path.name != "_version.py"
        and re.search(r"^__version__\s*=", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert not others, f"__version__ is assigned outside _version.py: {others}"


def test_the_changelog_opens_with_an_unreleased_section() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert releases, "CHANGELOG.md has no '## [...]' release sections"
    assert releases[0] == "Unreleased", f"the first section is {releases[0]!r}, not Unreleased"
    for release in releases[1:]:
        Version(release)  # each released section is named by its version


def test_declared_dependencies_admit_the_tested_versions_and_pin_nothing() -> None:
    project = _pyproject()["project"]
    requirements = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    for name in ("torch", "torchvision", "lightning", "torchmetrics"):
        assert name in requirements, f"{name} is not a dependency"
        installed = importlib.metadata.version(name)
        assert requirements[name].specifier.contains(installed, prereleases=True), (
            f"{requirements[name]} excludes the installed {name} {installed}"
        )
    for requirement in [*requirements.values()]:
        pins = [s for s in requirement.specifier if s.operator in {"==", "===", "~="}]
        assert not pins, f"{requirement} pins users to one version"


@in_clone
def test_the_minimum_versions_ci_installs_are_the_declared_floors() -> None:
    # .github/minimum-versions.txt pins what the "minimum versions" CI job installs; each pin
    # must be the floor pyproject.toml declares, so that a raised floor is tested there.
    # Every dependency and every requirement of the plot and export extras is pinned there
    # (tensorboard's extra is not: the dev extra, which the job installs, leaves it out).
    lines = (ROOT / ".github" / "minimum-versions.txt").read_text(encoding="utf-8").splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    declared = {
        Requirement(r).name: Requirement(r)
        for r in [*project["dependencies"], *extras["plot"], *extras["export"]]
    }
    for pin in pins:
        (version,) = [s.version for s in pin.specifier if s.operator == "=="]
        assert pin.name in declared, f"{pin.name} is pinned but not a dependency"
        floors = [Version(s.version) for s in declared[pin.name].specifier if s.operator == ">="]
        assert floors == [Version(version)], (
            f"{declared[pin.name]} but minimum-versions.txt has {pin}"
        )
    unpinned = sorted(set(declared) - {pin.name for pin in pins})
    assert not unpinned, f"minimum-versions.txt pins no version of {unpinned}"


def test_every_package_the_source_imports_at_module_level_is_declared() -> None:
    # A dependency of a dependency may vanish in its next release: what we import, we declare.
    # (Imports inside functions are the optional extras', checked by test_layers.)
    declared = {
        Requirement(r).name.lower().replace("_", "-")
        for r in _pyproject()["project"]["dependencies"]
    }
    distributions = importlib.metadata.packages_distributions()
    missing = set()
    for path in (ROOT / "src" / "classic_cnns").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in [*tree.body, *(n for s in tree.body if isinstance(s, ast.If) for n in s.body)]:
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for top in {m.split(".")[0] for m in modules}:
                if top in sys.stdlib_module_names or top == "classic_cnns":
                    continue
                names = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
                if not names & declared:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not in [project] dependencies: {sorted(missing)}"


def test_the_extras_hold_what_ci_and_users_need() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    names = {extra: {Requirement(r).name for r in reqs} for extra, reqs in extras.items()}
    assert {"plot", "export", "docs", "dev"} <= set(names)
    assert "matplotlib" in names["plot"]
    assert "tensorboard" in names["tensorboard"]  # Lightning's TensorBoardLogger needs it
    assert {"onnx", "onnxruntime", "safetensors"} <= names["export"]
    assert {"mkdocs", "mkdocs-material", "mkdocstrings"} <= names["docs"]
    # dev is what CI installs: the tests, lint, types, release checks, docs and both extras.
    expected = {"pytest", "ruff", "mypy", "build", "twine"} | names["plot"] | names["export"]
    assert expected | names["docs"] <= names["dev"], (expected | names["docs"]) - names["dev"]


def test_py_typed_ships_with_the_package() -> None:
    assert (Path(classic_cnns.__file__).parent / "py.typed").is_file()


@pytest.mark.slow
def test_a_users_code_with_the_timm_interface_type_checks_strictly(tmp_path: Path) -> None:
    # model.net was an nn.Module: model.net.reset_classifier(0) and forward_head(...,
    # pre_logits=True), as the README shows them, were "Tensor" not callable under mypy.
    from mypy import api as mypy_api  # a dev dependency, as for .ci/run's type check

    user = tmp_path / "user.py"
    user.write_text(
        "import torch\n"
        "from classic_cnns import create_model\n\n"
        'model = create_model("resnet18", num_classes=10)\n'
        "maps: torch.Tensor = model.net.forward_features(torch.zeros(1, 3, 64, 64))\n"
        "features = model.net.forward_head(maps, pre_logits=True)\n"
        "model.net.reset_classifier(0)\n"
        "width: int = model.net.num_features\n"
    )
    cache = f"--cache-dir={tmp_path / 'cache'}"
    out, err, status = mypy_api.run(["--strict", "--no-incremental", cache, str(user)])
    assert status == 0, out + err


@in_clone
def test_the_api_reference_has_a_page_for_every_public_module() -> None:
    mkdocs = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for module in PUBLIC_MODULES:
        name = module.split(".")[0]  # a package's modules are on the package's page
        page = ROOT / "docs" / "api" / f"{name}.md"
        assert page.is_file(), f"docs/api/{name}.md is missing"
        assert f"::: classic_cnns.{module}\n" in page.read_text(encoding="utf-8")
        assert f"api/{name}.md" in mkdocs, f"api/{name}.md is not in the mkdocs nav"
    for page in (ROOT / "docs").rglob("*.md"):
        relative = page.relative_to(ROOT / "docs").as_posix()
        assert relative in mkdocs, f"docs/{relative} is not in the mkdocs nav"


@in_clone
@pytest.mark.parametrize("workflow", sorted((ROOT / ".github" / "workflows").glob("*.yml")))
def test_workflow_actions_are_pinned_to_commit_shas(workflow: Path) -> None:
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", workflow.read_text(), re.MULTILINE)
    assert uses, f"{workflow.name} uses no actions"
    for action, rest in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), (
            f"{workflow.name}: {action} is not pinned to a full commit SHA"
        )
        assert re.match(r"\s+# v\d", rest), f"{workflow.name}: {action} has no '# vX' comment"


@in_clone
def test_every_docs_snippet_section_exists_in_its_file() -> None:
    # docs/*.md include README sections by name (`--8<-- "README.md:d2l"`); a section whose
    # markers were edited away breaks `mkdocs build --strict` only at the end of CI.
    includes = [
        (page.name, target)
        for page in sorted((ROOT / "docs").glob("*.md"))
        for target in re.findall(r'^--8<-- "([^"]+)"', page.read_text(), flags=re.M)
    ]
    assert includes, "docs/ includes no snippets; the pattern above no longer matches them"
    for page, target in includes:
        path, _, section = target.partition(":")
        text = (ROOT / path).read_text()
        if section:
            for marker in ("start", "end"):
                assert f"--8<-- [{marker}:{section}]" in text, (
                    f"docs/{page} includes {target!r}, but {path} has no [{marker}:{section}]"
                )


def test_every_test_the_guarantees_name_exists() -> None:
    # README's "Guarantees" promise what named tests check: a renamed or removed test would
    # leave a promise that nothing backs.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    files = set(re.findall(r"\b(test_\w+\.py)", section))
    named = set(re.findall(r"\b(test_\w+)\b(?!\.py)", section))
    modules = {path.name: path for path in (ROOT / "tests").glob("test_*.py")}
    defined = {
        node.name
        for path in modules.values()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef)
    }
    assert files <= set(modules), sorted(files - set(modules))
    assert len(named) >= 10 and named <= defined, sorted(named - defined)


def test_the_readme_links_resolve_on_pypi() -> None:
    # The README is the package's long description: on pypi.org a relative link resolves
    # against pypi.org, and docs/ and benchmarks/ are not in the sdist either.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert len(targets) > 10, "expected the README's links"
    assert [t for t in targets if not t.startswith(("https://", "http://", "#"))] == []
