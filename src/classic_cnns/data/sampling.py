"""A training order that is a function of (seed, epoch), and a DataLoader that can resume it.

``DataLoader(shuffle=True)`` draws each epoch's order from torch's global random number
generator, whose state a checkpoint does not hold, so a resumed run sees other batches
than an uninterrupted one. Here the order of epoch ``e`` is ``randperm`` under a generator
seeded with ``(seed, e)``: Lightning calls ``set_epoch`` before every epoch, as it does for
``DistributedSampler``. :class:`ResumableDataLoader` has a ``state_dict`` (seed, epoch,
batches served, batch size, number of processes) that Lightning stores in checkpoints;
on resume, :class:`~classic_cnns.resume.ExactResume` hands it back before the first
batch (Lightning itself does so only when nothing asked for the loader earlier, and a
per-step LR schedule does), so the interrupted epoch skips the batches already trained
on and goes on in the same order. An epoch interrupted mid-way continues with the batch
size and the number of processes it was saved with, or not at all: another batch size or
number of processes is refused, on every process, when the pass that would continue the
epoch starts.

Under a distributed strategy (DDP) the sampler is also the shard: every process draws the
same order of the epoch and takes every ``num_replicas``-th index from its ``rank`` on,
as ``DistributedSampler`` does (which it subclasses, so Lightning uses it as it is instead
of wrapping it in a second shuffle).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["EpochShuffleSampler", "ResumableDataLoader", "evaluation_sampler"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # spreads consecutive epochs over the seed space


def _test_split(total: int, test_size: float, seed: int, owner: str) -> tuple[Tensor, Tensor]:
    # The sorted test and training indices of a seeded test_size share of total images; a
    # share in (0, 1) that rounds to no test image, or to all of them, is refused.
    n_test = round(total * test_size)
    if 0 < test_size < 1 and n_test in (0, total):
        share, none = ("larger", "test") if n_test == 0 else ("smaller", "training")
        raise ValueError(
            f"{owner}: test_size={test_size!r} of {total} images rounds to no {none} image; "
            f"expected a {share} share"
        )
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:n_test].sort().values, order[n_test:].sort().values


class EpochShuffleSampler(DistributedSampler[int]):
    """Random order of ``range(n)`` that depends only on ``seed`` and the epoch.

    Lightning calls :meth:`set_epoch` before each training epoch. Iterated without it (a
    plain PyTorch loop), each pass moves on to the next epoch's order by itself.

    With ``num_replicas > 1`` each process (``rank``) gets its shard of that order: the
    order is padded with its own first indices to a multiple of ``num_replicas`` (as
    ``DistributedSampler`` pads) and process ``r`` takes positions ``r, r + num_replicas,
    ...``, so the shards are disjoint (up to the padding), of equal length, and together
    cover the order every process would draw alone.

    Args:
        n: Number of samples.
        seed: Base seed; ``None`` takes ``torch.initial_seed()``, the seed that
            ``torch.manual_seed`` / ``lightning.seed_everything`` set. Processes of one
            distributed run must pass the same seed.
        num_replicas: Number of processes sharing the epoch.
        rank: This process's index in ``[0, num_replicas)``.

    Example:
        >>> sampler = EpochShuffleSampler(5, seed=0)
        >>> first, second = list(sampler), list(sampler)
        >>> sorted(first), first != second
        ([0, 1, 2, 3, 4], True)
        >>> sampler.set_epoch(0)
        >>> list(sampler) == first
        True
        >>> shards = [EpochShuffleSampler(5, seed=0, num_replicas=2, rank=r) for r in (0, 1)]
        >>> [len(s) for s in shards], sorted(set(list(shards[0]) + list(shards[1])))
        ([3, 3], [0, 1, 2, 3, 4])
    """

    def __init__(
        self, n: int, seed: int | None = None, num_replicas: int = 1, rank: int = 0
    ) -> None:
        # DistributedSampler.__init__ is not called: it needs a dataset and, without an
        # explicit rank, an initialised process group; everything it sets is set here.
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int; got {n!r}")
        if not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive int; got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be an int in [0, {num_replicas}); got {rank!r}")
        self.n = n
        self.seed = torch.initial_seed() if seed is None else int(seed)
        self.num_replicas, self.rank = num_replicas, rank
        self.shuffle, self.drop_last = True, False
        self.num_samples = -(-n // num_replicas)  # per process, padding included
        self.total_size = self.num_samples * num_replicas
        self.epoch = 0
        self.current_epoch = 0  # the epoch of the pass in progress (or the last one)
        self.skipped = 0  # samples left out at the start of the current pass (resume)
        # (epoch, samples to leave out, why that epoch cannot be continued: None if it can)
        self._resume: tuple[int, int, str | None] | None = None

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use the order of ``epoch``."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> torch.Tensor:
        """The full order of ``epoch`` (of all processes together, without padding).

        Example:
            >>> sampler = EpochShuffleSampler(4, seed=1)
            >>> torch.equal(sampler.order(3), sampler.order(3)), sorted(sampler.order(3).tolist())
            (True, [0, 1, 2, 3])
        """
        seed = (self.seed + _GOLDEN * (epoch + 1)) & _MASK64
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))

    def resume(self, epoch: int, skip: int, refuse: str | None = None) -> None:
        """Leave out the first ``skip`` samples of the next pass if it is one of ``epoch``.

        ``refuse``: why that pass cannot continue ``epoch``, raised (``ValueError``) when it
        starts, instead of resuming; a pass of another epoch starts afresh either way.

        Example:
            >>> sampler = EpochShuffleSampler(6, seed=0)
            >>> sampler.resume(0, 4)
            >>> list(sampler) == sampler.order(0)[4:].tolist()
            True
        """
        self._resume = (int(epoch), int(skip), refuse)

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        resume, self._resume = self._resume, None
        if resume is not None and resume[0] == epoch and resume[2] is not None:
            self._resume = resume  # still refused on the next try
            raise ValueError(resume[2])
        skip = resume[1] if resume is not None and resume[0] == epoch else 0
        self.current_epoch, self.skipped = epoch, skip
        self.epoch = epoch + 1  # a plain loop without set_epoch gets a new order each pass
        order = self.order(epoch)
        if self.num_replicas > 1:
            order = order.repeat(-(-self.total_size // max(self.n, 1)))[: self.total_size]
            order = order[self.rank :: self.num_replicas]
        return iter(order[skip:].tolist())


def evaluation_sampler(
    dataset: Dataset[Any], split: str, num_replicas: int, rank: int
) -> UnrepeatedDistributedSampler:
    """One process's share of an evaluation split under DDP: every image once, by one
    process, with no padding (so the metrics gathered equal one process's over the data).
    A split with fewer images than processes is refused: a process with none would leave
    the others waiting for it.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> list(evaluation_sampler(TensorDataset(torch.arange(5)), "val", 2, rank=1))
        [1, 3]
        >>> evaluation_sampler(TensorDataset(torch.arange(1)), "val", 2, rank=1)
        Traceback (most recent call last):
        ...
        ValueError: the val split has 1 image(s) for 2 processes; expected at least one a ...
    """
    if (n := len(dataset)) < num_replicas:  # type: ignore[arg-type]
        raise ValueError(
            f"the {split} split has {n} image(s) for {num_replicas} processes; expected at "
            f"least one a process: a larger {split} split (--data.{split}_size), or fewer "
            "processes (--trainer.devices)"
        )
    return UnrepeatedDistributedSampler(dataset, num_replicas, rank, shuffle=False)


class ResumableDataLoader(DataLoader[Any]):
    """A DataLoader over an :class:`EpochShuffleSampler` whose position survives a checkpoint.

    It takes ``DataLoader``'s arguments; ``sampler`` must be an ``EpochShuffleSampler``.
    Lightning saves :meth:`state_dict` in its checkpoints
    (``loops.fit_loop.state_dict.combined_loader``), and so does
    :class:`~classic_cnns.resume.ExactResume`, which calls :meth:`load_state_dict` when
    a run resumes: the interrupted epoch then goes on from the next unseen batch, with
    worker processes too: a pass starts (and workers draw indices) at its first batch, not
    when the iterator is made, which Lightning does before the position is loaded.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.arange(10))
        >>> loader = ResumableDataLoader(ds, batch_size=4, sampler=EpochShuffleSampler(10, 0))
        >>> it = iter(loader)
        >>> first = next(it)
        >>> state = loader.state_dict()
        >>> rest = [b[0] for b in it]
        >>> resumed = ResumableDataLoader(ds, batch_size=4, sampler=EpochShuffleSampler(10, 99))
        >>> resumed.load_state_dict(state)
        >>> resumed.sampler.set_epoch(0)
        >>> all(torch.equal(a, b[0]) for a, b in zip(rest, resumed, strict=True))
        True
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own generator: starting a pass draws the workers' base seed from it, not from
        # the global one, whose state (dropout's, augmentation's) a checkpoint restores only
        # after a resumed run has made the first epoch's iterator.
        kwargs.setdefault("generator", torch.Generator().manual_seed(0))
        super().__init__(*args, **kwargs)
        self._served = 0  # batches handed out in the current pass, skipped ones included

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._count()  # a generator: nothing starts until the first batch is asked for

    def _count(self) -> Iterator[Any]:
        self._served = 0
        for i, batch in enumerate(DataLoader.__iter__(self)):
            if i == 0 and isinstance(self.sampler, EpochShuffleSampler) and self.batch_size:
                # The sampler decides on resuming when its pass starts, just before this.
                self._served = self.sampler.skipped // self.batch_size
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """``{"seed", "epoch", "batches", "batch_size", "num_replicas", "drop_last"}``: where
        the current pass stands, and what its epoch's batches are made of.

        ``batches`` counts this process's batches; ``num_replicas`` is the number of
        processes sharing the epoch (1 without DDP).

        Example:
            >>> import torch
            >>> from torch.utils.data import TensorDataset
            >>> sampler = EpochShuffleSampler(10, seed=0, num_replicas=2, rank=0)
            >>> loader = ResumableDataLoader(TensorDataset(torch.arange(10)), batch_size=2,
            ...                              sampler=sampler)
            >>> _ = next(iter(loader))
            >>> state = loader.state_dict()
            >>> state["batches"], state["batch_size"], state["num_replicas"]
            (1, 2, 2)
        """
        sampler = self.sampler
        if not isinstance(sampler, EpochShuffleSampler):
            return {}
        state = {"seed": sampler.seed, "epoch": sampler.current_epoch, "batches": self._served}
        if self.batch_size is not None:
            state["batch_size"] = self.batch_size
        state["num_replicas"] = sampler.num_replicas
        state["drop_last"] = int(self.drop_last)
        return state

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Take the seed and, if the saved epoch was interrupted, its position.

        An interrupted epoch continues only with the batch size and the number of processes
        (``num_replicas``) it was saved with: Lightning counts the batches of the epoch, and
        the LR schedule its steps, so with another one images would be left out or seen
        twice. Its pass raises a ``ValueError`` then, on every process alike (see
        :meth:`EpochShuffleSampler.resume`); a pass of a later epoch starts as usual. A
        state without ``batch_size`` or ``num_replicas`` (an older checkpoint) resumes with
        this loader's.

        Example:
            >>> import torch
            >>> from torch.utils.data import TensorDataset
            >>> ds = TensorDataset(torch.arange(8))
            >>> state = {"seed": 0, "epoch": 0, "batches": 1, "batch_size": 2, "num_replicas": 2}
            >>> loader = ResumableDataLoader(ds, batch_size=2, sampler=EpochShuffleSampler(8))
            >>> loader.load_state_dict(state)
            >>> next(iter(loader))
            Traceback (most recent call last):
            ...
            ValueError: ResumableDataLoader: cannot continue epoch 0 with 1 process(es) ...
        """
        sampler, size = self.sampler, self.batch_size
        if not state_dict or not isinstance(sampler, EpochShuffleSampler):
            return
        sampler.seed = int(state_dict["seed"])
        epoch, batches = int(state_dict["epoch"]), int(state_dict["batches"])
        saved = int(state_dict.get("batch_size", size or 0))
        replicas = int(state_dict.get("num_replicas", sampler.num_replicas))
        if size is None or batches <= 0:
            interrupted = False
        elif saved == size and replicas == sampler.num_replicas:
            interrupted = batches < len(self)  # drop_last counted as this loader counts it
        else:  # fewer batches served than the saved run had on each process in an epoch
            per_process = -(-sampler.n // replicas)
            dropped = bool(state_dict.get("drop_last", self.drop_last))
            interrupted = batches < (per_process // saved if dropped else -(-per_process // saved))
        # Lightning calls set_epoch after this; a loop of one's own may not, so start it on
        # the epoch it most likely continues.
        sampler.epoch = epoch if interrupted else epoch + 1
        if interrupted and size is not None:
            # Every process holds the same state and setting, so all refuse alike: none is
            # left waiting for another in a collective.
            was, now = (saved, replicas), (size, sampler.num_replicas)
            refuse = None if was == now else _refusal(epoch, batches, was, now)
            sampler.resume(epoch, batches * saved, refuse)


def _refusal(epoch: int, batches: int, was: tuple[int, int], now: tuple[int, int]) -> str:
    # Why an epoch interrupted after `batches` batches of `saved` images on each of
    # `replicas` processes cannot go on in batches of `size` on `count` processes.
    (saved, replicas), (size, count) = was, now
    other: list[str] = []
    setting: list[str] = []
    fix: list[str] = []
    if size != saved:
        other.append("batch size")
        setting.append(f"batch_size={size}")
        fix.append(
            f"the saved batch size (batch_size={saved}; on the command line --data.batch_size "
            f"{saved})"
        )
    if count != replicas:
        other.append("number of processes")
        setting.append(f"{count} process(es) (num_replicas={count})")
        fix.append(
            f"the saved number of processes ({replicas}: on the command line --trainer.devices "
            f"{replicas}, or devices x num_nodes = {replicas})"
        )
    where = f" on each of {replicas} process(es)" if count != replicas else ""
    return (
        f"ResumableDataLoader: cannot continue epoch {epoch} with {' and '.join(setting)}: the "
        f"checkpoint was saved {batches} batch(es) of batch_size={saved}{where} into it, and "
        "Lightning counts the batches of the interrupted epoch (the LR schedule its steps), so "
        f"another {' or '.join(other)} would leave images out of the epoch or train on them "
        f"twice. Resume with {' and '.join(fix)}, or from a checkpoint saved at the end of an "
        "epoch"
    )


def _why_inexact(state: dict[str, Any], trainer: Any) -> str | None:
    # Why the run resumed from a training loader's saved `state` departs from the
    # uninterrupted one, or None. An epoch stopped early (max_time, max_steps, a callback's
    # should_stop) counts as done for Lightning: the resumed run starts the next epoch, and
    # the rest of the stopped one is never trained. Within an epoch, a position inside a
    # gradient accumulation: the checkpoint holds no gradients, so the next step sums fewer.
    if not state or "batches" not in state:
        return None
    epoch, batches, now = int(state["epoch"]), int(state["batches"]), trainer.current_epoch
    per_epoch, every = trainer.num_training_batches, trainer.accumulate_grad_batches
    if epoch < now and 0 < batches < per_epoch:
        return (
            f"the checkpoint was saved after {batches} of epoch {epoch}'s {per_epoch} batches, "
            "when the run was stopped early (max_time, max_steps or a callback's should_stop): "
            f"Lightning counts that epoch as done, so this run starts at epoch {now} and the "
            f"rest of epoch {epoch} is not trained"
        )
    if epoch == now and batches % every:
        return (
            f"the checkpoint was saved after batch {batches} of epoch {epoch}, "
            f"{batches % every} into an accumulation of {every} (accumulate_grad_batches): "
            "it holds no gradients, so the next optimizer step sums fewer batches than the "
            f"uninterrupted run's. Save checkpoints at multiples of {every} batches (a "
            "val_check_interval that is one)"
        )
    return None
