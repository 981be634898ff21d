"""Regression: a small MLP fits a noisy 1-D curve with the mean squared error.

The notes' first example, as a LightningModule with a LightningDataModule. It writes, into
the output folder:

* ``fit.gif``: the data and the fitted curve, one frame every ``--every`` epochs;
* ``loss.png``: the training loss (MSE) per epoch, on a log scale;
* ``losses.csv``: the same losses as ``epoch,train_loss`` rows.

Run it (a few seconds on a CPU; needs matplotlib, the ``plot`` extra)::

    python examples/regression.py --out regression-out
    python examples/regression.py --out regression-out --curve sine --epochs 500

Unlike ``ImageClassifier(loss="mse")``, which compares class probabilities with one-hot
targets, the MSE here compares the network's raw output with the noisy ``y``.
"""

from __future__ import annotations

import argparse
import csv
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

CURVES: dict[str, Callable[[Tensor], Tensor]] = {
    # The notes show two fits as GIFs (curve0, curve1) without naming the functions: ours.
    "square": lambda x: x.pow(2),  # y = x^2 on [-1, 1]
    "sine": lambda x: torch.sin(math.pi * x),
}


class CurveData(L.LightningDataModule):
    """``n_points`` evenly spaced ``x`` in ``[-1, 1]`` and ``y = curve(x) + noise * N(0, 1)``.

    The noise is drawn once from ``seed``, so every run fits the same points. With
    ``batch_size=None`` every step sees all points (full-batch gradient descent).
    """

    def __init__(
        self,
        curve: str = "square",
        n_points: int = 100,
        noise: float = 0.2,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if curve not in CURVES:
            raise ValueError(f"curve must be one of {sorted(CURVES)}; got {curve!r}")
        if n_points < 2:
            raise ValueError(f"n_points must be at least 2; got {n_points}")
        self.curve, self.n_points, self.noise = curve, n_points, noise
        self.seed, self.batch_size = seed, batch_size
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.linspace(-1, 1, n_points).unsqueeze(1)  # (N, 1)
        self.y = CURVES[curve](self.x) + noise * torch.randn(self.x.shape, generator=generator)

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled ``(x, y)`` batches of shape ``(B, 1)``."""
        dataset = TensorDataset(self.x, self.y)
        return DataLoader(dataset, batch_size=self.batch_size or self.n_points, shuffle=True)


class CurveRegressor(L.LightningModule):
    """An MLP ``1 -> hidden -> hidden -> 1`` with tanh, trained with MSE and Adam."""

    def __init__(self, hidden: int = 32, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(1, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.mse_loss(self(x), y)  # mean over the batch of (f(x_n) - y_n)^2
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])


class FitRecorder(L.Callback):
    """Records the epoch's loss, and the fitted curve on ``grid`` every ``every`` epochs."""

    def __init__(self, grid: Tensor, every: int) -> None:
        self.grid, self.every = grid, every
        self.losses: list[float] = []
        self.frames: list[tuple[int, Tensor]] = []  # (epoch, prediction on the grid)

    def _record(self, module: L.LightningModule, epoch: int) -> None:
        was_training = module.training
        module.eval()
        with torch.no_grad():
            self.frames.append((epoch, module(self.grid.to(module.device)).cpu().squeeze(1)))
        module.train(was_training)

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._record(module, 0)  # the untrained network

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.losses.append(float(trainer.callback_metrics["train_loss"]))
        epoch = trainer.current_epoch + 1  # epochs completed
        if epoch % self.every == 0 or epoch == trainer.max_epochs:
            self._record(module, epoch)


def write_animation(data: CurveData, recorder: FitRecorder, path: Path, fps: int = 10) -> None:
    """The noisy points and the fitted curve, one GIF frame per recorded epoch."""
    fig = Figure(figsize=(4, 3), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(data.x.squeeze(1), data.y.squeeze(1), s=8, color="0.5", label="data")
    curve = CURVES[data.curve](recorder.grid).squeeze(1)
    ax.plot(recorder.grid.squeeze(1), curve, "k--", lw=1, label="noiseless curve")
    (line,) = ax.plot([], [], color="tab:red", lw=2, label="fit")
    title = ax.set_title(f"{data.curve}, epoch 0")  # set now so that tight_layout makes room
    ax.set_xlim(-1.05, 1.05)
    low, high = float(data.y.min()), float(data.y.max())
    ax.set_ylim(low - 0.2 * (high - low), high + 0.2 * (high - low))
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()

    def draw(i: int) -> tuple[Any, ...]:
        epoch, prediction = recorder.frames[i]
        line.set_data(recorder.grid.squeeze(1), prediction)
        title.set_text(f"{data.curve}, epoch {epoch}")
        return line, title

    animation = FuncAnimation(fig, draw, frames=len(recorder.frames), blit=False)
    animation.save(str(path), writer=PillowWriter(fps=fps))


def write_loss_curve(losses: Sequence[float], path: Path) -> None:
    """The training loss per epoch, on a log scale."""
    fig = Figure(figsize=(4, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training MSE")
    fig.tight_layout()
    fig.savefig(path)


def main(argv: Sequence[str] | None = None) -> list[float]:
    """Fit, write the figures and the CSV; return the loss of every epoch."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--curve", choices=sorted(CURVES), default="square")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--every", type=int, default=10, help="epochs between GIF frames")
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.every < 1:
        parser.error(f"--epochs and --every must be positive; got {args.epochs}, {args.every}")
    for flag, value, ok, expected in (
        ("--points", args.points, args.points >= 2, "at least 2"),
        ("--noise", args.noise, 0 <= args.noise < float("inf"), "a finite number >= 0"),
        ("--hidden", args.hidden, args.hidden >= 1, "at least 1"),
        ("--lr", args.lr, 0 < args.lr < float("inf"), "a finite number > 0"),
    ):
        if not ok:
            parser.error(f"{flag} must be {expected}; got {value}")
    if args.out.exists() and not args.out.is_dir():  # before training, not after
        parser.error(f"--out {args.out} is a file; expected a folder (created if missing)")
    args.out.mkdir(parents=True, exist_ok=True)

    L.seed_everything(args.seed, verbose=False)
    data = CurveData(args.curve, args.points, args.noise, args.seed)
    model = CurveRegressor(args.hidden, args.lr)
    recorder = FitRecorder(torch.linspace(-1, 1, 200).unsqueeze(1), args.every)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    with warnings.catch_warnings():  # 100 points in memory need no loader workers
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        trainer.fit(model, datamodule=data)

    write_animation(data, recorder, args.out / "fit.gif")
    write_loss_curve(recorder.losses, args.out / "loss.png")
    with (args.out / "losses.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "train_loss"])
        writer.writerows((epoch, f"{loss:.6g}") for epoch, loss in enumerate(recorder.losses, 1))
    # The true curve's own MSE on these points: the mean square of the noise drawn (about
    # --noise squared). A fit below it has begun to follow the noise.
    floor = float((data.y - CURVES[args.curve](data.x)).pow(2).mean())
    print(
        f"{args.curve}: training MSE {recorder.losses[0]:.4f} (epoch 1) -> "
        f"{recorder.losses[-1]:.4f} (epoch {len(recorder.losses)}); the true curve's MSE on "
        f"these points (the noise drawn) {floor:.4f}, its expectation {args.noise**2:.4f}. "
        f"Wrote fit.gif, loss.png and losses.csv to {args.out}"
    )
    return recorder.losses


if __name__ == "__main__":
    main()
