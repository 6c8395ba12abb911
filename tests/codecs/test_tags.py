"""Tag indices: one slot per joint type, flat index k*h*w + y*w + x, overflow warns."""

import warnings

import numpy as np
import pytest

from bupose.codecs.tags import decode_tag_indices, encode_tag_indices


def test_layout_one_slot_per_joint_type():
    w, h, k = 7, 5, 4
    kps = np.zeros((2, k, 3), np.float32)
    kps[0, 1] = [3.9, 2.2, 2]  # cell (3, 2)
    kps[0, 3] = [6.0, 4.0, 1]  # cell (6, 4), occluded still counts
    kps[1, 0] = [1.0, 1.0, 0]  # unlabelled
    kps[1, 2] = [7.0, 1.0, 2]  # x == w: outside
    out = encode_tag_indices(kps, (w, h), max_people=3)
    assert out.shape == (3, k, 2) and out.dtype == np.int64
    assert out[0, 1].tolist() == [1 * h * w + 2 * w + 3, 1]
    assert out[0, 3].tolist() == [3 * h * w + 4 * w + 6, 1]
    assert out[0, 0].tolist() == [0, 0] and out[0, 2].tolist() == [0, 0]
    assert not out[1].any() and not out[2].any()


def test_round_trip_decode():
    rng = np.random.default_rng(0)
    w, h, k = 11, 9, 6
    kps = np.stack([rng.uniform(0, w, (5, k)), rng.uniform(0, h, (5, k)),
                    rng.integers(0, 3, (5, k))], axis=-1).astype(np.float32)
    jxy, valid = decode_tag_indices(encode_tag_indices(kps, (w, h), 30), (w, h))
    assert valid[:5].tolist() == (kps[..., 2] > 0).tolist() and not valid[5:].any()
    p, j = np.nonzero(valid)
    np.testing.assert_array_equal(jxy[p, j, 0], j)
    np.testing.assert_array_equal(jxy[p, j, 1:], np.trunc(kps[p, j, :2]).astype(int))


def test_more_people_than_rows_warns_and_keeps_the_first():
    kps = np.zeros((33, 2, 3), np.float32)
    kps[:, 0] = [1.0, 1.0, 2]
    kps[:, 0, 0] = np.arange(33) % 4  # tell the people apart by x
    with pytest.warns(UserWarning, match="dropping the last 3"):
        out = encode_tag_indices(kps, (4, 4), max_people=30)
    assert out.shape == (30, 2, 2)
    assert out[:, 0, 1].all()
    np.testing.assert_array_equal(out[:, 0, 0], 1 * 4 + np.arange(30) % 4)


def test_people_without_joints_are_dropped_first_silently():
    kps = np.zeros((32, 1, 3), np.float32)
    kps[::2, 0] = [2.0, 3.0, 2]  # 16 people with a joint, 16 without
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = encode_tag_indices(kps, (4, 4), max_people=30)
    assert out[:16, 0, 1].all() and not out[16:].any()
