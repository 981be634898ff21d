"""The downstream contract: every registered network behaves like a timm and torchvision model.

In the style of timm's ``tests/test_models.py``, each check runs on every name of
``list_models()``, on the default build with 10 classes:

* ``forward_features`` returns unpooled maps ``(N, C, H, W)``; ``forward_head`` pools and
  classifies, and with ``pre_logits=True`` returns the ``(N, num_features)`` features the
  final classifier sees; ``forward(x) == forward_head(forward_features(x))``;
* ``reset_classifier(0)`` leaves a headless backbone that returns ``(N, num_features)`` and
  trains under a user's own linear layer; ``reset_classifier(7)`` replaces the head alone;
* ``torch.jit.script`` works and gives the eager outputs, also after save and load
  (torchvision's requirement);
* the declared ``first_conv`` and ``head_names`` (timm's ``first_conv`` and ``classifier``)
  name the modules that see the input and that ``reset_classifier`` replaces.

Inputs are 32x32 (AlexNet's ImageNet stem needs 63). Each network is built once per module,
as ``build_net`` builds it by default, except that the VGGs get their ``small_input`` head:
the same code as the ImageNet head with 512 features instead of 4096, without 100 million
parameters to initialise, copy and save eight times. The ImageNet head's pre-logits are
checked against torchvision's in ``test_nets.py``.

The documentation contract, last: every public function, class and submodule and the
methods of every public class have a docstring with a ``>>>`` example, and the examples of
constants and aliases run.
"""

from __future__ import annotations

import ast
import copy
import doctest
import importlib
import inspect
import itertools
import pkgutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LightningCLI
from torch import Tensor, nn

import classic_cnns
import classic_cnns.losses
import classic_cnns.nets.vgg
from classic_cnns import list_models, model_info
from classic_cnns.finetune import head_names, head_parameters
from classic_cnns.weights import first_conv_name

NUM_CLASSES = 10
SIZE = 32

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:FutureWarning"),
]


@pytest.fixture(scope="module", params=list_models())
def built(request: pytest.FixtureRequest) -> tuple[str, nn.Module]:
    """``(name, network)``, seeded and in eval mode; tests that change it take a copy."""
    info = model_info(request.param)
    kwargs = {"small_input": True} if info.family == "vgg" else {}
    torch.manual_seed(0)
    return request.param, info.build_net(num_classes=NUM_CLASSES, **kwargs).eval()


def _input(name: str, batch: int = 2) -> Tensor:
    info = model_info(name)
    size = max(SIZE, *info.min_input_size)
    generator = torch.Generator().manual_seed(1)
    return torch.randn(batch, info.input_size[0], size, size, generator=generator)


def _outputs(out: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def _head_keys(net: nn.Module) -> set[str]:
    prefixes = tuple(f"{n}." for n in net.head_names)  # type: ignore[union-attr]
    return {k for k in net.state_dict() if k.startswith(prefixes)}


def test_forward_features_are_unpooled_maps_and_forward_head_classifies(
    built: tuple[str, nn.Module],
) -> None:
    name, net = built
    x = _input(name)
    with torch.no_grad():
        maps = net.forward_features(x)
        logits = net(x)
        pre = net.forward_head(maps, pre_logits=True)
        assert maps.ndim == 4 and maps.shape[0] == 2, maps.shape
        assert torch.equal(net.forward_head(maps), logits)
        assert logits.shape == (2, NUM_CLASSES)
        assert pre.shape == (2, net.num_features)
        # The pre-logits features are what the final classifier turns into the logits.
        final = net.get_submodule(net.head_names[0])
        if isinstance(final, nn.Conv2d):  # NiN's class maps: a 1x1 convolution
            torch.testing.assert_close(final(pre[:, :, None, None]).flatten(1), logits)
        else:
            assert torch.equal(final(pre), logits)
        # The maps are not pooled away: a larger input gives larger maps.
        bigger = net.forward_features(F.interpolate(x, scale_factor=2.0))
    assert bigger.shape[:2] == maps.shape[:2]
    assert bigger.shape[2] > maps.shape[2] and bigger.shape[3] > maps.shape[3]


def test_reset_classifier_0_gives_a_backbone_a_users_head_can_train_on(
    built: tuple[str, nn.Module],
) -> None:
    name, original = built
    net = copy.deepcopy(original)
    x = _input(name, batch=4)
    with torch.no_grad():
        pre = net.forward_head(net.forward_features(x), pre_logits=True)
    net.reset_classifier(0)
    assert net.num_classes == 0
    assert list(head_parameters(net)) == []  # no class-specific weights are left
    with torch.no_grad():
        features = net(x)
    assert features.shape == (4, net.num_features)
    assert torch.equal(features, pre)
    # Built with 0 classes, the network is the same headless backbone (GoogLeNet: no aux heads).
    info = model_info(name)
    headless = info.build_net(
        num_classes=0, **({"small_input": True} if info.family == "vgg" else {})
    )
    assert {k: v.shape for k, v in headless.state_dict().items()} == {
        k: v.shape for k, v in net.state_dict().items()
    }

    # The usual headless-backbone pattern: a linear layer of one's own on num_features.
    torch.manual_seed(0)
    head = nn.Linear(net.num_features, 5)
    optimizer = torch.optim.SGD([*net.parameters(), *head.parameters()], lr=0.01)
    before = head.weight.detach().clone()
    net.train()
    out = net(x)
    assert isinstance(out, Tensor)  # a tensor in training too (GoogLeNet's aux heads are gone)
    loss = F.cross_entropy(head(out), torch.tensor([0, 1, 2, 4]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    for pname, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert not torch.equal(head.weight, before)


def test_reset_classifier_replaces_the_head_and_nothing_else(built: tuple[str, nn.Module]) -> None:
    name, original = built
    net = copy.deepcopy(original)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    head = _head_keys(net)
    net.reset_classifier(7)
    assert net.num_classes == 7
    after = net.state_dict()
    assert after.keys() == before.keys()
    changed = {k for k in after if after[k].shape != before[k].shape}
    assert changed and changed <= head
    assert all(torch.equal(after[k], v) for k, v in before.items() if k not in head)
    x = _input(name)
    with torch.no_grad():
        assert net(x).shape == (2, 7)
        outs = _outputs(net.train()(x))  # GoogLeNet's auxiliary heads too
    assert [o.shape for o in outs] == [(2, 7)] * len(outs)
    with pytest.raises(ValueError, match=r"num_classes must be an int >= 0.*got -1"):
        net.reset_classifier(-1)


@pytest.mark.parametrize("name", list_models())
def test_reset_classifier_makes_the_head_on_the_network_s_device_and_dtype(name: str) -> None:
    # It made float32 CPU layers: .cuda() or .bfloat16() first, and the next forward failed.
    # (The meta device stands in for a GPU, and costs no memory.)
    with torch.device("meta"):
        net = model_info(name).build_net(num_classes=NUM_CLASSES).to(torch.float64)
    for classes in (7, 0, 5):  # 0 removes GoogLeNet's auxiliary heads: 5 makes one head
        net.reset_classifier(classes)
        placed = {(p.device.type, p.dtype) for p in net.parameters()}
        assert placed == {("meta", torch.float64)}, (classes, placed)


def test_torchscript_gives_the_eager_outputs_and_survives_save_and_load(
    built: tuple[str, nn.Module], tmp_path: Path
) -> None:
    name, net = built
    x = _input(name)
    scripted = torch.jit.script(net)
    path = tmp_path / f"{name}.pt"
    torch.jit.save(scripted, str(path))
    loaded = torch.jit.load(str(path))
    # Without the profiling executor's optimisation passes, which take seconds on a DenseNet
    # and change no result here, as timm's test_models.py also avoids them.
    with torch.no_grad(), torch.jit.optimized_execution(False):
        expected = net(x)
        maps = net.forward_features(x)
        torch.testing.assert_close(scripted(x), expected)
        torch.testing.assert_close(loaded(x), expected)
        torch.testing.assert_close(loaded.forward_features(x), maps)
        torch.testing.assert_close(
            loaded.forward_head(maps, pre_logits=True), net.forward_head(maps, pre_logits=True)
        )


def test_declared_first_conv_sees_the_input_and_head_is_the_classifier(
    built: tuple[str, nn.Module],
) -> None:
    name, net = built
    info = model_info(name)
    first = net.get_submodule(net.first_conv)
    assert isinstance(first, nn.Conv2d) and first.in_channels == info.input_size[0]
    # The first convolution among the modules, and the one that receives the input itself.
    assert net.first_conv == next(n for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    assert first_conv_name(net) == net.first_conv
    x = _input(name)
    seen: list[Tensor] = []
    hook = first.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            net(x)
    finally:
        hook.remove()
    assert len(seen) == 1 and seen[0] is x

    assert head_names(net) == net.head_names
    for head in net.head_names:
        assert any(True for _ in net.get_submodule(head).parameters()), head
    # timm's check: the final classifier's weight is a state-dict key, one row per class.
    assert net.state_dict()[f"{net.head_names[0]}.weight"].shape[0] == NUM_CLASSES


def test_declarations_follow_the_network_into_torch_compile() -> None:
    net = model_info("googlenet").build_net(num_classes=NUM_CLASSES, small_input=True)
    compiled = torch.compile(net)
    assert first_conv_name(compiled) == "_orig_mod.conv1.conv"
    assert head_names(compiled) == ("_orig_mod.fc", "_orig_mod.aux1", "_orig_mod.aux2")


# -- the documentation contract ---------------------------------------------------------------
# The project's standard: every public name has a docstring with a short ``>>>`` example
# (tests/test_doctests.py runs them). Public modules are those without a leading underscore
# in their dotted name; the deprecated alias classic_cnns.inspect re-exports
# classic_cnns.inspection's objects and is checked through them.
PUBLIC_MODULES = [
    "classic_cnns",
    *sorted(
        info.name
        for info in pkgutil.walk_packages(classic_cnns.__path__, prefix="classic_cnns.")
        if not any(part.startswith("_") for part in info.name.split("."))
        and info.name != "classic_cnns.inspect"
    ),
]
# Methods still without an example; each is to be removed from here when its example is
# written (the test says so when one is).
UNDOCUMENTED: set[str] = set()


def _exported(module: str) -> list[tuple[str, object]]:
    mod = importlib.import_module(module)
    return [(f"{module}.{name}", getattr(mod, name)) for name in mod.__all__]


def _has_example(obj: object) -> bool:
    doc = getattr(obj, "__doc__", None)  # a class's own: __doc__ is not inherited
    return isinstance(doc, str) and ">>>" in doc


def _is_hook(cls: type, name: str) -> bool:
    """A method a library base class defines (a Lightning or torch hook: ``training_step``,
    ``setup``, ``state_dict``, ...), documented there, or one LightningCLI calls by name on its
    subclasses, ``before_<subcommand>`` and ``after_<subcommand>``; ``forward`` is not one."""
    when, _, subcommand = name.partition("_")
    by_name = when in ("before", "after") and subcommand in LightningCLI.subcommands()
    if by_name and issubclass(cls, LightningCLI):
        return True
    return name != "forward" and any(
        name in vars(base) and not base.__module__.startswith("classic_cnns.")
        for base in cls.__mro__[1:]
    )


def _methods(cls: type) -> list[tuple[str, object]]:
    """The public methods ``cls`` defines itself (properties are attributes: not these)."""
    out: list[tuple[str, object]] = []
    for name, attr in vars(cls).items():
        func = getattr(attr, "__func__", attr)  # staticmethod and classmethod
        if not name.startswith("_") and inspect.isfunction(func):
            out.append((f"{cls.__module__}.{cls.__qualname__}.{name}", func))
    return out


def _undocumented() -> list[str]:
    missing: list[str] = []
    classes: set[type] = set()
    for module in PUBLIC_MODULES:
        for qualname, obj in _exported(module):
            needs_doc = inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj)
            if needs_doc and not _has_example(obj):
                missing.append(qualname)
            if inspect.isclass(obj) and obj.__module__.startswith("classic_cnns"):
                classes.add(obj)
    for cls in classes:
        for qualname, func in _methods(cls):
            if not _is_hook(cls, qualname.rpartition(".")[2]) and not _has_example(func):
                missing.append(qualname)
    return sorted(set(missing))


def test_every_public_name_has_a_docstring_example() -> None:
    """Every function, class and submodule in a public ``__all__`` and the methods of every
    class there (Lightning and torch hooks aside) have a docstring with a ``>>>`` example."""
    missing = _undocumented()
    assert [m for m in missing if m not in UNDOCUMENTED] == [], "no docstring example"
    assert [m for m in UNDOCUMENTED if m not in missing] == [], (
        "documented now: remove from UNDOCUMENTED"
    )


def test_the_docstring_check_sees_a_missing_example(monkeypatch: pytest.MonkeyPatch) -> None:
    from classic_cnns.inspection.receptive_field import Field
    from classic_cnns.nets.lenet import LeNet5Net

    monkeypatch.setattr(LeNet5Net.forward, "__doc__", "Logits.")
    monkeypatch.setattr(LeNet5Net.reset_classifier, "__doc__", None)
    monkeypatch.setattr(Field.whole, "__doc__", "The whole map.")  # a submodule's class
    monkeypatch.setattr(classic_cnns.nets.vgg, "__doc__", "VGG.")
    monkeypatch.setattr(classic_cnns.losses.get_loss, "__doc__", "A loss.")
    assert {
        "classic_cnns.nets.lenet.LeNet5Net.forward",
        "classic_cnns.nets.lenet.LeNet5Net.reset_classifier",
        "classic_cnns.inspection.receptive_field.Field.whole",
        "classic_cnns.nets.vgg",
        "classic_cnns.losses.get_loss",
    } <= set(_undocumented())


def test_lightning_cli_subcommand_hooks_are_hooks() -> None:
    from classic_cnns.cli import ClassicCLI

    assert all(_is_hook(ClassicCLI, f"{when}_fit") for when in ("before", "after"))
    assert _is_hook(ClassicCLI, "before_instantiate_classes")  # defined on LightningCLI
    assert not _is_hook(ClassicCLI, "before_train")  # no such subcommand


def _attribute_docstrings(module: str) -> list[tuple[str, str, int]]:
    """``(name, docstring, line)`` of each module-level assignment followed by a string."""
    body = ast.parse(inspect.getsource(importlib.import_module(module))).body
    out: list[tuple[str, str, int]] = []
    for node, after in itertools.pairwise(body):
        if not isinstance(node, ast.Assign | ast.AnnAssign) or not isinstance(after, ast.Expr):
            continue
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        doc = after.value.value if isinstance(after.value, ast.Constant) else None
        if isinstance(target, ast.Name) and isinstance(doc, str):
            out.append((target.id, doc, after.lineno))
    return out


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_constant_has_a_docstring(module: str) -> None:
    """A constant or alias a module exports (in ``__all__``, assigned there) says what it is:
    mkdocstrings shows its docstring, and the next test runs its example."""
    exported = set(getattr(importlib.import_module(module), "__all__", ()))
    body = ast.parse(inspect.getsource(importlib.import_module(module))).body
    assigned = {
        target.id
        for node in body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    documented = {name for name, doc, _ in _attribute_docstrings(module) if ">>>" in doc}
    assert (exported & assigned) - documented == set()


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_attribute_docstring_examples_run(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The examples of constants and type aliases (``FORMATS``, ``LossName``), which mkdocstrings
    shows and doctest does not find, run and show what they say."""
    monkeypatch.chdir(tmp_path)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = vars(importlib.import_module(module))
    for name, doc, line in _attribute_docstrings(module):
        runner.run(parser.get_doctest(doc, dict(globs), f"{module}.{name}", module, line))
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


@pytest.mark.parametrize("name", ["densenet_bc_100", "densenet121"])
def test_a_densenet_s_new_head_starts_as_its_own_with_a_zero_bias(name: str) -> None:
    # torchvision's DenseNet zeroes every Linear bias; a replaced head must too.
    net = model_info(name).build_net(num_classes=10)
    assert not net.classifier.bias.any()
    net.reset_classifier(5)
    assert net.classifier.out_features == 5 and not net.classifier.bias.any()
