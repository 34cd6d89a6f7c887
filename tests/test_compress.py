"""The compressed format: exact round trip, a file that shrinks with sparsity, int8 quantisation
within half a step, and clear refusals of files it did not write."""

import json
import zipfile

import numpy as np
import pytest

from tinyprune.deploy.compress import (
    CompressedFormatError,
    compressed_bytes,
    dense_float32_bytes,
    dequantize_int8,
    load_compressed,
    quantize_int8,
    read_compressed,
    save_compressed,
)
from tinyprune.nn.model import lenet5, lenet5_caffe
from tinyprune.prune.criteria import prune


def pruned_lenet5(sparsity: float, seed: int = 0):
    model = lenet5(seed)
    prune(model, sparsity)
    return model


def test_quantize_by_hand():
    q, scale = quantize_int8(np.array([0.5, -1.27, 0.004, 1.27], np.float32))
    assert scale == np.float32(0.01)
    np.testing.assert_array_equal(q, [50, -127, 0, 127])
    assert q.dtype == np.int8
    np.testing.assert_array_equal(dequantize_int8(q, scale), q.astype(np.float32) * scale)
    # all zeros: any scale will do, but not a division by zero
    q, scale = quantize_int8(np.zeros(3, np.float32))
    assert scale == 1 and not q.any()


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9])
def test_round_trip_is_exact(sparsity, tmp_path):
    model = pruned_lenet5(sparsity)
    save_compressed(model, tmp_path / "m.tpz")
    loaded = lenet5(seed=1)  # different weights to overwrite
    meta = load_compressed(tmp_path / "m.tpz", loaded)
    assert meta["model"] == "lenet5" and meta["quantize"] is None
    for (name, p), q in zip(model.params().items(), loaded.params().values()):
        np.testing.assert_array_equal(q.value, p.value, err_msg=name)
        assert q.value.dtype == np.float32
        if p.prunable:
            np.testing.assert_array_equal(q.mask, p.mask, err_msg=name)


def test_a_model_never_pruned_keeps_no_mask(tmp_path):
    model = lenet5()
    save_compressed(model, tmp_path / "m.tpz")
    loaded = lenet5(seed=1)
    load_compressed(tmp_path / "m.tpz", loaded)
    assert all(p.mask is None for p in loaded.prunable().values())
    np.testing.assert_array_equal(
        loaded.layers["fc1"].weight.value, model.layers["fc1"].weight.value
    )


def test_file_shrinks_with_sparsity_and_quantisation(tmp_path):
    dense = dense_float32_bytes(lenet5())
    assert dense == 4 * 61_706
    sizes = {
        (s, q): save_compressed(pruned_lenet5(s), tmp_path / f"{s}{q}.tpz", quantize=q)
        for s in (0.5, 0.75, 0.9, 0.95)
        for q in (False, True)
    }
    for q in (False, True):
        assert sizes[0.5, q] > sizes[0.75, q] > sizes[0.9, q] > sizes[0.95, q]
    assert all(sizes[s, True] < sizes[s, False] for s in (0.5, 0.75, 0.9, 0.95))
    assert sizes[0.9, False] * 5 <= dense  # the bar at 90%
    assert sizes[0.9, True] * 10 <= dense


def test_quantised_weights_are_within_half_a_step_and_masks_exact(tmp_path):
    model = pruned_lenet5(0.9)
    save_compressed(model, tmp_path / "q.tpz", quantize=True)
    meta, state = read_compressed(tmp_path / "q.tpz")
    assert meta["quantize"] == "int8"
    scales = {e["name"]: e["scale"] for e in meta["params"] if e["sparse"]}
    for name, p in model.prunable().items():
        layer = name.rsplit(".", 1)[0]
        np.testing.assert_array_equal(state[f"{layer}.mask"], p.mask)
        assert np.all(state[name][~p.mask] == 0)  # pruned weights stay exactly 0
        assert np.abs(state[name] - p.value).max() <= scales[name] / 2 * (1 + 1e-6)
        assert scales[name] == pytest.approx(np.abs(p.value).max() / 127)
    np.testing.assert_array_equal(state["fc3.bias"], model.layers["fc3"].bias.value)


def test_compressed_bytes_is_the_size_of_the_file(tmp_path):
    model = lenet5(0)
    prune(model, 0.8, "layerwise")
    for quantize in (False, True):
        size = save_compressed(model, tmp_path / "m.tpz", quantize=quantize)
        assert compressed_bytes(model, quantize) == size


def test_write_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "m.tpz"
    path.write_text("an older file")
    save_compressed(pruned_lenet5(0.5), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.tpz"]  # no temporary file left
    load_compressed(path, lenet5())


def test_refuses_files_it_did_not_write(tmp_path):
    junk = tmp_path / "junk.tpz"
    junk.write_bytes(b"\x93NUMPY not really")
    with pytest.raises(
        CompressedFormatError, match="not a tinyprune compressed model: it is not an .npz"
    ):
        read_compressed(junk)
    model = pruned_lenet5(0.5)
    model.save(tmp_path / "pruned.npz", with_masks=True)
    with pytest.raises(CompressedFormatError, match="no 'meta' record.*Sequential.load"):
        read_compressed(tmp_path / "pruned.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_compressed(tmp_path / "missing.tpz")


def test_refuses_another_version_or_model(tmp_path):
    path = tmp_path / "m.tpz"
    save_compressed(pruned_lenet5(0.5), path)
    with pytest.raises(CompressedFormatError, match="holds a 'lenet5' model, not a 'lenet5-caffe'"):
        load_compressed(path, lenet5_caffe())
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    meta["version"] = 99
    arrays["meta"] = np.array(json.dumps(meta))
    with open(tmp_path / "v99.tpz", "wb") as f:
        np.savez_compressed(f, **arrays)
    with pytest.raises(
        CompressedFormatError, match="format version 99, this tinyprune reads version 1"
    ):
        read_compressed(tmp_path / "v99.tpz")
    assert zipfile.is_zipfile(path)


def test_refuses_a_damaged_file(tmp_path):
    path = tmp_path / "m.tpz"
    save_compressed(pruned_lenet5(0.5), path)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["fc1.weight.values"] = arrays["fc1.weight.values"][:-1]
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    with pytest.raises(
        CompressedFormatError, match="damaged: fc1.weight has 24000 kept weights but 23999 values"
    ):
        read_compressed(path)
