"""Export and compilation: the networks run under torch.export and torch.compile on the CPU.

Every registered network is traced with ``torch.jit.trace`` in
``tests/test_expected_outputs.py`` (it shares that module's model builds). Here:
``torch.export`` for one network of each family at the golden input, and ``torch.compile``
(inductor, which compiles C++ with the system compiler) for LeNet-5 with batch norm and
ResNet-20. Outputs must equal eager ones within ``rtol=1e-5``, ``atol=1e-5 * max|logit|``.
"""

from __future__ import annotations

import shutil
import warnings
from typing import Any

import pytest
import torch

from conftest import forget_freed_torchscript_builtins
from test_expected_outputs import build, golden_input

# One network per family; lenet5_bn and densenet_bc_100 also cover batch norm in eval.
EXPORTED = ["lenet5_bn", "alexnet", "vgg11_bn", "nin", "googlenet", "resnet20", "densenet_bc_100"]
COMPILED = ["lenet5_bn", "resnet20"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    scale = float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("name", EXPORTED)
def test_torch_export_matches_eager(name: str) -> None:
    model = build(name)
    x = golden_input(model)
    with torch.no_grad():
        program = torch.export.export(model.net, (x,))
        _close(program.module()(x), model(x))


def test_torch_export_of_the_lightning_module_keeps_the_input_checks() -> None:
    # Exporting the LightningModule itself traces check_input: a wrong batch still fails
    # at export time with the package's message, not inside a layer. Non-strict export is
    # torch's default from 2.7; torch 2.6's default, strict (dynamo), reports the same
    # refusal as dynamo's "Observed exception".
    model = build("lenet5")
    x = golden_input(model)
    with torch.no_grad():
        program = torch.export.export(model, (x,), strict=False)
        _close(program.module()(x), model(x))
    with pytest.raises(ValueError, match=r"lenet5 needs images of at least 32x32"):
        torch.export.export(model, (torch.zeros(1, 1, 28, 28),), strict=False)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("gcc") is None,
    reason="torch.compile's inductor needs a C++ compiler",
)
@pytest.mark.parametrize("name", COMPILED)
def test_torch_compile_matches_eager_on_the_cpu(name: str) -> None:
    model: Any = build(name)
    x = golden_input(model)
    torch._dynamo.reset()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = torch.compile(model.net, backend="inductor", dynamic=False)
        _close(compiled(x), model(x))
        _close(compiled(x * 0.5), model(x * 0.5))  # the compiled graph is reused


@pytest.mark.parametrize("name", EXPORTED)
def test_the_lightning_module_traces_with_fx_and_scripts(name: str, tmp_path: Any) -> None:
    # torch.fx passes symbolic proxies through forward: the input checks step aside for them.
    # torch.jit.script compiles forward and the network, not the training machinery.
    model = build(name)
    x = golden_input(model)
    with torch.no_grad():
        expected = model(x)
        _close(torch.fx.symbolic_trace(model)(x), expected)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning's TorchScript deprecation notice
            scripted = model.to_torchscript(method="script")
        torch.jit.save(scripted, tmp_path / "model.pt")
        _close(torch.jit.load(tmp_path / "model.pt")(x), expected)


def test_scripting_is_immune_to_the_operator_ids_torch_leaves_behind() -> None:
    # A later overload makes torch.library replace an operator's object; TorchScript's table of
    # builtins keeps the freed object's id. The fixture that runs before each test drops such
    # ids: here one is made, and one is put where a later allocation would land (a padding).
    from torch.jit._builtins import _get_builtin_table

    table = _get_builtin_table()
    library = torch.library.Library("classic_cnns_test", "FRAGMENT")
    library.define("twice(Tensor x) -> Tensor")
    old = id(torch.ops.classic_cnns_test.twice._op)  # the first object, now in the table
    library.define("twice.scaled(Tensor x, float s) -> Tensor")  # torch replaces it
    new = id(torch.ops.classic_cnns_test.twice._op)
    assert old != new and table[old] == table[new] == "classic_cnns_test::twice"

    conv = torch.nn.Conv2d(1, 1, 3, padding=1)  # its padding tuple may land on `old` itself
    padding = id(conv._reversed_padding_repeated_twice)
    table[padding] = "classic_cnns_test::twice"
    with pytest.raises(RuntimeError, match="builtin cannot be used as a value"):
        torch.jit.script(conv)
    assert forget_freed_torchscript_builtins() == len({old, padding})
    assert old not in table and new in table
    torch.jit.script(conv)  # the padding is a padding again
