import cv2
import numpy as np

from bupose.structures.affine import (
    affine_from_center_scale,
    apply_affine,
    compose,
    hflip_affine,
    invert,
)


def test_inverse_flag_matches_inverted_matrix():
    a = affine_from_center_scale((100.0, 80.0), (1.3, 1.3), 17.0, (64, 48))
    b = affine_from_center_scale((100.0, 80.0), (1.3, 1.3), 17.0, (64, 48), inverse=True)
    np.testing.assert_allclose(invert(a), b, atol=1e-4)
    np.testing.assert_allclose(compose(b, a), np.eye(3)[:2], atol=1e-5)


def test_center_maps_to_output_center_and_scale():
    a = affine_from_center_scale((50.0, 40.0), 1.0, 0.0, (100, 100))
    np.testing.assert_allclose(apply_affine(np.array([[50.0, 40.0], [150.0, 40.0]]), a),
                               [[50.0, 50.0], [100.0, 50.0]], atol=1e-4)


def test_dot_follows_warp():
    img = np.zeros((60, 80), np.float32)
    img[20, 30] = 1.0
    img = cv2.GaussianBlur(img, (7, 7), 1.5)
    a = affine_from_center_scale((40.0, 30.0), 0.5, 25.0, (96, 96))
    out = cv2.warpAffine(img, a, (96, 96), flags=cv2.INTER_LINEAR)
    y, x = np.unravel_index(out.argmax(), out.shape)
    px, py = apply_affine(np.array([30.0, 20.0]), a)
    assert abs(px - x) <= 0.5 + 1e-6 and abs(py - y) <= 0.5 + 1e-6


def test_hflip_twice_is_identity():
    f = hflip_affine(33)
    np.testing.assert_allclose(compose(f, f), np.eye(3)[:2])
