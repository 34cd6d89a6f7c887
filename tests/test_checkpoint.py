"""Checkpoints: an exact round trip, atomic writes, and clear refusals of foreign files."""

import io
import json
import zipfile

import numpy as np
import pytest

import tinyprune.files
import tinyprune.train.checkpoint as ckpt
from tinyprune.nn.layers import Linear
from tinyprune.nn.model import Sequential, lenet5
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune.criteria import prune
from tinyprune.train.checkpoint import (
    CheckpointError,
    checkpoint_phase,
    load_checkpoint,
    save_checkpoint,
)
from tinyprune.train.resume import open_checkpoint

OPTIONS = {"seed": 0, "epochs": 3, "lr": 0.05, "sparsity": 0.5, "limit": None}
HISTORY = [{"epoch": 1, "train_loss": 0.1234567891234, "test_accuracy": 0.9876, "seconds": 1.5}]


def trained_state(seed=3, pruned="layerwise"):
    """A LeNet-5 and its optimizer with arbitrary weights, velocity and, unless pruned is
    None, masks made by that method (filter also masks biases)."""
    model = lenet5(seed)
    optimizer = MaskedSGD(model.params(), 0.05)
    rng = np.random.default_rng(seed)
    for v in optimizer.velocity.values():
        v[...] = rng.standard_normal(v.shape)
    if pruned is not None:
        prune(model, 0.5, pruned)
    return model, optimizer


def save(path, model, optimizer, phase="fine-tune", epoch=1, options=OPTIONS):
    save_checkpoint(
        path,
        model,
        optimizer,
        phase,
        epoch,
        HISTORY,
        options,
        results={"result": {"test_accuracy": 0.5}},
    )


@pytest.mark.parametrize("pruned", [None, "layerwise", "filter"])
def test_round_trip_is_exact(tmp_path, pruned):
    model, optimizer = trained_state(pruned=pruned)
    save(tmp_path / "c.npz", model, optimizer, epoch=2)

    fresh = lenet5(seed=99)
    loaded = load_checkpoint(tmp_path / "c.npz", fresh)
    assert (loaded.phase, loaded.epoch, loaded.history) == ("fine-tune", 2, HISTORY)
    assert loaded.options == OPTIONS and loaded.results == {"result": {"test_accuracy": 0.5}}
    for name, p in model.params().items():
        q = fresh.params()[name]
        np.testing.assert_array_equal(q.value, p.value)
        assert q.value.dtype == p.value.dtype
        np.testing.assert_array_equal(loaded.velocity[name], optimizer.velocity[name])
        assert (q.mask is None) == (p.mask is None)
        if p.mask is not None:
            np.testing.assert_array_equal(q.mask, p.mask)
    assert checkpoint_phase(tmp_path / "c.npz") == ("fine-tune", 2)


def test_meta_names_every_array_and_shape(tmp_path):
    model, optimizer = trained_state()
    save(tmp_path / "c.npz", model, optimizer)
    with np.load(tmp_path / "c.npz") as npz:
        meta = json.loads(npz["meta"].tobytes())
        shapes = {k: list(npz[k].shape) for k in npz.files if k != "meta"}
    assert meta["format_version"] == ckpt.FORMAT_VERSION and meta["model"] == "lenet5"
    assert meta["shapes"] == shapes
    assert meta["shapes"]["model.conv2.weight"] == [16, 6, 5, 5]
    assert meta["shapes"]["velocity.fc1.bias"] == [120] and "model.fc3.mask" in shapes


def test_interrupted_save_keeps_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    model, optimizer = trained_state()
    save(tmp_path / "c.npz", model, optimizer, epoch=1)

    def ctrl_c(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(tinyprune.files.os, "fsync", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path / "c.npz", model, optimizer, epoch=2)
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    assert checkpoint_phase(tmp_path / "c.npz") == ("fine-tune", 1)


def test_another_model_is_refused(tmp_path):
    model, optimizer = trained_state()
    save(tmp_path / "c.npz", model, optimizer)
    other = Sequential("mlp", {"fc1": Linear(784, 10, np.random.default_rng(0))})
    with pytest.raises(CheckpointError, match="holds a lenet5, not a mlp"):
        load_checkpoint(tmp_path / "c.npz", other)


def test_same_name_other_shapes_is_refused_naming_the_array(tmp_path):
    model, optimizer = trained_state()
    save(tmp_path / "c.npz", model, optimizer)
    other = lenet5()
    other.layers["fc3"] = Linear(84, 7, np.random.default_rng(0))
    with pytest.raises(
        CheckpointError, match=r"model.fc3.weight is \(10, 84\), expected \(7, 84\)"
    ):
        load_checkpoint(tmp_path / "c.npz", other)


def rewrite_meta(path, **changes):
    """Change fields of a checkpoint's meta in place."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta.update(changes)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_another_format_version_is_refused(tmp_path):
    model, optimizer = trained_state()
    save(tmp_path / "c.npz", model, optimizer)
    rewrite_meta(tmp_path / "c.npz", format_version=ckpt.FORMAT_VERSION + 1)
    with pytest.raises(
        CheckpointError,
        match=f"format {ckpt.FORMAT_VERSION + 1}, this tinyprune "
        f"reads format {ckpt.FORMAT_VERSION}",
    ):
        load_checkpoint(tmp_path / "c.npz", lenet5())
    assert checkpoint_phase(tmp_path / "c.npz") is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"lr": 0.1}, "lr=0.05 there, 0.1 now"),
        ({"epochs": 5, "seed": 1}, "seed=0 there, 1 now, epochs=3 there, 5 now"),
        ({"limit": 1000}, "limit=None there, 1000 now"),
        ({"schedule": "agp"}, "schedule=(unset) there, agp now"),
    ],
)
def test_other_options_are_refused_saying_what_differs(tmp_path, changes, message):
    model, optimizer = trained_state()
    save(tmp_path / "c.npz", model, optimizer)
    with pytest.raises(CheckpointError, match="other options") as error:
        open_checkpoint(tmp_path / "c.npz", lenet5(), {**OPTIONS, **changes})
    assert message in str(error.value) and "resume with the options" in str(error.value)


def test_missing_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint .* run without --resume"):
        load_checkpoint(tmp_path / "c.npz", lenet5())
    assert checkpoint_phase(tmp_path / "c.npz") is None


def damaged_copies(good: bytes):
    """Truncations, flipped bytes (the zip's CRCs catch them), garbage, a zip without meta,
    a meta without the fields."""
    for cut in (0, 10, len(good) // 3, len(good) - 30, len(good) - 1):
        yield good[:cut]
    for where in (len(good) // 2, len(good) - 100):
        yield good[:where] + bytes([good[where] ^ 0xFF]) + good[where + 1 :]
    yield b"PK\x03\x04 not really a zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("weights.npy", b"nothing")
    yield buffer.getvalue()
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(b'{"format_version": 1}', np.uint8))
    yield buffer.getvalue()


def test_damaged_files_give_a_checkpoint_error(tmp_path):
    model, optimizer = trained_state()
    save(tmp_path / "good.npz", model, optimizer)
    good = (tmp_path / "good.npz").read_bytes()
    for i, data in enumerate(damaged_copies(good)):
        path = tmp_path / f"bad{i}.npz"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match="not a readable tinyprune checkpoint"):
            load_checkpoint(path, lenet5())
        assert checkpoint_phase(path) is None
