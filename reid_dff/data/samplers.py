"""Infinite, seeded, rank-aware batch samplers for ReID training (P identities x K images).

Every batch is a pure function of ``(seed, step)``: the sampler holds no hidden RNG state, so resuming at
step ``t`` (``load_state_dict({"step": t, ...})``) reproduces exactly the batches an uninterrupted run
would have drawn, and all DDP ranks agree on the global draw without communication. Each rank keeps
its own slice of the global identities of a step, so ranks never share an identity and a batch never
splits an identity across ranks.

Identity order: identities of a group (a source domain, or everything) are consumed round by round
from a permutation drawn per ``(seed, group, round)``; a round ends when fewer identities remain than a
step needs (they are skipped this round: every identity is equally likely to be skipped over rounds);
then a new permutation starts. Groups advance independently: a small source simply starts new rounds
more often than a big one (MetaBIN's "a domain that runs out is reshuffled while the others continue").

Resuming over changed data: a state records the batch shape and seed (which must match) and the data it
was drawn from (``num_samples``, ``num_identities``, and digests of the identities' groups and of the
images per identity). When the data differ -- images removed or added since the state was taken (a
deleted or skipped bad file) -- the sampler continues at the recorded step and warns (``data_changes``
says what differs): with the same identities, the identity order of every later step is exactly the
recorded run's, and only the images drawn change; when an identity lost all its images, the identity
order is re-drawn for the remaining ones.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ReidDffError
from ..utils.registry import Registry
from .datasets.base import Sample

__all__ = [
    "SAMPLER_REGISTRY",
    "DomainBalancedIdentitySampler",
    "InfiniteRandomSampler",
    "RandomIdentitySampler",
    "SamplerError",
    "SamplerStateError",
]

SAMPLER_REGISTRY = Registry("sampler")

logger = logging.getLogger("reid_dff.data")

# Streams of the per-step random generators: [seed, stream, ...] never collide between purposes.
_STREAM_ROUND, _STREAM_IMAGES, _STREAM_SHUFFLE, _STREAM_AUGMENT = 1, 2, 3, 4


class SamplerError(ReidDffError):
    """The batch shape does not fit the data: batch size, instances per identity, domains, ranks (the
    message names the config keys to change)."""


class SamplerStateError(ReidDffError):
    """A sampler state that does not belong to this sampler (other seed, data, batch shape or rank)."""


class _StepBatchSampler:
    """Common part: an infinite iterator of index lists with an exact ``state_dict``.

    With ``with_augmentation_seeds = True`` it yields ``[(index, seed), ...]`` instead of ``[index, ...]``:
    ``seed`` (from ``augmentation_seeds``) is the random seed of that image's augmentation, a pure
    function of ``(seed, rank, step, position)``, so augmentations too are the same whatever the number
    of loader workers and after a resume (``ReIDImageDataset`` applies it).
    """

    with_augmentation_seeds = False

    def __init__(self, seed: int, rank: int, world_size: int):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..world_size-1, got rank={rank} world_size={world_size}")
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.step = 0
        self.data_changes: list[str] = []  # set by load_state_dict: how the data differ from the state's

    def augmentation_seeds(self, step: int, count: int) -> list[int]:
        """``count`` 63-bit seeds for the images of this rank's batch number ``step``."""
        sequence = np.random.SeedSequence([self.seed, _STREAM_AUGMENT, self.rank, step])
        return [int(s) >> 1 for s in sequence.generate_state(count, dtype=np.uint64)]

    def batch_at(self, step: int) -> list[int]:  # pragma: no cover - abstract
        """Indices of this rank's batch number ``step``."""
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """What a state must match: seed, rank, batch shape."""
        raise NotImplementedError

    def data_fingerprint(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """What a state records of the data; a resume over other data continues with a warning."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int] | list[tuple[int, int]]]:
        while True:
            batch = self.batch_at(self.step)
            seeds = self.augmentation_seeds(self.step, len(batch)) if self.with_augmentation_seeds else None
            self.step += 1
            yield batch if seeds is None else list(zip(batch, seeds))

    def __len__(self) -> int:
        # DataLoader asks for a length with a batch_sampler; an infinite sampler has none that means
        # "epoch". Report a huge number so code that calls len() does not crash.
        return 2**62

    def state_dict(self, step: int | None = None) -> dict[str, Any]:
        """``{"step": ..., **fingerprint}``; ``step`` overrides the sampler's own count of yielded batches
        (with DataLoader workers prefetching, pass the number of batches the trainer consumed)."""
        step = int(self.step if step is None else step)
        return {"step": step, **self.fingerprint(), **self.data_fingerprint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where ``state`` was taken: exactly on the same data; over changed data (images removed
        or added) at the same step, with a warning and ``data_changes`` naming what differs. Raises
        ``SamplerStateError`` on a state of another seed, batch shape or DDP layout."""
        expected = self.fingerprint()
        for key, value in expected.items():
            if state.get(key) != value:
                raise SamplerStateError(
                    f"sampler state key {key!r} is {state.get(key)!r} but this sampler has {value!r}: the "
                    "checkpoint comes from another seed, batch shape or DDP layout"
                )
        step = state.get("step")
        if not isinstance(step, int) or step < 0:
            raise SamplerStateError(f"sampler state 'step' must be an int >= 0, got {step!r}")
        # Keys a state of an older release lacks are not compared.
        self.data_changes = [
            f"{key} {state[key]!r} in the state, {value!r} now"
            for key, value in self.data_fingerprint().items()
            if key in state and state[key] != value
        ]
        if self.data_changes:
            logger.warning(
                "the training data changed since the sampler state was taken (%s); continuing at step %d%s",
                "; ".join(self.data_changes),
                step,
                self.changed_data_note(state),
            )
        self.step = step

    def changed_data_note(self, state: dict[str, Any]) -> str:
        """What stays exact when resuming ``state`` over changed data (for the warning)."""
        return ""


class _IdentityGroup:
    """Identities of one group and the round structure of their consumption."""

    def __init__(self, group_id: int, pids: list[int], per_step: int, seed: int):
        self.group_id = group_id
        self.pids = np.asarray(pids, dtype=np.int64)
        self.per_step = per_step
        self.steps_per_round = len(pids) // per_step
        self.seed = seed
        self._cached_round = -1
        self._order: np.ndarray | None = None

    def take(self, step: int) -> np.ndarray:
        round_index, offset = divmod(step, self.steps_per_round)
        if round_index != self._cached_round:
            rng = np.random.Generator(np.random.PCG64([self.seed, _STREAM_ROUND, self.group_id, round_index]))
            self._order = self.pids[rng.permutation(len(self.pids))]
            self._cached_round = round_index
        assert self._order is not None  # drawn above on the first call (_cached_round starts at -1)
        start = offset * self.per_step
        return self._order[start : start + self.per_step]


class _GroupedIdentitySampler(_StepBatchSampler):
    """P x K batches with identities drawn from groups in fixed shares (one group = plain P x K)."""

    def __init__(
        self,
        pids: Sequence[int],
        groups: Sequence[int],
        batch_size: int,
        num_instances: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        super().__init__(seed, rank, world_size)
        if num_instances < 1 or batch_size < num_instances or batch_size % num_instances:
            raise SamplerError(
                f"per-rank batch size {batch_size} must be a positive multiple of K=num_instances "
                f"({num_instances}) (SOLVER.IMS_PER_BATCH / world_size, DATALOADER.NUM_INSTANCES)"
            )
        if len(pids) != len(groups):
            raise ValueError("pids and groups must have one entry per sample")
        self.batch_size = batch_size
        self.num_instances = num_instances
        self.num_ids_per_rank = batch_size // num_instances
        self.num_samples = len(pids)
        index_of: dict[int, list[int]] = defaultdict(list)
        group_of: dict[int, int] = {}
        for index, (pid, group) in enumerate(zip(pids, groups)):
            pid, group = int(pid), int(group)
            if group_of.setdefault(pid, group) != group:
                raise ValueError(f"identity {pid} appears in groups {group_of[pid]} and {group}")
            index_of[pid].append(index)
        self._indices = {pid: np.asarray(ix, dtype=np.int64) for pid, ix in index_of.items()}
        group_ids = sorted(set(group_of.values()))
        self.num_groups = len(group_ids)
        if self.num_ids_per_rank % self.num_groups:
            raise SamplerError(
                f"{self.num_ids_per_rank} identities per rank cannot hold an equal share of {self.num_groups} "
                f"source domains; SOLVER.IMS_PER_BATCH must be a multiple of "
                f"{self.num_groups * num_instances * world_size}"
            )
        per_rank_share = self.num_ids_per_rank // self.num_groups
        self._groups = []
        for group in group_ids:
            members = sorted(pid for pid, g in group_of.items() if g == group)
            per_step = per_rank_share * world_size
            if len(members) < per_step:
                raise SamplerError(
                    f"source domain {group} has {len(members)} identities, fewer than the {per_step} per step "
                    f"({per_rank_share} per rank x {world_size} ranks) that SOLVER.IMS_PER_BATCH and "
                    "DATALOADER.NUM_INSTANCES ask for"
                )
            self._groups.append(_IdentityGroup(group, members, per_step, self.seed))
        self._per_rank_share = per_rank_share

    def fingerprint(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "batch_size": self.batch_size,
            "num_instances": self.num_instances,
            "num_groups": self.num_groups,
        }

    def data_fingerprint(self) -> dict[str, Any]:
        groups = [(int(g.group_id), [int(p) for p in g.pids]) for g in self._groups]
        counts = sorted((pid, len(ix)) for pid, ix in self._indices.items())
        return {
            "num_samples": self.num_samples,
            "num_identities": len(self._indices),
            "identities_sha": _digest(groups),  # the members of each group: they set the identity order
            "images_sha": _digest(counts),  # images per identity
        }

    def changed_data_note(self, state: dict[str, Any]) -> str:
        identities = self.data_fingerprint()["identities_sha"]
        if state.get("identities_sha", identities) == identities:
            return " (the same identities: the identity order of every later step is the recorded run's)"
        return " (identities without images left: the identity order is drawn anew for the remaining ones)"

    def batch_at(self, step: int) -> list[int]:
        # All ranks compute the same global draw; rank r keeps the r-th slice of every group's share.
        lo, hi = self.rank * self._per_rank_share, (self.rank + 1) * self._per_rank_share
        pids = np.concatenate([group.take(step)[lo:hi] for group in self._groups])
        rng = np.random.Generator(np.random.PCG64([self.seed, _STREAM_IMAGES, step, self.rank]))
        batch: list[int] = []
        k = self.num_instances
        for pid in pids:
            indices = self._indices[int(pid)]
            if len(indices) >= k:
                chosen = rng.choice(indices, size=k, replace=False)
            else:
                # Fewer than K images: all of them once, the rest re-drawn from them.
                chosen = np.concatenate(
                    [rng.permutation(indices), rng.choice(indices, size=k - len(indices))]
                )
            batch.extend(int(i) for i in chosen)
        return batch


class RandomIdentitySampler(_GroupedIdentitySampler):
    """P identities x K images per batch from all identities (``pids[i]`` = identity of sample ``i``)."""

    def __init__(
        self,
        pids: Sequence[int],
        batch_size: int,
        num_instances: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        super().__init__(pids, [0] * len(pids), batch_size, num_instances, seed, rank, world_size)


class DomainBalancedIdentitySampler(_GroupedIdentitySampler):
    """P x K batches holding ``P / num_domains`` identities of every source domain (``domains[i]``)."""

    def __init__(
        self,
        pids: Sequence[int],
        domains: Sequence[int],
        batch_size: int,
        num_instances: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        super().__init__(pids, domains, batch_size, num_instances, seed, rank, world_size)


class InfiniteRandomSampler(_StepBatchSampler):
    """Plain shuffling in batches (classification): epoch ``e`` is a permutation drawn from ``(seed, e)``;
    each rank takes its slice of every global batch; the last incomplete global batch is dropped."""

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(seed, rank, world_size)
        if batch_size < 1 or num_samples < batch_size * world_size:
            raise SamplerError(
                f"{num_samples} samples cannot fill one global batch of {batch_size} x {world_size} ranks; "
                "lower SOLVER.IMS_PER_BATCH or use fewer ranks"
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.steps_per_epoch = num_samples // (batch_size * world_size)
        self._cached_epoch = -1
        self._order: np.ndarray | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "batch_size": self.batch_size,
        }

    def data_fingerprint(self) -> dict[str, Any]:
        return {"num_samples": self.num_samples}

    def changed_data_note(self, state: dict[str, Any]) -> str:
        return " (the order of the images is drawn anew from here on)"

    def batch_at(self, step: int) -> list[int]:
        epoch, offset = divmod(step, self.steps_per_epoch)
        if epoch != self._cached_epoch:
            rng = np.random.Generator(np.random.PCG64([self.seed, _STREAM_SHUFFLE, epoch]))
            self._order = rng.permutation(self.num_samples)
            self._cached_epoch = epoch
        assert self._order is not None  # drawn above on the first call (_cached_epoch starts at -1)
        start = (offset * self.world_size + self.rank) * self.batch_size
        return [int(i) for i in self._order[start : start + self.batch_size]]


def _digest(value: Any) -> str:
    """A short stable digest of a JSON-like value (for sampler states)."""
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


# Builders by DATALOADER.SAMPLER name: (samples, per-rank batch size, K, seed, rank, world_size) -> sampler.
@SAMPLER_REGISTRY.register("random_identity")
def build_random_identity_sampler(
    samples: Sequence[Sample], batch_size: int, num_instances: int, seed: int, rank: int, world_size: int
) -> RandomIdentitySampler:
    """P x K over all identities."""
    return RandomIdentitySampler([s.pid for s in samples], batch_size, num_instances, seed, rank, world_size)


@SAMPLER_REGISTRY.register("domain_balanced")
def build_domain_balanced_sampler(
    samples: Sequence[Sample], batch_size: int, num_instances: int, seed: int, rank: int, world_size: int
) -> DomainBalancedIdentitySampler:
    """P x K with an equal share of identities per ``Sample.domain``."""
    return DomainBalancedIdentitySampler(
        [s.pid for s in samples],
        [s.domain for s in samples],
        batch_size,
        num_instances,
        seed,
        rank,
        world_size,
    )


@SAMPLER_REGISTRY.register("random")
def build_random_sampler(
    samples: Sequence[Sample], batch_size: int, num_instances: int, seed: int, rank: int, world_size: int
) -> InfiniteRandomSampler:
    """Plain shuffling (K unused)."""
    return InfiniteRandomSampler(len(samples), batch_size, seed, rank, world_size)
