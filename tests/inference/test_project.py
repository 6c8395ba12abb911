"""back_project: the official get_final_preds."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.errors import DataError
from bupose.inference.project import back_project
from bupose.structures.affine import affine_from_center_scale, apply_affine
from tests.conftest import FIXTURES, require


@pytest.mark.parametrize("name", ["000000000785", "crowd40"])
def test_equals_official_final(name):
    with np.load(require(FIXTURES / "grouping" / f"structured_{name}.npz")) as data:
        out = back_project(data["grouped"], data["center"], data["scale"], data["base_size"])
        assert out.dtype == data["final"].dtype
        np.testing.assert_allclose(out, data["final"], atol=1e-4, rtol=0)
        np.testing.assert_array_equal(out[..., 2:], data["grouped"][..., 2:])


def test_inverse_of_the_resize_affine(rng):
    center, scale, size = np.array([320.0, 215.0]), np.array([3.2175, 2.145]), (768, 512)
    image_xy = rng.uniform(0, 600, (3, 4, 2))
    forward = affine_from_center_scale(center, scale, 0.0, size)
    people = np.concatenate([apply_affine(image_xy, forward), np.ones((3, 4, 1))], axis=2)
    np.testing.assert_allclose(back_project(people, center, scale, size)[..., :2], image_xy,
                               atol=1e-6)
    # a scalar scale means a square box
    square = back_project(people, center, 3.2175, size)
    np.testing.assert_allclose(square, back_project(people, center, [3.2175, 3.2175], size))


def test_empty_and_bad_shapes():
    assert back_project(np.zeros((0, 17, 5)), [1, 1], [1, 1], (64, 64)).shape == (0, 17, 5)
    with pytest.raises(DataError):
        back_project(np.zeros((17, 5)), [1, 1], [1, 1], (64, 64))
