import numpy as np

from bupose.codecs.oracle import render_oracle_maps
from bupose.decoders.ae import decode_ae
from bupose.structures.spec import COCO17


def _people(rng, n, size=96):
    kps = np.zeros((n, 17, 3))
    kps[..., :2] = rng.uniform(4, size - 4, size=(n, 17, 2))
    kps[..., 2] = 2
    return kps


def test_peaks_and_tags_sit_on_the_joints():
    rng = np.random.default_rng(0)
    kps = _people(rng, 3)
    heatmaps, tags = render_oracle_maps(kps, (96, 96), rng, joint_tag_noise=0.0)
    assert heatmaps.shape == (17, 96, 96) and tags.shape == (17, 96, 96, 1)
    x, y = int(kps[1, 5, 0]), int(kps[1, 5, 1])
    assert heatmaps[5, y, x] == 1.0
    # without joint noise, every joint of a person carries the same tag
    person_tags = [tags[k, int(kps[1, k, 1]), int(kps[1, k, 0]), 0] for k in range(17)
                   if heatmaps[k, int(kps[1, k, 1]), int(kps[1, k, 0])] == 1.0]
    assert np.ptp(person_tags) == 0.0


def test_well_separated_tags_decode_back_to_the_people():
    rng = np.random.default_rng(1)
    kps = _people(rng, 4, size=128)
    heatmaps, tags = render_oracle_maps(kps, (128, 128), rng, sigma=2.0,
                                        person_tag_spread=20.0, joint_tag_noise=0.05)
    grouped, scores = decode_ae(heatmaps, tags, joint_order=COCO17.joint_order)
    assert len(grouped) >= 4
    # every true person is found by the highest-scoring decoded people, within 1 px
    best = grouped[np.argsort(-scores)[:4], :, :2]
    for person in kps[..., :2]:
        errors = np.abs(best - person[None]).max(axis=(1, 2))
        assert errors.min() <= 1.0
