"""Golden logits: any change to an architecture, its initialisation or its layer order fails here.

For every registered model the suite stores, in ``tests/expected/<name>.json``, the
logits of a fixed seeded input under weights drawn right after ``torch.manual_seed(0)``,
plus a digest of the state dict's names and shapes (which catches layers that draw no
random numbers, such as batch norm, being added, removed or reshaped).

The input is 16x16 (or the model's minimum, 32x32 for LeNet-5 and VGG), with
``small_input=True`` for the ImageNet networks that have that option, ``in_channels`` as
the architecture's default (1 for LeNet-5, 3 for the rest) and ``num_classes=10``.
The forward pass runs in eval mode and in float64 (weights drawn in float32, then cast),
so that the stored numbers hardly depend on the machine's vector kernels. They are
compared with ``rtol=1e-6`` and ``atol=1e-6 * max|logit|``: float64 rounding differences
between machines are ~1e-12 of the logits, while a 0.1% change of one layer's weights is
caught (``test_the_comparison_catches_a_small_change``).

Regenerate the files only after a deliberate change, and say why in the commit::

    .venv/bin/python tests/expected/regenerate.py            # every model
    .venv/bin/python tests/expected/regenerate.py resnet20   # some models
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from classic_cnns import create_model, list_models, model_info

EXPECTED_DIR = Path(__file__).resolve().parent / "expected"
INIT_SEED = 0
INPUT_SEED = 1
BATCH = 2
SIZE = 16  # the input is SIZE x SIZE, or the model's minimum if that is larger
NUM_CLASSES = 10
RTOL = 1e-6  # relative to each logit
ATOL_SCALE = 1e-6  # times the largest |logit| of the model


pytestmark = pytest.mark.usefixtures("one_thread")


def golden_config(name: str) -> dict[str, Any]:
    """The ``create_model`` arguments of the golden run: small inputs, the native channels."""
    info = model_info(name)
    kwargs: dict[str, Any] = {"num_classes": NUM_CLASSES, "in_channels": info.input_size[0]}
    if "small_input" in info.options and info.input_size[1] > 32:
        kwargs["small_input"] = True  # the ImageNet networks' stem for 28-32 pixel images
    return kwargs


def golden_input(model: Any) -> torch.Tensor:
    """The seeded float32 input batch: ``(BATCH, C, S, S)``, S = max(SIZE, the model's minimum)."""
    size = max(SIZE, *model.min_input_size)
    generator = torch.Generator().manual_seed(INPUT_SEED)
    return torch.randn(BATCH, model.in_channels, size, size, generator=generator)


def state_digest(model: torch.nn.Module) -> str:
    """sha256 of the state dict's ``name:shape:dtype`` entries, in order."""
    text = ";".join(f"{k}:{tuple(v.shape)}:{v.dtype}" for k, v in model.state_dict().items())
    return hashlib.sha256(text.encode()).hexdigest()


def build(name: str) -> Any:
    """The golden model: ``create_model`` just after ``torch.manual_seed(INIT_SEED)``, in eval."""
    torch.manual_seed(INIT_SEED)
    return create_model(name, **golden_config(name)).eval()


def compute(name: str, model: Any = None) -> dict[str, Any]:
    """The golden record of ``name``: configuration, digest and float64 logits."""
    config = golden_config(name)
    model = build(name) if model is None else model
    x = golden_input(model)
    with torch.no_grad():
        logits = model.double()(x.double())
    model.float()  # float32 -> float64 -> float32 is exact: the model is as it was
    return {
        "model": name,
        "config": config,
        "init_seed": INIT_SEED,
        "input": {"seed": INPUT_SEED, "shape": list(x.shape), "dtype": "float64"},
        "num_params": sum(p.numel() for p in model.parameters()),
        "state_dict_sha256": state_digest(model),
        "torch_version": torch.__version__.split("+")[0],
        "logits": logits.tolist(),
    }


def expected_path(name: str) -> Path:
    return EXPECTED_DIR / f"{name}.json"


def write(name: str) -> Path:
    """Compute and store the golden record of ``name``."""
    path = expected_path(name)
    record = compute(name)
    rows = record.pop("logits")
    text = json.dumps(record, indent=1)[:-2]  # without the closing brace
    text += ',\n "logits": [\n  ' + ",\n  ".join(json.dumps(r) for r in rows) + "\n ]\n}\n"
    json.loads(text)  # still valid JSON
    path.write_text(text)
    return path


@pytest.fixture(scope="module", params=list_models())
def built(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """Each registered model, built once for all the tests of this module that take it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return request.param, build(request.param)
    finally:
        torch.set_num_threads(threads)


def test_logits_match_the_stored_ones(built: tuple[str, Any]) -> None:
    name, model = built
    path = expected_path(name)
    assert path.is_file(), (
        f"{path} is missing: a new model needs its golden logits; run "
        f"tests/expected/regenerate.py {name}"
    )
    stored = json.loads(path.read_text())
    got = compute(name, model)
    assert got["config"] == stored["config"], "the golden configuration changed"
    assert got["num_params"] == stored["num_params"], (
        f"{name}: {got['num_params']} parameters, {stored['num_params']} stored"
    )
    assert got["state_dict_sha256"] == stored["state_dict_sha256"], (
        f"{name}: the state dict's names or shapes changed (a layer was added, removed, "
        "renamed or reshaped); if deliberate, run tests/expected/regenerate.py " + name
    )
    expected = torch.tensor(stored["logits"], dtype=torch.float64)
    actual = torch.tensor(got["logits"], dtype=torch.float64)
    atol = ATOL_SCALE * float(expected.abs().max())
    torch.testing.assert_close(
        actual,
        expected,
        rtol=RTOL,
        atol=atol,
        msg=lambda m: (
            f"{name}: logits differ from {path.name} ({m}); if the change is "
            f"deliberate, run tests/expected/regenerate.py {name}"
        ),
    )


def test_every_stored_file_belongs_to_a_registered_model_and_they_are_small() -> None:
    files = sorted(EXPECTED_DIR.glob("*.json"))
    assert sorted(p.stem for p in files) == sorted(list_models())
    assert sum(p.stat().st_size for p in files) < 200_000


def test_the_comparison_catches_a_small_change() -> None:
    # The tolerance is tight enough to see a 0.1% change of one layer's weights.
    name = "resnet20"
    record = json.loads(expected_path(name).read_text())
    stored = torch.tensor(record["logits"], dtype=torch.float64)
    config = golden_config(name)
    torch.manual_seed(INIT_SEED)
    model = create_model(name, **config).eval().double()
    with torch.no_grad():
        model.net.fc.weight.mul_(1.001)
        changed = model(golden_input(model).double())
    with pytest.raises(AssertionError):
        torch.testing.assert_close(
            changed, stored, rtol=RTOL, atol=ATOL_SCALE * float(stored.abs().max())
        )


def test_every_network_traces_and_the_trace_matches_eager(built: tuple[str, Any]) -> None:
    # torch.jit.trace of the plain network, float32, on the golden input; then the traced
    # graph on one image too, which a trace that baked in the batch size would get wrong.
    _, model = built
    x = golden_input(model)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice
        traced = torch.jit.trace(model.net, x, check_trace=False)
        for batch in (x, x[1:]):
            eager = model(batch)
            scale = float(eager.abs().max())
            torch.testing.assert_close(traced(batch), eager, rtol=1e-5, atol=1e-5 * scale)
