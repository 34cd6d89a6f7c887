"""The ONNX export (deploy/to_onnx.py) run by ONNX Runtime and held to model.forward.

Without onnx or onnxruntime these tests skip, saying what to install; with CI=true they fail
instead, since CI must run them."""

from functools import partial

import numpy as np
import pytest
from helpers import skip_without

from tinyprune.data.datasets import FASHION_MNIST, MNIST
from tinyprune.data.mnist import Mnist, load_mnist
from tinyprune.data.transforms import to_input
from tinyprune.nn.layers import Conv2d, Flatten, Layer, Linear, MaxPool2d, ReLU
from tinyprune.nn.model import Sequential, lenet5, lenet5_caffe, lenet_300_100
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune.criteria import prune
from tinyprune.train.loop import evaluate, fit

skip_without("onnx", "onnxruntime")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from tinyprune.deploy import to_onnx  # noqa: E402  (imports onnx: after the check)


def tiny(seed: int = 0) -> Sequential:
    """Every layer type, small: (N, 1, 28, 28) -> (N, 10)."""
    rng = np.random.default_rng(seed)
    return Sequential(
        "tiny",
        {
            "conv": Conv2d(1, 2, 3, padding=1, rng=rng),  # -> (N, 2, 28, 28)
            "pool": MaxPool2d(),  # -> (N, 2, 14, 14)
            "relu": ReLU(),
            "flatten": Flatten(),  # -> (N, 392)
            "fc": Linear(392, 10, rng),
        },
    )


def random_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8)


def run_onnx(path, images: np.ndarray) -> np.ndarray:
    """ONNX Runtime's logits (N, 10) for uint8 images (N, 28, 28), given as raw pixels."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"pixels": images[:, None].astype(np.float32)})[0]


MODELS = [tiny, lenet5, lenet5_caffe, lenet_300_100]
FUSED = [partial(lenet5, fused=True), partial(lenet5_caffe, fused=True)]


# every model with MNIST's normalisation, and one with Fashion-MNIST's
@pytest.mark.parametrize(
    "make, dataset", [(m, MNIST) for m in MODELS + FUSED] + [(tiny, FASHION_MNIST)]
)
def test_onnx_runtime_gives_our_logits(make, dataset, tmp_path):
    model = make(seed=1)
    prune(model, 0.6)
    path = to_onnx.export_onnx(model, tmp_path / "model.onnx", dataset)
    for n in (1, 5):  # the batch dimension is free
        images = random_images(n, seed=n)
        ours = model.forward(to_input(images, dataset))
        theirs = run_onnx(path, images)
        assert theirs.shape == ours.shape == (n, 10)
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)


def test_normalisation_nodes_give_to_inputs_bits_for_every_pixel_value():
    graph = to_onnx.to_onnx(lenet5())
    graph.graph.output.append(
        onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 1, 28, 28])
    )
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    images = np.resize(np.arange(256, dtype=np.uint8), (1, 28, 28))  # 0..255, then again
    normalised = session.run(["input"], {"pixels": images[:, None].astype(np.float32)})[0]
    assert normalised.tobytes() == to_input(images).tobytes()


def test_pruned_weights_are_exactly_zero_in_the_file(tmp_path):
    model = lenet5(seed=2)
    prune(model, 0.7)
    for p in model.prunable().values():  # weights the mask hides: the file must not show them
        p.value[~p.mask] = -1.5
    path = to_onnx.export_onnx(model, tmp_path / "lenet5.onnx")

    saved = onnx.load(str(path))
    onnx.checker.check_model(saved, full_check=True)
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in saved.graph.initializer}
    for name, p in model.params().items():
        array = arrays[name]
        assert array.dtype == np.float32 and array.shape == p.value.shape
        if p.prunable:
            assert not array[~p.mask].view(np.uint32).any()  # +0.0, every bit
            np.testing.assert_array_equal(array[p.mask], p.value[p.mask])
        else:
            np.testing.assert_array_equal(array, p.value)
    assert saved.opset_import[0].version == to_onnx.OPSET
    assert "lenet5" in saved.doc_string and "MNIST" in saved.doc_string
    assert [i.name for i in saved.graph.input] == ["pixels"]
    assert [o.name for o in saved.graph.output] == ["logits"]


def test_unknown_layer_is_refused_and_nothing_written(tmp_path):
    class Dropout(Layer):
        pass

    model = tiny()
    model.layers = {**model.layers, "drop": Dropout()}
    with pytest.raises(ValueError, match=r"'drop' \(Dropout\).*Conv2d, MaxPool2d"):
        to_onnx.export_onnx(model, tmp_path / "tiny.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_pruned_lenet5_on_all_mnist_test_images(tmp_path):
    """LeNet-5 after 2 epochs on 6,000 real training images, pruned 50%: ONNX Runtime gives our
    class for each of the 10,000 test images, and logits within 1e-4 of ours."""
    data = load_mnist()
    subset = Mnist(  # 100 test images: fit evaluates on them after each epoch, quickly
        data.train_images[:6000],
        data.train_labels[:6000],
        data.test_images[:100],
        data.test_labels[:100],
    )
    model = lenet5(seed=0)
    fit(model, subset, MaskedSGD(model.params(), 0.05, 0.9, 5e-4), 2, batch_size=64, seed=0)
    prune(model, 0.5)
    path = to_onnx.export_onnx(model, tmp_path / "lenet5.onnx")

    ours = np.concatenate(
        [model.forward(to_input(data.test_images[i : i + 1000])) for i in range(0, 10_000, 1000)]
    )
    theirs = run_onnx(path, data.test_images)
    difference = float(np.abs(theirs - ours).max())
    accuracy = float((theirs.argmax(1) == data.test_labels).mean())
    print(f"max |logit difference| {difference:.3g}, ONNX Runtime's accuracy {accuracy:.4f}")
    assert theirs.shape == (10_000, 10)
    np.testing.assert_array_equal(theirs.argmax(1), ours.argmax(1))
    assert difference <= 1e-4
    assert accuracy == evaluate(model, data.test_images, data.test_labels)[1] > 0.8
