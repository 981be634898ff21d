"""The seeded splits and the training order, for any size, share and seed (hypothesis).

What a resume, a DDP run and a fair test figure rest on: the test, validation and training
images are a partition of the data, of the sizes asked for, and decided by the seed alone;
the training order is a permutation decided by the seed and the epoch, which the processes
of a run share out whole.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from classic_cnns import Digits
from classic_cnns.data.sampling import EpochShuffleSampler, _test_split

SEEDS = st.integers(0, 2**63 - 1)


def _is_partition(parts: list[torch.Tensor], total: int) -> bool:
    # Every index in [0, total) in exactly one part, each part sorted.
    joined = torch.cat(parts).sort().values if parts else torch.empty(0, dtype=torch.long)
    sorted_parts = all(torch.equal(p, p.sort().values) for p in parts)
    return sorted_parts and torch.equal(joined, torch.arange(total))


@settings(max_examples=300, deadline=None)
@given(total=st.integers(1, 5000), share=st.floats(0.0, 1.0), seed=SEEDS)
def test_a_test_split_is_a_seeded_partition_of_the_share_asked_for(
    total: int, share: float, seed: int
) -> None:
    try:
        test, train = _test_split(total, share, seed, "data")
    except ValueError as err:  # a share strictly between 0 and 1 that leaves a side empty
        assert 0 < share < 1 and (total * share <= 0.5 or total * (1 - share) <= 0.5), err
        assert f"test_size={share!r} of {total} images rounds to no " in str(err)
        return
    assert _is_partition([test, train], total)
    if 0 < share < 1:  # a share, not none or all: never a side left empty without a word
        assert 0 < len(test) < total
    assert abs(len(test) - total * share) <= 0.5  # the share, to the nearest image
    again = _test_split(total, share, seed, "data")  # the seed alone decides it
    assert torch.equal(again[0], test) and torch.equal(again[1], train)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 5000),
    val_size=st.one_of(st.floats(0.0, 0.99), st.integers(1, 6000)),
    seed=st.integers(0, 2**31 - 1),
)
def test_a_validation_split_is_a_seeded_partition_of_the_share_or_count(
    n: int, val_size: float, seed: int
) -> None:
    data = Digits(val_size=val_size, seed=seed)
    try:
        train, val = data._split_indices(n)
    except ValueError as err:  # none left to train on, or a share that rounds to none
        asked = val_size if isinstance(val_size, int) else n * val_size
        assert asked >= n - 0.5 or (0 < asked <= 0.5), err
        assert f"val_size={val_size!r}" in str(err)
        return
    assert _is_partition([train, val], n) and len(train) > 0
    assert (len(val) > 0) == (val_size > 0)  # a positive share never rounds to none silently
    if isinstance(val_size, int):
        assert len(val) == val_size
    else:
        assert abs(len(val) - n * val_size) <= 0.5
    again = Digits(val_size=val_size, seed=seed)._split_indices(n)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 400),
    replicas=st.integers(1, 8),
    epoch=st.integers(0, 50),
    seed=SEEDS,
)
def test_the_training_order_is_the_seed_and_epoch_s_permutation_shared_out_whole(
    n: int, replicas: int, epoch: int, seed: int
) -> None:
    whole = EpochShuffleSampler(n, seed).order(epoch)
    assert torch.equal(whole.sort().values, torch.arange(n))  # a permutation
    assert torch.equal(EpochShuffleSampler(n, seed).order(epoch), whole)  # seed and epoch
    shards = []
    for rank in range(replicas):
        sampler = EpochShuffleSampler(n, seed, num_replicas=replicas, rank=rank)
        sampler.set_epoch(epoch)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler) == -(-n // replicas)  # equal shards
    # Rank r takes every replicas-th index from r of the order padded with its own start.
    padded = whole.tolist() * (replicas + 1)
    for rank, shard in enumerate(shards):
        assert shard == padded[: len(shards[0]) * replicas][rank::replicas]
    drawn = [i for shard in shards for i in shard]
    assert sorted(set(drawn)) == list(range(n))  # every image, by some process
    assert len(drawn) - n == (-n) % replicas  # and no more repeats than the padding


def test_a_split_differs_with_the_seed() -> None:
    # Not a property of one draw: of 100 seeds, 100 different test splits of 1,000 images.
    splits = {tuple(_test_split(1000, 0.2, seed, "data")[0].tolist()) for seed in range(100)}
    assert len(splits) == 100
    with pytest.raises(ValueError, match=r"test_size=0\.0001 of 1000 images rounds to no test"):
        _test_split(1000, 0.0001, 0, "data")
