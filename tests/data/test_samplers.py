"""Samplers over many batches: exact P x K structure, domain shares, DDP disjointness, exact resume."""

from __future__ import annotations

import io
import itertools
from collections import Counter

import pytest
import torch

from reid_dff.data.samplers import (
    DomainBalancedIdentitySampler,
    InfiniteRandomSampler,
    RandomIdentitySampler,
    SamplerStateError,
)


def make_data(images_per_id=(1, 2, 3, 5, 8), ids_per_domain=(7, 12, 30)):
    """pids/domains per sample: identities with few (< K) and many images, sources of different sizes."""
    pids, domains = [], []
    pid = 0
    for domain, num_ids in enumerate(ids_per_domain):
        for i in range(num_ids):
            count = images_per_id[(pid + i) % len(images_per_id)]
            pids += [pid] * count
            domains += [domain] * count
            pid += 1
    return pids, domains


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def check_pk(batch, pids, k):
    """Every drawn identity exactly K times, consecutively; no identity twice; indices of that identity."""
    ids_in_order = [pids[i] for i in batch]
    groups = [ids_in_order[j : j + k] for j in range(0, len(batch), k)]
    assert all(len(set(g)) == 1 for g in groups)
    drawn = [g[0] for g in groups]
    assert len(drawn) == len(set(drawn)), "an identity repeated within a batch"
    return drawn


def test_random_identity_sampler_structure_over_many_batches():
    pids, _ = make_data()
    k, batch_size = 4, 16
    sampler = RandomIdentitySampler(pids, batch_size, k, seed=3)
    index_of = {}
    for i, p in enumerate(pids):
        index_of.setdefault(p, set()).add(i)
    seen = Counter()
    batches = take(sampler, 300)
    for batch in batches:
        assert len(batch) == batch_size
        for pid in check_pk(batch, pids, k):
            seen[pid] += 1
        for i in batch:
            assert i in index_of[pids[i]]
        # identities with >= K images never repeat an image; fewer than K: all images appear
        for pid in {pids[i] for i in batch}:
            chosen = [i for i in batch if pids[i] == pid]
            if len(index_of[pid]) >= k:
                assert len(set(chosen)) == k
            else:
                assert set(chosen) == index_of[pid]
    # rounds over permutations: 49 ids, 4 per step -> 12 steps per round with 48 distinct ids, 1 left out
    steps_per_round = 49 // 4
    for start in range(0, 300, steps_per_round):
        round_ids = [pids[i] for b in batches[start : start + steps_per_round] for i in b[::k]]
        assert len(round_ids) == len(set(round_ids))
    assert set(seen) == set(pids) and max(seen.values()) == 300 // steps_per_round


def test_domain_balanced_shares_are_exact_and_small_sources_reshuffle():
    pids, domains = make_data()
    domain_of = dict(zip(pids, domains))
    k, batch_size = 2, 24  # 12 ids = 4 per domain
    sampler = DomainBalancedIdentitySampler(pids, domains, batch_size, k, seed=0)
    per_domain_draws = Counter()
    for batch in take(sampler, 200):
        drawn = check_pk(batch, pids, k)
        shares = Counter(domain_of[p] for p in drawn)
        assert shares == {0: 4, 1: 4, 2: 4}
        per_domain_draws.update(domain_of[p] for p in drawn)
    # the 7-id source went through many rounds while the 30-id one continued its own
    assert per_domain_draws[0] == per_domain_draws[2] == 800


def test_ddp_ranks_draw_disjoint_identities_and_union_is_the_global_draw():
    pids, domains = make_data()
    k, world = 2, 2
    per_rank = 12
    samplers = [
        DomainBalancedIdentitySampler(pids, domains, per_rank, k, seed=5, rank=r, world_size=world)
        for r in range(world)
    ]
    single = DomainBalancedIdentitySampler(pids, domains, per_rank, k, seed=5, rank=0, world_size=1)
    domain_of = dict(zip(pids, domains))
    for step_batches in zip(*(take(s, 100) for s in samplers)):
        drawn = [set(check_pk(b, pids, k)) for b in step_batches]
        assert not drawn[0] & drawn[1], "two ranks share an identity in one step"
        for ids in drawn:
            assert Counter(domain_of[p] for p in ids) == {0: 2, 1: 2, 2: 2}
    assert take(single, 1)[0] != take(samplers[1], 1)[0]


def test_resume_from_state_gives_identical_continuation():
    pids, domains = make_data()
    for make in (
        lambda: DomainBalancedIdentitySampler(pids, domains, 12, 2, seed=9, rank=1, world_size=2),
        lambda: RandomIdentitySampler(pids, 8, 4, seed=9),
        lambda: InfiniteRandomSampler(len(pids), 8, seed=9),
    ):
        reference = take(make(), 60)
        first = make()
        it = iter(first)
        for _ in range(23):
            next(it)
        state = first.state_dict()
        # the state survives a weights_only checkpoint round trip
        buffer = io.BytesIO()
        torch.save({"sampler": state}, buffer)
        buffer.seek(0)
        state = torch.load(buffer, weights_only=True)["sampler"]
        resumed = make()
        resumed.load_state_dict(state)
        assert take(resumed, 37) == reference[23:]
        # an explicit consumed-step count (workers prefetching ahead) is honoured
        assert first.state_dict(step=5)["step"] == 5


def test_foreign_state_is_rejected():
    pids, domains = make_data()
    a = RandomIdentitySampler(pids, 8, 4, seed=1)
    b = RandomIdentitySampler(pids, 8, 4, seed=2)
    with pytest.raises(SamplerStateError, match="'seed'"):
        b.load_state_dict(a.state_dict())
    with pytest.raises(SamplerStateError, match="'step'"):
        a.load_state_dict({**a.state_dict(), "step": -1})


def test_random_sampler_covers_each_epoch_once_per_rank_slice():
    n, batch = 50, 4
    samplers = [InfiniteRandomSampler(n, batch, seed=0, rank=r, world_size=3) for r in range(3)]
    steps = n // (batch * 3)  # 4 steps per epoch, 2 samples dropped
    epoch = [i for s in samplers for b in take(s, steps) for i in b]
    assert len(epoch) == len(set(epoch)) == steps * batch * 3


def test_invalid_batch_shapes_are_clear_errors():
    pids, domains = make_data()
    with pytest.raises(ValueError, match="multiple of K"):
        RandomIdentitySampler(pids, 10, 4)
    with pytest.raises(ValueError, match="equal share of 3 source domains.*multiple of 12"):
        DomainBalancedIdentitySampler(pids, domains, 16, 4)
    with pytest.raises(ValueError, match="source domain 0 has 7 identities"):
        DomainBalancedIdentitySampler(pids, domains, 48, 2)


def test_a_resume_over_data_that_lost_images_keeps_the_step_and_the_identity_order(caplog):
    pids, domains = make_data()
    full = DomainBalancedIdentitySampler(pids, domains, 24, 4, seed=3)
    reference = take(full, 30)  # 30 steps: several rounds of the small domain
    state = full.state_dict(step=10)  # taken after 10 consumed batches

    # one image of an identity with several images is gone (deleted, or dropped as unreadable)
    lost = next(i for i, p in enumerate(pids) if pids.count(p) == 5)
    kept = [i for i in range(len(pids)) if i != lost]
    fewer = DomainBalancedIdentitySampler([pids[i] for i in kept], [domains[i] for i in kept], 24, 4, seed=3)
    with caplog.at_level("WARNING", logger="reid_dff.data"):
        fewer.load_state_dict(state)
    assert fewer.step == 10
    assert any(
        change.startswith(f"num_samples {len(pids)} in the state, {len(pids) - 1} now")
        for change in fewer.data_changes
    )
    assert "the same identities: the identity order of every later step is the recorded run's" in caplog.text
    resumed = take(fewer, 20)
    for old, new in zip(reference[10:], resumed):
        # the same identities in the same order; images drawn from what is left, never the lost one
        assert check_pk([kept[i] for i in new], pids, 4) == check_pk(old, pids, 4)
        assert lost not in {kept[i] for i in new}
    # batches before the first one with the lost image's identity are drawn exactly as before
    assert sum([kept[i] for i in new] == old for old, new in zip(reference[10:], resumed)) > 0

    # an identity that lost all its images: the run goes on, its identity order drawn anew
    gone = pids[0]
    rest = [i for i in range(len(pids)) if pids[i] != gone]
    without = DomainBalancedIdentitySampler(
        [pids[i] for i in rest], [domains[i] for i in rest], 24, 4, seed=3
    )
    without.load_state_dict(state)
    assert without.step == 10 and any(c.startswith("identities_sha") for c in without.data_changes)
    assert all(gone not in {pids[rest[i]] for i in batch} for batch in take(without, 10))

    # the same data: exact, no change recorded
    same = DomainBalancedIdentitySampler(pids, domains, 24, 4, seed=3)
    same.load_state_dict(state)
    assert same.data_changes == [] and take(same, 20) == reference[10:]


def test_a_state_of_another_batch_shape_or_layout_is_still_refused_over_changed_data():
    pids, domains = make_data()
    state = RandomIdentitySampler(pids, 8, 4, seed=1).state_dict()
    with pytest.raises(SamplerStateError, match="'num_instances'"):
        RandomIdentitySampler(pids[:-1], 8, 2, seed=1).load_state_dict(state)
    shuffled = InfiniteRandomSampler(50, 4, seed=0)
    smaller = InfiniteRandomSampler(49, 4, seed=0)
    smaller.load_state_dict(shuffled.state_dict(step=7))
    assert smaller.step == 7 and smaller.data_changes == ["num_samples 50 in the state, 49 now"]
    assert all(max(b) < 49 for b in take(smaller, 20))
