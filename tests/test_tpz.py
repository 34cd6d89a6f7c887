"""The .tpz format: encode then decode is the identity (random sparse layers of every size,
empty and full included), each coded field takes the smaller coder, the file shrinks with
sparsity and int8, version 2 and 3 files still load (version 1 is refused), files it did not
write or damaged ones are refused with a clear error, and the size table adds up to the file."""

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.deploy import tpz
from tinyprune.deploy.bitstream import BitReader, BitWriter
from tinyprune.deploy.size_report import format_size_table, size_rows
from tinyprune.deploy.weight_sharing import SharedWeight, parse_bits, share_weights, to_half
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


def shared_by_hand(counts: list[int], seed: int = 0) -> tuple[Sequential, dict]:
    """A 1 x n layer, every weight kept, shared: counts[i] of its weights hold value i + 1."""
    model = one_layer(1, sum(counts), 1.0, seed)
    index = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    shared = SharedWeight(np.arange(1, len(counts) + 1, dtype=np.float32), index[None])
    model.layers["fc"].weight.value[...] = shared.weight()
    return model, {"fc.weight": shared}


# 900 and 100 of 2 values: 0.47 bits of information each, which Huffman codes in 1 bit;
# 128, 64, ..., 1 of 8: probabilities powers of 1/2, Huffman's own, and its table smaller
@pytest.mark.parametrize(
    "counts, coder", [([900, 100], "arith"), ([128, 64, 32, 16, 8, 4, 2, 1], "huffman")]
)
def test_each_field_takes_the_smaller_coder_and_decodes(counts, coder):
    model, shared = shared_by_hand(counts)
    data, report = tpz.encode(model, "shared", shared)
    index = shared["fc.weight"].index.ravel().astype(np.int64)
    huff, arith = tpz.costs(index, len(counts))
    assert report[0]["value_coder"] == coder and (arith < huff) == (coder == "arith")
    assert report[0]["value_huffman"] == pytest.approx(huff / len(index))
    assert report[0]["value_arith"] == pytest.approx(arith / len(index))
    assert len(data) == sum(r["bytes"] for r in report)
    meta, state, decoded = tpz.decode(data)
    assert_same_state(model, state)
    np.testing.assert_array_equal(decoded["fc.weight"].index, shared["fc.weight"].index)


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_costs_are_the_bits_each_coder_writes(alphabet, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(alphabet, 0.3))
    symbols = rng.choice(alphabet, rng.integers(0, 2000), p=p)
    for arith, bits in enumerate(tpz.costs(symbols, alphabet)):
        out = BitWriter()
        tpz.write_coded(out, symbols, alphabet, bool(arith))
        out.bits(np.ones(7, np.uint8))  # what follows a field must not disturb it
        assert len(out) == bits + 7
        reader = BitReader(out.bytes())
        np.testing.assert_array_equal(tpz.read_coded(reader, len(symbols), alphabet, 3), symbols)
        assert reader.position == bits


# one_layer(4, 30, 0.1, 0) with its weights shared in 2 bits, as tinyprune wrote it before the
# coder bit (version 2, every field Huffman-coded), 224 bytes
VERSION_2_FILE = bytes.fromhex(
    "54505a32a400000078da4d8e4b0e83300c44efe2755af5c32a5741a83260202289a3385021c4ddebb26267cf"
    "8ce6cd0e03e780052c1417b7949748b78e43ca24423d1858298be308f66520704f5ea3ac218f1b65f513660c"
    "02b6de2162207587eefe25374e455d9930a95657e6fd68b40065d6565bf24206664a0a7e6a71627145297262"
    "464c1fd942cb5eff4a8515fd427affebf2b9aad3252df3acfe61aee4d6a15cb9cdd11c3fab454be818861013"
    "46001b8945857c237dc77a74fc707b42abba7c47b056318449f76a2f5a36e02f341fd04f8b91090f2e89d840"
    "c765bef8"
)


# one_layer(4, 30, 0.3, 1) with its weights shared in 2 bits, as tinyprune wrote it with a
# deflated JSON header (version 3, 2026-12-03), 237 bytes
VERSION_3_FILE = bytes.fromhex(
    "54505a33a700000078da4d8ed10a83300c45ff25cfdd98288cf5574446d4a8c5d694a66e88f8ef8b7bf231b9"
    "9773ee0e03a780192c64b76c31ad0bdd3a0e319108f560e043491c2f604b03817bf25a652d79dc28691e3161"
    "10b0f50e0b06d274e8ee5f72e394359509a3feeaca948f460128b3526d4e2b199829aab87c2a84c565b528a7"
    "3030627ccb165af6e75dbc7404fa95f43879e93fabd3292df30cb63acc55dd3a94abb8399ae307f2b34c2492"
    "7229568786cc78bd47d65b2b6f15f066448debb9d539e961bee9f038ee1492468345586c4068376c327a02cd"
    "487bfc0c6a7b52b9897a93cd9cbd0a300d"
)


@pytest.mark.parametrize(
    "data, density, seed", [(VERSION_2_FILE, 0.1, 0), (VERSION_3_FILE, 0.3, 1)], ids=["v2", "v3"]
)
def test_older_versions_still_decode_and_version_4_is_smaller(data, density, seed):
    model = one_layer(4, 30, density, seed)
    shared = share_weights(model, {"fc": 2})
    meta, state, decoded = tpz.decode(data)
    assert meta["version"] == data[3] - ord("0") and meta["model"] == "one-layer"
    assert_same_state(model, state)
    np.testing.assert_array_equal(decoded["fc.weight"].index, shared["fc.weight"].index)
    new, _ = tpz.encode(model, "shared", shared)
    assert new[:4] == b"TPZ4" and tpz.decode(new)[0]["version"] == 4  # what we write now
    assert len(new) < len(data) - 50  # the same payload, a header of bits, not JSON


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
    table = format_size_table(rows).splitlines()
    assert f"{size:,}" in table[-1] and "Huffman" in table[1] and "arith" in table[1]
    for r, line in zip(rows[:5], table[2:]):  # the file holds the smaller coder, marked *
        coder = r["value_coder"]
        assert r[f"value_{coder}"] == min(r["value_huffman"], r["value_arith"])
        assert f"{r[f'value_{coder}']:7.2f}*" in line


def test_a_model_never_pruned_keeps_no_mask(tmp_path):
    model = lenet5()
    tpz.save(model, tmp_path / "m.tpz")
    meta, state, _ = tpz.read(tmp_path / "m.tpz")
    assert not any(k.endswith(".mask") for k in state)
    np.testing.assert_array_equal(state["fc1.weight"], model.layers["fc1"].weight.value)


def test_version_1_files_are_refused_with_what_to_do(tmp_path):
    with open(tmp_path / "old.tpz", "wb") as f:  # version 1 was an .npz
        np.savez_compressed(f, meta=np.array("{}"))
    with pytest.raises(tpz.CompressedFormatError, match="version 1, an .npz, is no longer read"):
        tpz.read(tmp_path / "old.tpz")


def test_the_header_is_a_few_bytes_and_exact_floats_take_16_bits():
    model = one_layer(4, 30, 0.5, 0)
    shared = share_weights(model, {"fc": 3})
    full, report = tpz.encode(model, "shared", shared)
    assert (
        report[-1]["name"] == "header" and report[-1]["bytes"] < 32
    )  # magic, CRC, names "one-layer", "fc"
    shared["fc.weight"].codebook = to_half(shared["fc.weight"].codebook)
    model.layers["fc"].weight.value[...] = shared["fc.weight"].weight()
    model.layers["fc"].bias.value[...] = to_half(model.layers["fc"].bias.value)
    half, _ = tpz.encode(model, "shared", shared)
    meta, state, _ = tpz.decode(half)
    assert all(e.get("half") for e in meta["params"]) and len(full) - len(half) >= 2 * (8 + 4) - 1
    assert_same_state(model, state)


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
    with pytest.raises(tpz.CompressedFormatError, match="junk.tpz is not a tinyprune compressed"):
        tpz.read(junk)
    model = lenet5()
    prune(model, 0.5)
    model.save(tmp_path / "pruned.npz", with_masks=True)
    with pytest.raises(tpz.CompressedFormatError, match="pruned.npz is not a tinyprune compressed"):
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
    with pytest.raises(tpz.CompressedFormatError, match="not a tinyprune compressed model"):
        tpz.read(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tpz.read(tmp_path / "missing.tpz")


@pytest.mark.parametrize("counts", [[900, 100], [128, 64, 32, 16, 8, 4, 2, 1]])
def test_a_damaged_payload_with_a_matching_checksum_is_refused(counts):
    """Past the checksum, the decoder's own checks, with an arithmetic-coded and a
    Huffman-coded field: a stream a byte short is refused; any one bit flipped (the coder bit
    included) is refused with the format's error or decodes (then only the checksum knows)."""
    model, shared = shared_by_hand(counts)
    data, _ = tpz.encode(model, "shared", shared)

    def signed(body: bytes) -> bytes:
        return body + struct.pack("<I", zlib.crc32(body))

    with pytest.raises(tpz.CompressedFormatError, match="damaged or truncated"):
        tpz.decode(signed(data[:-5]))  # the payload's last byte dropped
    refused = 0
    for bit in range(8 * 4, 8 * (len(data) - 4)):  # the header's bits and the payload's
        damaged = bytearray(data[:-4])
        damaged[bit // 8] ^= 0x80 >> (bit % 8)
        try:
            tpz.decode(signed(bytes(damaged)))
        except tpz.CompressedFormatError as error:
            assert "damaged or truncated" in str(error)
            refused += 1
    assert refused > 0


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
