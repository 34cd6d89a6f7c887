"""The .tpz format: encode then decode is the identity (random sparse layers of every size,
empty and full included), the file shrinks with sparsity and int8, version 1 files still load,
files it did not write or damaged ones are refused with a clear error, and the size table adds
up to the file."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.deploy import tpz
from tinyprune.deploy.size_report import format_size_table, size_rows
from tinyprune.deploy.weight_sharing import parse_bits, share_weights
from tinyprune.nn.layers import Linear
from tinyprune.nn.model import Sequential, lenet5, lenet5_caffe
from tinyprune.prune.criteria import prune


def one_layer(rows: int, cols: int, density: float, seed: int) -> Sequential:
    rng = np.random.default_rng(seed)
    model = Sequential("one-layer", {"fc": Linear(cols, rows, rng)})
    p = model.layers["fc"].weight
    p.mask = rng.random(p.value.shape) < density
    p.value *= p.mask
    return model


def assert_same_state(model: Sequential, state: dict) -> None:
    expected = model.state(with_masks=True)
    assert set(state) == set(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(state[name], array, err_msg=name)
        assert state[name].shape == array.shape


@settings(deadline=None, max_examples=100)
@given(
    st.integers(1, 40),
    st.integers(1, 60),
    st.sampled_from([0.0, 0.01, 0.3, 0.9, 1.0]),
    st.integers(1, 8),
    st.integers(0, 2**32 - 1),
)
def test_shared_round_trip_is_the_identity(rows, cols, density, bits, seed):
    model = one_layer(rows, cols, density, seed)
    shared = share_weights(model, {"fc": bits})
    data, _ = tpz.encode(model, "shared", shared)
    meta, state, decoded = tpz.decode(data)
    assert_same_state(model, state)
    np.testing.assert_array_equal(decoded["fc.weight"].index, shared["fc.weight"].index)
    np.testing.assert_array_equal(decoded["fc.weight"].codebook, shared["fc.weight"].codebook)
    assert len(decoded["fc.weight"].codebook) <= 2**bits


@settings(deadline=None, max_examples=50)
@given(
    st.integers(1, 40),
    st.integers(1, 60),
    st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    st.integers(0, 2**32 - 1),
)
def test_float32_and_int8_round_trips(rows, cols, density, seed):
    model = one_layer(rows, cols, density, seed)
    meta, state, _ = tpz.decode(tpz.encode(model, "float32")[0])
    assert_same_state(model, state)
    _, int8, _ = tpz.decode(tpz.encode(model, "int8")[0])
    w = model.layers["fc"].weight.value
    step = np.abs(w).max(axis=1, keepdims=True) / 127  # one scale per output channel
    assert np.all(np.abs(int8["fc.weight"] - w) <= step / 2 * (1 + 1e-5))
    np.testing.assert_array_equal(int8["fc.mask"], model.layers["fc"].weight.mask)


def shared_lenet5(tmp_path, sparsity=0.5):
    model = lenet5()
    prune(model, sparsity)
    shared = share_weights(model, parse_bits("conv=8,fc=5", model))
    report = tpz.save(model, tmp_path / "m.tpz", "shared", shared)
    return model, shared, report


def test_lenet5_file_decodes_to_the_model_and_the_table_adds_up(tmp_path):
    model, _, report = shared_lenet5(tmp_path)
    twin = tpz.decoded_model(model, tmp_path / "m.tpz")
    assert_same_state(model, twin.state(with_masks=True))
    rows = size_rows(report, model)
    size = (tmp_path / "m.tpz").stat().st_size
    assert rows[-1]["name"] == "total" and rows[-1]["bytes"] == size
    assert rows[-1]["kept"] == 30_735 and rows[-1]["dense_bytes"] == 4 * 61_706
    assert [r["name"] for r in rows] == ["conv1", "conv2", "fc1", "fc2", "fc3", "header", "total"]
    assert f"{size:,}" in format_size_table(rows).splitlines()[-1]
    # Huffman never costs more than the fixed-width indices it replaces
    assert all(r["value_bits_coded"] <= r["value_bits"] for r in rows if "value_bits" in r)


def test_a_model_never_pruned_keeps_no_mask(tmp_path):
    model = lenet5()
    tpz.save(model, tmp_path / "m.tpz")
    meta, state, _ = tpz.read(tmp_path / "m.tpz")
    assert not any(k.endswith(".mask") for k in state)
    np.testing.assert_array_equal(state["fc1.weight"], model.layers["fc1"].weight.value)


def write_v1(model: Sequential, path, quantize: bool = False) -> None:
    """A version 1 file, laid out as tpz_v1.py documents it (tinyprune no longer writes them)."""
    arrays, params = {}, []
    for name, p in model.params().items():
        entry = {"name": name, "shape": list(p.value.shape), "sparse": p.prunable}
        if p.prunable:
            kept = p.mask if p.mask is not None else p.value != 0
            entry["masked"] = p.mask is not None
            arrays[f"{name}.bits"] = np.packbits(kept.ravel())
            values = p.value[kept]
            if quantize:
                entry["scale"] = float(np.float32(np.abs(values).max() / 127))
                values = np.rint(values / entry["scale"]).astype(np.int8)
            arrays[f"{name}.values"] = values
        else:
            arrays[name] = p.value
        params.append(entry)
    meta = {"format": "tinyprune-compressed", "version": 1, "model": model.name}
    meta.update(quantize="int8" if quantize else None, params=params)
    with open(path, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)


def test_version_1_files_still_load(tmp_path):
    model = lenet5()
    prune(model, 0.7)
    write_v1(model, tmp_path / "old.tpz")
    meta, state, shared = tpz.read(tmp_path / "old.tpz")
    assert meta["version"] == 1 and shared == {}
    assert_same_state(model, state)
    write_v1(model, tmp_path / "old-int8.tpz", quantize=True)
    _, int8, _ = tpz.read(tmp_path / "old-int8.tpz")
    for name, p in model.prunable().items():
        step = np.abs(p.value).max() / 127
        assert np.abs(int8[name] - p.value).max() <= step / 2 * (1 + 1e-5)
        assert np.all(int8[name][~p.mask] == 0)
    arrays = dict(np.load(tmp_path / "old.tpz"))
    arrays["fc1.weight.values"] = arrays["fc1.weight.values"][:-1]
    with open(tmp_path / "damaged.tpz", "wb") as f:
        np.savez_compressed(f, **arrays)
    with pytest.raises(
        tpz.CompressedFormatError, match="damaged: fc1.weight has 14400 kept weights but 14399"
    ):
        tpz.read(tmp_path / "damaged.tpz")


def test_file_shrinks_with_sparsity_and_int8(tmp_path):
    dense = tpz.dense_float32_bytes(lenet5())
    assert dense == 4 * 61_706
    sizes = {}
    for s in (0.5, 0.75, 0.9, 0.95):
        model = lenet5()
        prune(model, s)
        sizes[s] = tpz.write_compressed(model, tmp_path, f"m{s}")
        for key, values in (("compressed", False), ("compressed_int8", True)):
            assert tpz.compressed_bytes(model, values) == sizes[s][key]  # the file's own size
        meta, int8, _ = tpz.read(tmp_path / f"m{s}-int8.tpz")
        coded = {e["name"]: e.get("coded", False) for e in meta["params"] if "kept" in e}
        assert coded["fc1.weight"] and not coded["conv1.weight"]  # Huffman pays for fc1's
        for name, p in model.prunable().items():  # within half a step of each channel's scale
            step = np.abs(p.value).reshape(len(p.value), -1).max(axis=1) / 127
            error = np.abs(int8[name] - p.value).reshape(len(p.value), -1)
            assert np.all(error <= step[:, None] / 2 * (1 + 1e-5))
    for key in ("compressed", "compressed_int8"):
        assert sizes[0.5][key] > sizes[0.75][key] > sizes[0.9][key] > sizes[0.95][key]
    assert all(s["compressed_int8"] < s["compressed"] for s in sizes.values())
    assert sizes[0.9]["compressed"] * 5 <= dense  # the bar at 90%
    assert sizes[0.9]["compressed_int8"] * 10 <= dense


def test_refuses_files_it_did_not_write_or_for_another_model(tmp_path):
    junk = tmp_path / "junk.tpz"
    junk.write_bytes(b"\x93NUMPY not really")
    with pytest.raises(tpz.CompressedFormatError, match="junk.tpz is not a version 2"):
        tpz.read(junk)
    model = lenet5()
    prune(model, 0.5)
    model.save(tmp_path / "pruned.npz", with_masks=True)
    with pytest.raises(tpz.CompressedFormatError, match="pruned.npz is not a tinyprune .tpz"):
        tpz.read(tmp_path / "pruned.npz")
    path = tmp_path / "m.tpz"
    path.write_text("an older file")
    tpz.save(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.tpz", "m.tpz", "pruned.npz"]
    with pytest.raises(tpz.CompressedFormatError, match="holds a 'lenet5' model, not a 'lenet5-"):
        tpz.decoded_model(lenet5_caffe(), path)


def test_damaged_or_truncated_files_are_refused(tmp_path):
    model, _, _ = shared_lenet5(tmp_path, 0.9)
    data = (tmp_path / "m.tpz").read_bytes()
    path = tmp_path / "bad.tpz"
    for cut in (0, 3, 11, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(tpz.CompressedFormatError, match="bad.tpz (is not|is damaged)"):
            tpz.read(path)
    for where in (5, 40, len(data) // 2, len(data) - 2):
        damaged = bytearray(data)
        damaged[where] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(tpz.CompressedFormatError, match="damaged or truncated"):
            tpz.read(path)
    path.write_bytes(b"hello, world")
    with pytest.raises(tpz.CompressedFormatError, match="not a version 2"):
        tpz.read(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tpz.read(tmp_path / "missing.tpz")


def test_a_damaged_payload_with_a_matching_checksum_is_refused():
    """Past the checksum, the decoder's own checks: here the stream is one bit short."""
    import struct
    import zlib

    model = one_layer(10, 10, 0.5, 0)
    data, _ = tpz.encode(model, "shared", share_weights(model, {"fc": 3}))
    body = data[:-5]  # drop the payload's last byte, then re-sign it
    with pytest.raises(tpz.CompressedFormatError, match="damaged or truncated"):
        tpz.decode(body + struct.pack("<I", zlib.crc32(body)))


def test_refuses_weights_that_are_not_their_shared_values():
    model = one_layer(5, 5, 1.0, 0)
    shared = share_weights(model, {"fc": 1})
    model.layers["fc"].weight.value[0, 0] += 1
    with pytest.raises(ValueError, match="not codebook\\[index\\]"):
        tpz.encode(model, "shared", shared)


def test_shared_biases_round_trip_and_train(tmp_path):
    from tinyprune.deploy.weight_sharing import SharedSGD

    model = lenet5()
    prune(model, 0.8)
    shared = share_weights(model, parse_bits("4", model), bias_bits=2)
    assert all(len(np.unique(model.params()[n].value)) <= 4 for n in shared if "bias" in n)
    optimizer = SharedSGD(model.params(), shared, lr=1e-3)
    for p in model.params().values():
        p.grad[...] = 0.01
    optimizer.step()
    assert len(np.unique(model.layers["fc1"].bias.value)) <= 4
    tpz.save(model, tmp_path / "m.tpz", "shared", shared)
    assert_same_state(model, tpz.decoded_model(model, tmp_path / "m.tpz").state(with_masks=True))
