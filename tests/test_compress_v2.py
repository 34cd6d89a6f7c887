"""Format version 2: encode then decode is the identity (random sparse layers of every size,
empty and full included), version 1 files still load, damaged or truncated files are refused
with a clear error, and the size table adds up to the file."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.deploy import compress_v2
from tinyprune.deploy.compress import CompressedFormatError, read_compressed, save_compressed
from tinyprune.deploy.size_report import format_size_table, size_rows
from tinyprune.deploy.weight_sharing import parse_bits, share_weights
from tinyprune.nn.layers import Linear
from tinyprune.nn.model import Sequential, lenet5
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
    data, _ = compress_v2.encode(model, "shared", shared)
    meta, state, decoded = compress_v2.decode(data)
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
    meta, state, _ = compress_v2.decode(compress_v2.encode(model, "float32")[0])
    assert_same_state(model, state)
    _, int8, _ = compress_v2.decode(compress_v2.encode(model, "int8")[0])
    w = model.layers["fc"].weight.value
    step = np.abs(w).max(initial=0) / 127
    assert np.all(np.abs(int8["fc.weight"] - w) <= step / 2 * (1 + 1e-5))
    np.testing.assert_array_equal(int8["fc.mask"], model.layers["fc"].weight.mask)


def shared_lenet5(tmp_path, sparsity=0.5):
    model = lenet5()
    prune(model, sparsity)
    shared = share_weights(model, parse_bits("conv=8,fc=5", model))
    report = compress_v2.save(model, tmp_path / "m.tpz", "shared", shared)
    return model, shared, report


def test_lenet5_file_decodes_to_the_model_and_the_table_adds_up(tmp_path):
    model, _, report = shared_lenet5(tmp_path)
    twin = compress_v2.decoded_model(model, tmp_path / "m.tpz")
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
    compress_v2.save(model, tmp_path / "m.tpz")
    meta, state, _ = compress_v2.read(tmp_path / "m.tpz")
    assert not any(k.endswith(".mask") for k in state)
    np.testing.assert_array_equal(state["fc1.weight"], model.layers["fc1"].weight.value)


def test_version_1_files_still_load(tmp_path):
    model = lenet5()
    prune(model, 0.7)
    save_compressed(model, tmp_path / "old.tpz")
    meta, state, shared = compress_v2.read(tmp_path / "old.tpz")
    assert meta["version"] == 1 and shared == {}
    assert_same_state(model, state)
    compress_v2.save(model, tmp_path / "new.tpz")
    with pytest.raises(CompressedFormatError, match="version 2 file: read it with"):
        read_compressed(tmp_path / "new.tpz")


def test_damaged_or_truncated_files_are_refused(tmp_path):
    model, _, _ = shared_lenet5(tmp_path, 0.9)
    data = (tmp_path / "m.tpz").read_bytes()
    path = tmp_path / "bad.tpz"
    for cut in (0, 3, 11, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(CompressedFormatError, match="bad.tpz (is not|is damaged)"):
            compress_v2.read(path)
    for where in (5, 40, len(data) // 2, len(data) - 2):
        damaged = bytearray(data)
        damaged[where] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(CompressedFormatError, match="damaged or truncated"):
            compress_v2.read(path)
    path.write_bytes(b"hello, world")
    with pytest.raises(CompressedFormatError, match="not a version 2"):
        compress_v2.read(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        compress_v2.read(tmp_path / "missing.tpz")


def test_a_damaged_payload_with_a_matching_checksum_is_refused():
    """Past the checksum, the decoder's own checks: here the stream is one bit short."""
    import struct
    import zlib

    model = one_layer(10, 10, 0.5, 0)
    data, _ = compress_v2.encode(model, "shared", share_weights(model, {"fc": 3}))
    body = data[:-5]  # drop the payload's last byte, then re-sign it
    with pytest.raises(CompressedFormatError, match="damaged or truncated"):
        compress_v2.decode(body + struct.pack("<I", zlib.crc32(body)))


def test_refuses_weights_that_are_not_their_shared_values():
    model = one_layer(5, 5, 1.0, 0)
    shared = share_weights(model, {"fc": 1})
    model.layers["fc"].weight.value[0, 0] += 1
    with pytest.raises(ValueError, match="not codebook\\[index\\]"):
        compress_v2.encode(model, "shared", shared)


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
    compress_v2.save(model, tmp_path / "m.tpz", "shared", shared)
    assert_same_state(
        model, compress_v2.decoded_model(model, tmp_path / "m.tpz").state(with_masks=True)
    )
