"""make_task_target / decode_target: the boundary datasets and train code against."""

import json

import numpy as np
import pytest

from rgbify.encode import TASKS, decode_target, make_task_target
from rgbify.encode.prompts import DEPTH_TEMPLATES


def _gt(h=7, w=11, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 30, (h, w)).astype(np.float32)
    depth[0, :3] = np.inf
    n = rng.normal(size=(h, w, 3))
    n[..., 2] = -np.abs(n[..., 2])
    n = (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)
    n[0, :3] = 0
    sem = np.zeros((h, w), np.int32)
    inst = np.zeros((h, w), np.int32)
    sem[1:4, 1:5], inst[1:4, 1:5] = 2, 5  # chair 5
    sem[1:3, 6:9], inst[1:3, 6:9] = 2, 6  # chair 6
    sem[4:7, :], inst[4:7, :] = 1, 1  # floor
    sem[5:6, 8:10], inst[5:6, 8:10] = 3, 9  # table
    instances = [
        {"id": 1, "class_name": "floor", "class_index": 1, "object_name": "floor", "pixel_count": 31},
        {"id": 5, "class_name": "chair", "class_index": 2, "object_name": "chair.0", "pixel_count": 12},
        {"id": 6, "class_name": "chair", "class_index": 2, "object_name": "chair.1", "pixel_count": 6},
        {"id": 9, "class_name": "table", "class_index": 3, "object_name": "table.0", "pixel_count": 2},
    ]
    return {"depth": depth, "normals": n, "semantic": sem, "instance": inst,
            "class_names": ["floor", "chair", "table", "lamp"], "instances": instances}


@pytest.mark.parametrize("task", TASKS)
def test_round_trip_through_json_params(task):
    gt = _gt()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        target, prompt, params = make_task_target(
            task, gt, rng, depth_codecs=["depth/cubewalk", {"name": "depth/hilbert24", "d_max": 50}],
            colormap_prob=0.3, instance_variant="random", flip_x=bool(seed % 2))
        assert target.dtype == np.uint8 and target.shape == (7, 11, 3)
        assert isinstance(prompt, str) and prompt
        params = json.loads(json.dumps(params))
        out = decode_target(target, params)
        if task == "depth":
            assert out.dtype == np.float32
            far = np.isinf(gt["depth"])
            assert np.allclose(out[~far], gt["depth"][~far], rtol=0.02)
        elif task == "normals":
            assert np.allclose(out, gt["normals"], atol=0.01)
        elif task == "semantic":
            assert np.array_equal(out, gt["semantic"])
        else:
            cls = params["class_index"]
            assert cls in (1, 2, 3) and params["class_name"] == gt["class_names"][cls - 1]
            assert np.array_equal(out, np.where(gt["semantic"] == cls, gt["instance"], 0))
        assert decode_target(target, json.dumps(params)).shape == out.shape


def test_affine_depth_target_decodes_to_relative_depth():
    """depth/affine: the prompt names no scale; decode gives relative depth, affine in the true depth between the
    image's 2nd and 98th percentiles (to within half a grey step)."""
    gt = _gt(40, 50)
    target, prompt, params = make_task_target("depth", gt, np.random.default_rng(0), depth_codecs=["affine"])
    assert params["codec"] == {"name": "depth/affine"} and prompt in DEPTH_TEMPLATES["depth/affine"]
    rel = decode_target(target, json.loads(json.dumps(params)))
    d = gt["depth"].astype(np.float64)
    lo, hi = np.percentile(d[np.isfinite(d)], [2, 98])
    inside = (d > lo) & (d < hi)
    assert (np.abs(lo + rel * (hi - lo) - d)[inside] <= 0.5 * (hi - lo) / 255 + 1e-5).all()
    assert (rel[np.isinf(d)] == 1).all()


def test_fixed_semantic_colours():
    """semantic_colors="fixed": a class has the same colour in every request (PALETTE[(i - 1) % 26]), classes in
    index order; labels still round-trip; task_prompt honours it; anything else is refused."""
    from rgbify.encode import PALETTE
    from rgbify.encode.tasks import task_prompt

    gt = _gt()
    seen = set()
    for seed in range(6):
        target, _, params = make_task_target("semantic", gt, np.random.default_rng(seed), semantic_colors="fixed")
        seen.add(json.dumps(params["classes"]))
        assert [c["index"] for c in params["classes"]] == [1, 2, 3]
        assert [tuple(c["color"]) for c in params["classes"]] == [PALETTE[i].rgb for i in (0, 1, 2)]
        assert np.array_equal(decode_target(target, params), gt["semantic"])
    assert len(seen) == 1
    _, params = task_prompt("semantic", np.random.default_rng(0), ["wall", "floor"], semantic_colors="fixed")
    assert [tuple(c["color"]) for c in params["classes"]] == [PALETTE[0].rgb, PALETTE[1].rgb]
    with pytest.raises(ValueError, match="semantic_colors 'random'"):
        make_task_target("semantic", gt, np.random.default_rng(0), semantic_colors="random")


def test_choices_are_drawn_by_rng_and_reproducible():
    gt = _gt()
    a = [make_task_target("semantic", gt, np.random.default_rng(s))[1] for s in range(6)]
    b = [make_task_target("semantic", gt, np.random.default_rng(s))[1] for s in range(6)]
    assert a == b and len(set(a)) > 1
    codecs = {make_task_target("depth", gt, np.random.default_rng(s), colormap_prob=0.5)[2]["codec"]["name"]
              for s in range(30)}
    assert "depth/cubewalk" in codecs and any("colormap" in c for c in codecs)


def test_instance_options():
    gt = _gt()
    t, p, params = make_task_target("instance", gt, np.random.default_rng(0), instance_class="chair",
                                    instance_variant="shades")
    assert params["class_index"] == 2 and [i["id"] for i in params["instances"]] == [5, 6]  # largest first
    assert params["instances"][0]["color"] == params["class_color"]
    assert "chair" in p
    t, p, params = make_task_target("instance", gt, np.random.default_rng(0), instance_class="lamp")
    assert (t == 0).all() and params["instances"] == []
    assert (decode_target(t, params) == 0).all()


def test_bad_task_and_options():
    gt = _gt()
    with pytest.raises(ValueError, match="unknown task"):
        make_task_target("scene_flow", gt, np.random.default_rng(0))
    with pytest.raises(ValueError, match="ground truth has no 'flow'"):  # a task of encode now (docs/video.md)
        make_task_target("flow", gt, np.random.default_rng(0))
    with pytest.raises(ValueError, match="instance_variant"):
        make_task_target("instance", gt, np.random.default_rng(0), instance_variant="rainbow")
    with pytest.raises(ValueError, match="normals"):
        make_task_target("normals", {"depth": gt["depth"]}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="task"):
        decode_target(np.zeros((2, 2, 3), np.uint8), {"task": "scene_flow"})


def test_depth_valid_option_and_extra_gt_keys_ignored():
    gt = _gt()
    gt["valid"] = np.zeros((7, 11), bool)  # a dataset's "valid" (hit and not edge) must not mask the target
    t, _, params = make_task_target("depth", gt, np.random.default_rng(0))
    assert np.isfinite(decode_target(t, params)[1:]).all()
    mask = np.ones((7, 11), bool)
    mask[3, 4] = False
    t, _, params = make_task_target("depth", gt, np.random.default_rng(0), depth_valid=mask)
    assert np.isposinf(decode_target(t, params)[3, 4])


def test_empty_view_gives_black_targets_and_sensible_prompts():
    gt = _gt()
    gt["semantic"] = np.zeros((7, 11), np.int32)
    gt["instance"] = np.zeros((7, 11), np.int32)
    for task in ("semantic", "instance"):
        t, prompt, params = make_task_target(task, gt, np.random.default_rng(0))
        assert (t == 0).all() and any(n in prompt for n in gt["class_names"])
        assert (decode_target(t, params) == 0).all()
