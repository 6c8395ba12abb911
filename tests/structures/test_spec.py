import json

import pytest

from bupose.errors import ConfigError
from bupose.structures.spec import BUILTIN_SPECS, KeypointSpec, get_spec, load_spec


@pytest.mark.parametrize("name", sorted(BUILTIN_SPECS))
def test_builtin_specs_are_consistent(name):
    spec = BUILTIN_SPECS[name]
    k = spec.num_keypoints
    assert [spec.flip_index[spec.flip_index[i]] for i in range(k)] == list(range(k))
    assert len(spec.sigmas) == k
    assert all(0 <= a < k and 0 <= b < k for a, b in spec.skeleton)
    assert sorted(spec.joint_order) == list(range(k))
    for groups in spec.groups.values():
        assert all(0 <= i < k for g in groups for i in g)
    # flipping maps left names to right names and back
    for i, j in enumerate(spec.flip_index):
        a, b = spec.keypoints[i], spec.keypoints[j]
        assert a.replace("left", "right") == b or a.replace("right", "left") == b or i == j


def test_reference_values():
    coco, crowd = get_spec("coco"), get_spec("crowdpose")
    assert coco.num_keypoints == 17 and crowd.num_keypoints == 14
    assert coco.joint_order == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
    assert crowd.joint_order == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13)
    assert crowd.get_groups()[0] == (0, 1, 12, 13)
    assert coco.get_groups("hierarchical_coco")[1] == (11, 12)
    assert get_spec("ochuman").sigmas == coco.sigmas


def test_unknown_spec_suggests_close_name():
    with pytest.raises(ConfigError, match="coco17"):
        get_spec("coco71")


def _custom(**over):
    d = dict(name="hand3", keypoints=["a", "b", "c"], flip_index=[1, 0, 2],
             skeleton=[[0, 2], [1, 2]], sigmas=[0.05, 0.05, 0.05],
             groups={"g": [[0, 1], [2]]}, default_groups="g")
    d.update(over)
    return d


def test_load_custom_spec_from_yaml_and_json(tmp_path):
    import yaml

    y = tmp_path / "hand.yaml"
    y.write_text(yaml.safe_dump(_custom()))
    spec = load_spec(y)
    assert spec.num_keypoints == 3 and spec.get_groups() == ((0, 1), (2,))
    j = tmp_path / "hand.json"
    j.write_text(json.dumps(spec.to_dict()))
    assert load_spec(j) == spec


@pytest.mark.parametrize(
    "over, message",
    [
        (dict(flip_index=[1, 2, 0]), "involution"),
        (dict(flip_index=[1, 0]), "flip_index has 2 entries"),
        (dict(sigmas=[0.1, 0.1]), "2 sigmas for K = 3"),
        (dict(skeleton=[[0, 3]]), "skeleton limb"),
        (dict(groups={"g": [[0, 5]]}), "group scheme 'g'"),
        (dict(colour="red"), "unknown keys"),
    ],
)
def test_invalid_spec_says_what_is_wrong(tmp_path, over, message):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(_custom(**over)))
    with pytest.raises(ConfigError, match=message) as info:
        load_spec(p)
    assert str(p) in str(info.value)


def test_malformed_spec_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="malformed"):
        load_spec(p)


def test_spec_is_hashable_and_frozen():
    with pytest.raises(AttributeError):
        get_spec("coco").name = "x"  # type: ignore[misc]
    assert isinstance(KeypointSpec.from_dict(_custom()), KeypointSpec)
