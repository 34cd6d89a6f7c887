# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # tinyprune, one step at a time
#
# From one test image to a pruned model running as C. Every number below is computed here,
# by tinyprune's own code; nothing is hidden in a framework. Run the cells top to bottom:
# the whole notebook takes a few minutes on a laptop CPU, because it trains on a subset.
#
# 1. One test image through every layer
# 2. One gradient by hand, checked by finite differences
# 3. A few steps of SGD
# 4. A short training, then a magnitude mask and the weights it removes
# 5. Accuracy before and after pruning, and after fine-tuning
# 6. The compressed model and the exported C make the same prediction
# 7. Stepping through the kernels in a debugger
#
# The data: MNIST from `$TINYPRUNE_DATA_DIR` (else `data/mnist`, downloaded there if
# missing). Set `DATASET = "fashion-mnist"` below to do it all on clothes instead of digits.

# %%
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tinyprune.data.mnist import load_mnist
from tinyprune.data.transforms import to_input
from tinyprune.deploy.c_export import export_c
from tinyprune.deploy.tpz import decoded_model, write_compressed
from tinyprune.nn.layers import Conv2d
from tinyprune.nn.loss import SoftmaxCrossEntropy
from tinyprune.nn.model import lenet5
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune.criteria import prune
from tinyprune.train.loop import evaluate, fit

DATASET = os.environ.get("WALKTHROUGH_DATASET", "mnist")
np.set_printoptions(precision=4, suppress=True, linewidth=100)
data = load_mnist(dataset=DATASET)
classes = data.dataset.classes
print(
    f"{data.dataset.title}: train {data.train_images.shape} {data.train_images.dtype}, "
    f"test {data.test_images.shape}; pixels {data.train_images.min()}..{data.train_images.max()}"
)

# %% [markdown]
# ## 1. One test image through every layer
#
# The network is a `Sequential` of layers (tinyprune/nn/model.py). Each layer's `forward`
# takes the output of the one before. The image is first scaled to [0, 1] and normalised by
# the training set's mean and standard deviation (`to_input`). Here we call the layers one by
# one to see each output, as `model.forward` does. `lenet5(fused=True)` would instead name each
# convolution, its pooling and its ReLU as one layer (`ConvPool`, tinyprune/nn/conv_pool.py):
# the same numbers, faster, and fewer layers to look at.

# %%
model = lenet5(seed=0)
image, label = data.test_images[0], int(data.test_labels[0])
for row in image[4:26]:  # the middle rows of the picture, as characters: dark = ink
    print("".join(" .:-=+*#%@"[int(v) * 10 // 256] * 2 for v in row))
print(f"label: {label} ({classes[label]})")

x = to_input(image[None], data.dataset)  # (1, 1, 28, 28) float32
print(f"{'input':8} {str(x.shape):18} mean {x.mean():+.3f}, std {x.std():.3f}")
for name, layer in model.layers.items():
    x = layer.forward(x)
    print(f"{name:8} {str(x.shape):18} first values {x.ravel()[:4]}")

# %% [markdown]
# The last output holds 10 *logits*, one per class. Softmax turns them into probabilities.
# The weights are random so far, so the network has no idea yet: every class gets about 10%.

# %%
logits = x[0]
probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
print("probabilities:", probs)
print(f"predicted {probs.argmax()} ({classes[probs.argmax()]}), true {label}")

# %% [markdown]
# ## 2. One gradient by hand
#
# The loss is the cross-entropy, -log p[label]. For the last layer, fc3, logits z = W h + b
# where h is what fc3 received. Then dL/dz = p - onehot(label) and
# dL/dW[c, j] = (p[c] - onehot[c]) * h[j]. We compute one entry by hand, compare it with
# what `backward` computes, and check both with a central finite difference
# (L(w + eps) - L(w - eps)) / (2 eps), in float64 so the difference is precise.

# %%
model64 = lenet5(seed=0, dtype=np.float64)
x64 = to_input(image[None], data.dataset).astype(np.float64)
y = np.array([label])
loss_fn = SoftmaxCrossEntropy()


def loss_of(m) -> float:
    return loss_fn.forward(m.forward(x64), y)


loss = loss_of(model64)
model64.backward(loss_fn.backward())  # fills every parameter's .grad
h = model64.layers["fc3"].x[0]  # what fc3 received, kept by its forward
p = loss_fn.probs[0]
c, j = label, int(np.argmax(h))  # the true class, and fc3's most active input
by_hand = (p[c] - 1.0) * h[j]
from_backward = model64.layers["fc3"].weight.grad[c, j]

w = model64.layers["fc3"].weight.value
eps = 1e-6
w[c, j] += eps
up = loss_of(model64)
w[c, j] -= 2 * eps
down = loss_of(model64)
w[c, j] += eps  # put it back
numeric = (up - down) / (2 * eps)
print(f"loss {loss:.6f}")
print(
    f"dL/dW[{c},{j}]: by hand {by_hand:.10f}, backward {from_backward:.10f}, "
    f"finite difference {numeric:.10f}"
)
assert abs(by_hand - from_backward) < 1e-12 and abs(numeric - from_backward) < 1e-7

# %% [markdown]
# The same check for a weight deep inside, conv1's first tap: no formula by hand this time,
# but the finite difference agrees with what the convolution's backward kernel computed.

# %%
w1 = model64.layers["conv1"].weight.value
analytic = model64.layers["conv1"].weight.grad[0, 0, 2, 2]
w1[0, 0, 2, 2] += eps
up = loss_of(model64)
w1[0, 0, 2, 2] -= 2 * eps
down = loss_of(model64)
w1[0, 0, 2, 2] += eps
print(
    f"dL/d conv1[0,0,2,2]: backward {analytic:.10f}, finite difference "
    f"{(up - down) / (2 * eps):.10f}"
)
assert abs(analytic - (up - down) / (2 * eps)) < 1e-7

# %% [markdown]
# ## 3. A few steps of SGD
#
# One step: forward a batch, the loss, backward, and the optimizer moves every weight a
# little against its gradient (with momentum and weight decay: tinyprune/nn/optim.py).
# On the same batch of 64 images the loss falls step after step.

# %%
model = lenet5(seed=0)
optimizer = MaskedSGD(model.params(), lr=0.05, momentum=0.9, weight_decay=5e-4)
xb = to_input(data.train_images[:64], data.dataset)
yb = data.train_labels[:64].astype(np.int64)
for step in range(1, 6):
    loss = loss_fn.forward(model.forward(xb), yb)
    model.backward(loss_fn.backward())
    optimizer.step()
    print(f"step {step}: loss {loss:.4f}")

# %% [markdown]
# ## 4. A short training, then a magnitude mask
#
# `fit` does those steps over the data, epoch after epoch, with a learning rate that decays
# along a cosine. To keep this notebook quick we train on 6,000 images for 2 epochs and
# measure on the first 2,000 test images (the full run, `python -m tinyprune.run`, uses all
# 60,000 and 10,000).

# %%
small = data._replace(
    train_images=data.train_images[:6000],
    train_labels=data.train_labels[:6000],
    test_images=data.test_images[:2000],
    test_labels=data.test_labels[:2000],
)
model = lenet5(seed=0)
start = time.perf_counter()
fit(model, small, MaskedSGD(model.params(), 0.05, 0.9, 5e-4), epochs=2, batch_size=128, seed=0)
_, dense_accuracy = evaluate(model, small.test_images, small.test_labels, dataset=data.dataset)
print(
    f"trained in {time.perf_counter() - start:.1f}s; test accuracy {dense_accuracy:.2%} "
    f"(first 2,000 test images)"
)

# %% [markdown]
# Magnitude pruning: in each layer, the half of the weights with the smallest |w| is set to
# zero, and a mask (1 keep, 0 pruned) is kept beside the weights. Here is what it does to
# conv1's first filter.

# %%
conv1 = model.layers["conv1"].weight
before = conv1.value.copy()
prune(model, 0.5, "layerwise")
print("conv1 filter 0 before:\n", before[0, 0])
print("its mask (1 kept, 0 pruned):\n", conv1.mask[0, 0].astype(int))
print("after:\n", conv1.value[0, 0])
print(f"|w| removed: {np.sort(np.abs(before[0, 0][conv1.mask[0, 0] == 0]))}")
largest_removed = np.abs(before[conv1.mask == 0]).max()
smallest_kept = np.abs(before[conv1.mask == 1]).min()
print(
    f"in all of conv1: largest |w| removed {largest_removed:.4f}, smallest kept {smallest_kept:.4f}"
)
assert largest_removed <= smallest_kept
for name, p in model.prunable().items():
    print(f"{name:12} {int(p.mask.sum()):6,} of {p.mask.size:6,} weights kept")

# %% [markdown]
# ## 5. Accuracy before and after pruning, and after fine-tuning
#
# Pruning costs accuracy; a little more training with the mask held fixed (fine-tuning)
# brings most of it back. The optimizer applies the mask to every update, so a pruned weight
# stays exactly 0.

# %%
_, pruned_accuracy = evaluate(model, small.test_images, small.test_labels, dataset=data.dataset)
fit(
    model,
    small,
    MaskedSGD(model.params(), 0.01, 0.9, 5e-4),
    epochs=1,
    batch_size=128,
    seed=1,
    phase="fine-tune",
)
_, tuned_accuracy = evaluate(model, small.test_images, small.test_labels, dataset=data.dataset)
print(
    f"test accuracy: dense {dense_accuracy:.2%}, pruned {pruned_accuracy:.2%}, "
    f"fine-tuned {tuned_accuracy:.2%}"
)
still_zero = all(np.all(p.value[p.mask == 0] == 0) for p in model.prunable().values())
print(f"pruned weights still exactly zero after fine-tuning: {still_zero}")
assert still_zero

# %% [markdown]
# ## 6. The compressed model and the exported C
#
# The pruned model ships without its zeros: a bitmask and the kept values, as float32 or
# quantised to int8 (tinyprune/deploy/tpz.py). Loaded back, it predicts as before.
# Then the same model as a C file (tinyprune/deploy/c_export.py), compiled with the host's
# gcc, predicts the same class for our test image.

# %%
work = Path(tempfile.mkdtemp(prefix="tinyprune-walkthrough-"))
sizes = write_compressed(model, work)
print(
    f"dense float32 {sizes['dense_float32']:,} bytes; pruned.tpz {sizes['compressed']:,}; "
    f"pruned-int8.tpz {sizes['compressed_int8']:,}"
)
x = to_input(data.test_images[:1], data.dataset)
python_class = int(model.forward(x).argmax())
shipped = decoded_model(model, work / "pruned.tpz")
int8 = decoded_model(model, work / "pruned-int8.tpz")
print(
    f"test image 0 (a {classes[label]}): Python says {classes[python_class]}, "
    f"pruned.tpz says {classes[int(shipped.forward(x).argmax())]}, "
    f"pruned-int8.tpz says {classes[int(int8.forward(x).argmax())]}"
)

# %%
MAIN_C = r"""
#include <stdio.h>
#include "lenet5.h"
int main(int argc, char **argv)
{
    unsigned char pixels[LENET5_INPUT_SIZE];
    float logits[LENET5_CLASSES];
    FILE *f = fopen(argv[1], "rb");
    if (argc != 2 || !f || fread(pixels, 1, sizeof pixels, f) != sizeof pixels) return 1;
    printf("%d\n", lenet5_predict_u8(pixels, logits));
    return 0;
}
"""
if shutil.which("gcc") is None:
    print("no gcc on this machine: the C part is skipped")
else:
    written = export_c(model, work, dataset=data.dataset)
    (work / "main.c").write_text(MAIN_C)
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
            str(work / "predict"),
            str(written["c"]),
            str(work / "main.c"),
        ],
        check=True,
    )
    data.test_images[0].tofile(work / "image.u8")
    c_class = int(
        subprocess.run(
            [str(work / "predict"), str(work / "image.u8")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    print(
        f"{written['c'].name}: {written['c_bytes']:,} bytes of C; compiled, it says "
        f"{classes[c_class]} (Python: {classes[python_class]})"
    )
    assert c_class == python_class

# %% [markdown]
# ## 7. Stepping through the kernels in a debugger
#
# The hot loops are numba kernels (tinyprune/kernels/). With `NUMBA_DISABLE_JIT=1` numba
# leaves them as plain Python, so a debugger can step into them, line by line, at the price
# of speed. A whole run is then practical only on a few images: `--limit` trains on the
# first N training images, `--test-limit` measures on the first N test images (and says so).
#
#     NUMBA_DISABLE_JIT=1 python -m tinyprune.run --limit 32 --test-limit 32 --batch-size 16 \
#         --epochs 1 --finetune-epochs 1 --out runs/debug
#
# Set a breakpoint in `Conv2d.forward` (tinyprune/nn/layers.py), the layer the model's
# definition names, and run it under `python -m pdb`, or in your editor's debugger; from there,
# step into `conv2d_forward` and its loops, `_forward_blocks` (tinyprune/kernels/conv.py).
#
# The next cell prints the pdb commands (`b` at Conv2d.forward's first line, then `c`), and
# runs the command itself without the debugger.

# %%
source, first = inspect.getsourcelines(Conv2d.forward)  # its `def` line, then its body
where = f"{inspect.getsourcefile(Conv2d.forward)}:{first + 1}"
print(f"under python -m pdb: b {where}  (-> {source[1].strip()}), then c")
env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
command = [
    sys.executable,
    "-m",
    "tinyprune.run",
    "--dataset",
    DATASET,
    "--limit",
    "32",
    "--test-limit",
    "32",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--finetune-epochs",
    "1",
    "--out",
    str(work / "debug"),
]
start = time.perf_counter()
done = subprocess.run(command, env=env, capture_output=True, text=True)
print("\n".join(line for line in done.stdout.splitlines()[:3] + done.stdout.splitlines()[-1:]))
print(f"... finished in {time.perf_counter() - start:.0f}s with exit status {done.returncode}")
assert done.returncode == 0, done.stderr[-2000:]
shutil.rmtree(work)
