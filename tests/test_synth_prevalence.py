"""The prevalence curve: its mean over each band is the band's published value, and zero stays zero."""

from __future__ import annotations

import numpy as np
import pytest

from naer.synth.model import load_model
from naer.synth.prevalence import at, knots


@pytest.mark.parametrize("key", [d.key for d in load_model().diseases])
def test_curve_mean_over_each_band_is_the_published_value(key: str) -> None:
    model = load_model()
    disease = next(d for d in model.diseases if d.key == key)
    max_age = float(model.demography["max_age"])
    xs, ys = knots(disease.prevalence, model.bands, max_age)
    ends = np.append(model.bands[1:], max_age)
    previous = 1.0
    means = []
    for low, high, published in zip(model.bands, ends, disease.prevalence, strict=True):
        mean = at(xs, ys, np.linspace(low, high, 2001))[0].mean()
        means.append(mean)
        if published == 0:
            assert mean == 0
        elif previous == 0:
            # The curve must climb from 0 at the band's start towards the next band: it can only
            # approximate a small value squeezed between a zero band and a much larger one.
            assert 0 < mean < 2 * published
        else:  # the fit is a compromise next to such a band, exact elsewhere
            assert mean == pytest.approx(published, rel=0.1)
        previous = published
    # Over the national age structure (what the calibration targets are), the curve is the table.
    weights = np.asarray(model.demography["age_structure"])
    assert weights @ np.asarray(means) == pytest.approx(weights @ disease.prevalence, rel=0.02)


def test_zero_bands_stay_zero_and_slope_follows_the_curve() -> None:
    bands = np.asarray([0.0, 10.0, 20.0, 40.0])
    xs, ys = knots(np.asarray([0.0, 0.0, 0.02, 0.10]), bands, 60.0)
    value, slope = at(xs, ys, np.asarray([5.0, 19.9, 30.0, 45.0, 59.0, 80.0]))
    assert value[0] == value[1] == 0 and slope[0] == 0
    assert 0 < value[2] < value[3] < value[4]
    assert slope[2] > 0 and slope[5] == 0  # flat beyond the last knot
    assert np.all(np.diff(xs) > 0) and np.all(ys >= 0)
