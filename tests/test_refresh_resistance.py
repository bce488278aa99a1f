"""The ``resistance`` refresh condition (issue 20, point 6: a condition from what a chip can observe): a
synapse is due when either device's read, ln R plus white read noise of sd check_noise, is at least ln(above);
the noise is a pure function of (seed, device, the array's updates), the same on every backend."""

import math

import pytest
import torch

from rramk import DeviceArray
from rramk.device import streams, weak_reset
from rramk.device.refresh import Refresh, resistance_due
from rramk.device.soft_bounds import SoftBounds


def _worn(backend="reference", seed=2, n=3000, updates=80):
    array = DeviceArray((n,), seed=seed, backend=backend)
    g = torch.Generator().manual_seed(0)
    for _ in range(updates):
        array.apply_pulses(torch.randint(-14, 15, (n,), generator=g, dtype=torch.int32))
    return array


def test_noise_free_condition_is_the_threshold_on_ln_r():
    array = _worn()
    log_r = array.log_resistance().reshape(2, -1)
    above = float(torch.exp(log_r.max(0).values.median()))  # about half the synapses
    expected = (log_r.double() >= math.log(above)).any(0)
    held = array.weights().clone()
    count = array.refresh("resistance", above=above)
    assert count == int(expected.sum()) and 0.3 * len(expected) < count < 0.7 * len(expected)
    t = torch.stack(array.pulse_counts())
    assert (t[:, expected].min(0).values == 0).all()  # SET: the partner that reads lower at t = 0
    assert int((array.weights() != held).sum()) == array.failed_rewrites < 0.05 * count  # re-written


def test_read_noise_is_the_check_streams_triangle_of_sd_check_noise():
    """By hand: the read of device (i, side) carries sqrt(6) sigma (u + u' - 1), u, u' words 0, 1 of the CHECK
    call (c1 = 2 STREAM_CHECK + side, c2/c3 = the updates so far); the noise's sd is sigma (20 000 devices)."""
    n, sigma, updates = 20_000, 0.05, 2**32 + 7
    log_r = torch.zeros(2, n)
    index = torch.arange(n, dtype=torch.int64)
    words = weak_reset.philox4x32(9, index, 2 * streams.STREAM_CHECK + 1, updates & 0xFFFFFFFF, updates >> 32)
    u = [weak_reset.uniform_from_bits(w, torch.float32) for w in words[:2]]
    noise = (weak_reset.VERIFY_NOISE_SCALE * sigma) * ((u[0] + u[1]) - 1.0)
    assert noise.double().std().item() == pytest.approx(sigma, rel=0.03)
    threshold = 0.01  # the BLb device's read alone decides where BL reads 0 - 1.0
    log_r[0] = -1.0
    due = resistance_due(log_r, seed=9, updates=updates, above=math.exp(threshold), check_noise=sigma)
    assert torch.equal(due, noise >= torch.tensor(threshold, dtype=torch.float64).float())


def test_every_backend_refreshes_the_same_synapses():
    results = []
    for backend in ("reference", "native"):
        array = _worn(backend)
        results.append((array.refresh("resistance", above=11000.0, check_noise=0.03), torch.stack(array.pulse_counts()),
                        array.weights().clone()))
    assert results[0][0] == results[1][0] > 0
    assert torch.equal(results[0][1], results[1][1]) and torch.equal(results[0][2], results[1][2])


def test_policy_and_errors():
    policy = Refresh.parse("resistance:above=10900,check_noise=0.02,retries=3")
    assert (policy.condition, policy.above, policy.check_noise, policy.retries) == ("resistance", 10900.0, 0.02, 3)
    assert Refresh.parse(str(policy)) == policy
    with pytest.raises(ValueError, match="resistance: expected above=R, a resistance > 0 in ohm"):
        Refresh.parse("resistance")
    with pytest.raises(ValueError, match="above and check_noise apply to the 'resistance' condition only"):
        Refresh.parse("pulses:limit=5,above=3")
    with pytest.raises(ValueError, match="'resistance' compares ln R with a threshold in ohm"):
        DeviceArray((4,), SoftBounds()).refresh("resistance", above=1e4)
