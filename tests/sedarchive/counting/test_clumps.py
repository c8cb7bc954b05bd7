"""Grains hidden in clumps: known answers for the clump correction of the corrected counts."""
from __future__ import annotations

import numpy as np
from sedarchive.counting.class_estimates import corrected_estimates
from sedarchive.counting.clumps import clumped_mix, hidden_counts, hidden_mix, size_model


def clumped_population(n: int, clump_chance: tuple[float, float], seed: int = 0):
    """Two classes at 50/50, small (area 80-120 px) and large (400-600 px); a grain joins a clump
    with its class's chance, clumped grains pair at random and a pair shows as one object of the
    summed area, named by its larger grain. Returns per object (class, area, clump)."""
    rng = np.random.default_rng(seed)
    cls = np.repeat([0, 1], n // 2)
    area = np.where(cls == 0, rng.uniform(80, 120, cls.size), rng.uniform(400, 600, cls.size))
    clumped = rng.random(cls.size) < np.array(clump_chance)[cls]
    members = rng.permutation(np.flatnonzero(clumped))
    members = members[: len(members) // 2 * 2].reshape(-1, 2)
    single = np.setdiff1d(np.arange(cls.size), members.ravel())
    larger = np.where(area[members[:, 0]] >= area[members[:, 1]], members[:, 0], members[:, 1])
    obj_cls = np.concatenate([cls[single], cls[larger]])
    obj_area = np.concatenate([area[single], area[members].sum(axis=1)])
    obj_clump = np.concatenate([np.zeros(single.size, bool), np.ones(len(members), bool)])
    return obj_cls, obj_area, obj_clump


def test_hidden_grains_recover_a_known_mix_where_small_grains_clump_more():
    cls, area, clump = clumped_population(40_000, (0.3, 0.1))
    weight = np.ones(cls.size)
    as_one = np.mean(cls == 1)
    left_out = np.mean(cls[~clump] == 1)
    assert as_one > 0.5 + 0.04 and left_out > 0.5 + 0.02  # both biased against the small class
    out = corrected_estimates([(cls, weight, area, clump)], np.eye(2), n_boot=200)
    assert abs(out["class_fraction"][0, 1] - 0.5) < 0.01
    assert out["class_fraction_lower"][0, 1] <= 0.5 <= out["class_fraction_upper"][0, 1]
    # and the number of grains: every grain of the population once
    assert abs(out["class_count"][0].sum() / 40_000 - 1) < 0.01


def test_without_clumps_nothing_is_added():
    cls, area, clump = clumped_population(2_000, (0.0, 0.0))
    assert not clump.any()
    m = size_model(area, cls, np.ones(cls.size), ~clump, 2)
    assert hidden_counts(area, cls, np.ones(cls.size), clump, m).tolist() == [0.0, 0.0]
    plain = corrected_estimates([(cls, np.ones(cls.size))], np.eye(2), n_boot=50)
    with_areas = corrected_estimates([(cls, np.ones(cls.size), area, clump)], np.eye(2), n_boot=50)
    np.testing.assert_allclose(with_areas["class_fraction"], plain["class_fraction"])
    np.testing.assert_allclose(with_areas["class_fraction_lower"], plain["class_fraction_lower"])


def test_the_clumped_mix_is_solved_from_the_clumps_names():
    smaller = np.array([[0.5, 0.0], [1.0, 0.5]])  # class 1 always the larger
    for g in ([0.5, 0.5], [0.8, 0.2], [0.1, 0.9]):
        g = np.array(g)
        named = g * (smaller @ g)  # P(named c) ∝ g_c (P g)_c
        np.testing.assert_allclose(clumped_mix(named, smaller), g, atol=1e-6)
        hidden = hidden_mix(g, smaller)  # the smaller of each pair: small unless both are large
        np.testing.assert_allclose(hidden, [g[0] * (2 - g[0]), g[1] ** 2] / (g[0] * (2 - g[0]) + g[1] ** 2))
