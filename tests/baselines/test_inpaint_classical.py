"""Classical inpainting baselines: known pixels kept, smooth fields filled well."""

from __future__ import annotations

import numpy as np
import pytest

from ctpipe.baselines.inpaint_classical import inpaint_classical, inpaint_classical_slice


@pytest.fixture
def ramp():
    hu = np.add.outer(np.linspace(-200, 200, 48), np.linspace(0, 100, 40)).astype(np.float32)
    hole = np.zeros(hu.shape, bool)
    hole[20:27, 15:22] = True
    return hu, hole


@pytest.mark.parametrize("method", ["biharmonic", "telea", "ns"])
def test_known_pixels_kept_and_fill_within_the_boundary_range(ramp, method):
    hu, hole = ramp
    out = inpaint_classical_slice(hu, hole, method)
    assert out.dtype == np.float32
    assert np.array_equal(out[~hole], hu[~hole])
    ring = np.zeros_like(hole)
    ring[19:28, 14:23] = True
    ring &= ~hole
    assert hu[ring].min() - 1 <= out[hole].min() and out[hole].max() <= hu[ring].max() + 1


def test_biharmonic_reproduces_a_linear_field(ramp):
    hu, hole = ramp  # a linear function is biharmonic: the fill must equal it
    assert np.abs(inpaint_classical_slice(hu, hole, "biharmonic") - hu).max() < 0.05


def test_volume_touches_only_masked_slices(ramp):
    hu, hole = ramp
    volume = np.stack([hu, hu + 10, hu - 10], axis=2)
    mask = np.zeros(volume.shape, bool)
    mask[:, :, 1] = hole
    out = inpaint_classical(volume, mask, "telea")
    assert np.array_equal(out[:, :, [0, 2]], volume[:, :, [0, 2]])
    assert np.array_equal(out[~mask], volume[~mask])


def test_errors(ramp):
    hu, hole = ramp
    with pytest.raises(ValueError, match="method must be one of biharmonic, telea, ns, got 'gan'"):
        inpaint_classical_slice(hu, hole, "gan")
    with pytest.raises(ValueError, match="of one shape"):
        inpaint_classical(hu[:, :, None], hole, "ns")
