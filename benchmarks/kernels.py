"""Time each kernel at LeNet-5's batch-128 shapes, then a training step, an epoch and inference:
tinyprune (numba) against its NumPy twins and, when torch is installed, against PyTorch.

    python benchmarks/kernels.py [--repeats 20] [--threads 2] [--json PATH] [--no-epoch]

Every time is the median of --repeats calls after two warm-up calls. tinyprune runs as in
training: numba on --threads threads, BLAS (the fc layers) on one. The NumPy twins have BLAS on
--threads threads, and PyTorch has torch.set_num_threads(--threads). The epoch is 60,000 MNIST
images (from $TINYPRUNE_DATA_DIR; random images of the same shape if MNIST is not there).
"""

from __future__ import annotations

import argparse
import math
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, matmul_gflops, median_seconds, ms, ratio, write_json  # noqa: E402

from tinyprune.config import TrainConfig  # noqa: E402
from tinyprune.kernels import conv, conv_pool, pool  # noqa: E402
from tinyprune.kernels.threads import get_threads, set_threads  # noqa: E402
from tinyprune.nn import conv_pool as conv_pool_layer  # noqa: E402
from tinyprune.nn import layers  # noqa: E402
from tinyprune.nn.loss import SoftmaxCrossEntropy  # noqa: E402
from tinyprune.nn.model import lenet5  # noqa: E402
from tinyprune.nn.optim import MaskedSGD  # noqa: E402
from tinyprune.train.loop import evaluate, fit, to_input  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF

    # PyTorch's LeNet-5 is whole_run.py's peer's: tinyprune's network, layer for layer.
    from torch_peer import lenet5 as torch_lenet5
except ImportError:
    torch = None

# The run command's defaults (TrainConfig), so that the epoch below is the run's.
DEFAULTS = TrainConfig()
BATCH, LR, MOMENTUM = DEFAULTS.batch_size, DEFAULTS.lr, DEFAULTS.momentum
WEIGHT_DECAY, SHIFT = DEFAULTS.weight_decay, DEFAULTS.shift
# LeNet-5's two convolutions: (name, C, H, F, K, pad) and its pools: (name, C, H).
CONVS = [("conv1", 1, 28, 6, 5, 2), ("conv2", 6, 14, 16, 5, 0)]
POOLS = [("pool1", 6, 28), ("pool2", 16, 10)]
FCS = [(400, 120), (120, 84), (84, 10)]
# The kernels each layer module calls, and the module each comes from (its twin beside it).
KERNEL_NAMES = {
    layers: {
        "conv2d_forward": conv,
        "conv2d_backward_input": conv,
        "conv2d_backward_weight": conv,
        "maxpool2x2_forward": pool,
        "maxpool2x2_backward": pool,
    },
    conv_pool_layer: {
        "conv2d_pool_forward": conv_pool,
        "conv2d_pool_backward_input": conv_pool,
        "conv2d_pool_backward_weight": conv_pool,
        "maxpool2x2_backward": pool,
    },
}


@contextmanager
def numpy_twins():
    """Make the layers, plain and fused, call the NumPy twins. The layers look each kernel up
    in their module's namespace at call time, so swapping the names there swaps the whole
    model."""
    saved = {(m, name): getattr(m, name) for m, names in KERNEL_NAMES.items() for name in names}
    for m, names in KERNEL_NAMES.items():
        for name, module in names.items():
            setattr(m, name, getattr(module, name + "_numpy"))
    try:
        yield
    finally:
        for (m, name), kernel in saved.items():
            setattr(m, name, kernel)


def conv_flops(N, C, H, F, K, pad):
    Ho = H + 2 * pad - K + 1
    return 2 * N * F * Ho * Ho * C * K * K


def step_flops(N):
    """Multiply-adds x 2 of one training step: conv and fc layers, forward and backward
    (conv1 has no input gradient)."""
    convs = sum(conv_flops(N, *c[1:]) for c in CONVS)
    conv1 = conv_flops(N, *CONVS[0][1:])
    fcs = sum(2 * N * i * o for i, o in FCS)
    return 3 * convs - conv1 + 3 * fcs


# --- the rows of the kernel table --------------------------------------------------------------


def kernel_cases(rng):
    """-> list of (name, flops, tinyprune fn, NumPy twin fn or None, torch fn or None).
    A twin of None means tinyprune's own code there is already plain NumPy (BLAS)."""
    f32 = np.float32
    cases = []
    for name, C, H, F, K, pad in CONVS:
        x = rng.standard_normal((BATCH, C, H, H)).astype(f32)
        w = rng.standard_normal((F, C, K, K)).astype(f32) * 0.1
        b = rng.standard_normal(F).astype(f32)
        Ho = H + 2 * pad - K + 1
        g = rng.standard_normal((BATCH, F, Ho, Ho)).astype(f32)
        flops = conv_flops(BATCH, C, H, F, K, pad)
        cases += [
            (
                f"{name} forward",
                flops,
                lambda x=x, w=w, b=b, p=pad: conv.conv2d_forward(x, w, b, p),
                lambda x=x, w=w, b=b, p=pad: conv.conv2d_forward_numpy(x, w, b, p),
                None,
            ),
            (
                f"{name} backward to input",
                flops,
                lambda g=g, w=w, p=pad, H=H: conv.conv2d_backward_input(g, w, p, H, H),
                lambda g=g, w=w, p=pad, H=H: conv.conv2d_backward_input_numpy(g, w, p, H, H),
                None,
            ),
            (
                f"{name} backward to weights",
                flops,
                lambda x=x, g=g, p=pad: conv.conv2d_backward_weight(x, g, p),
                lambda x=x, g=g, p=pad: conv.conv2d_backward_weight_numpy(x, g, p),
                None,
            ),
        ]
        if torch is not None:
            tx, tw, tb, tg = map(torch.from_numpy, (x, w, b, g))

            def bwd(mask, tx=tx, tw=tw, tg=tg, p=pad, F=F):
                return torch.ops.aten.convolution_backward(
                    tg, tx, tw, [F], [1, 1], [p, p], [1, 1], False, [0, 0], 1, mask
                )

            cases[-3] = cases[-3][:4] + (
                lambda tx=tx, tw=tw, tb=tb, p=pad: TF.conv2d(tx, tw, tb, padding=p),
            )
            cases[-2] = cases[-2][:4] + (lambda bwd=bwd: bwd([True, False, False]),)
            cases[-1] = cases[-1][:4] + (lambda bwd=bwd: bwd([False, True, True]),)
    cases += fused_cases(rng)
    for name, C, H in POOLS:
        x = np.maximum(rng.standard_normal((BATCH, C, H, H)), 0).astype(f32)
        out, argmax = pool.maxpool2x2_forward(x)
        g = rng.standard_normal(out.shape).astype(f32)
        fwd_torch = bwd_torch = None
        if torch is not None:
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            _, idx = TF.max_pool2d(tx, 2, return_indices=True)
            fwd_torch = lambda tx=tx: TF.max_pool2d(tx, 2, return_indices=True)  # noqa: E731
            bwd_torch = lambda tx=tx, tg=tg, idx=idx: (  # noqa: E731
                torch.ops.aten.max_pool2d_with_indices_backward(
                    tg, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, idx
                )
            )
        cases += [
            (
                f"{name} forward",
                None,
                lambda x=x: pool.maxpool2x2_forward(x),
                lambda x=x: pool.maxpool2x2_forward_numpy(x),
                fwd_torch,
            ),
            (
                f"{name} backward",
                None,
                lambda g=g, a=argmax, H=H: pool.maxpool2x2_backward(g, a, H, H),
                lambda g=g, a=argmax, H=H: pool.maxpool2x2_backward_numpy(g, a, H, H),
                bwd_torch,
            ),
        ]

    fcs = [layers.Linear(i, o, rng) for i, o in FCS]
    x0 = rng.standard_normal((BATCH, FCS[0][0])).astype(f32)
    g_out = rng.standard_normal((BATCH, FCS[-1][1])).astype(f32)

    def fc_forward():
        h = x0
        for fc in fcs:
            h = fc.forward(h)
        return h

    def fc_backward():
        g = g_out
        for fc in reversed(fcs):
            g = fc.backward(g)
        return g

    fc_forward()
    fc_flops = sum(2 * BATCH * i * o for i, o in FCS)
    linear_torch = [None, None]
    if torch is not None:
        tws = [torch.from_numpy(fc.weight.value) for fc in fcs]
        tbs = [torch.from_numpy(fc.bias.value) for fc in fcs]
        txs = [torch.from_numpy(fc.x) for fc in fcs]
        tg_out = torch.from_numpy(g_out)

        def torch_fc_forward():
            h = txs[0]
            for tw, tb in zip(tws, tbs):
                h = TF.linear(h, tw, tb)
            return h

        def torch_fc_backward():
            g = tg_out
            for tw, tx in zip(reversed(tws), reversed(txs)):
                g.t() @ tx, g.sum(0)
                g = g @ tw
            return g

        linear_torch = [torch_fc_forward, torch_fc_backward]
    cases += [
        ("linear fc1-fc3 forward", fc_flops, fc_forward, None, linear_torch[0]),
        ("linear fc1-fc3 backward", 2 * fc_flops, fc_backward, None, linear_torch[1]),
    ]

    logits = rng.standard_normal((BATCH, 10)).astype(f32)
    labels = rng.integers(0, 10, BATCH)
    loss_fn = SoftmaxCrossEntropy()
    loss_torch = None
    if torch is not None:
        t_logits, t_labels = torch.from_numpy(logits), torch.from_numpy(labels)

        def loss_torch():
            lg = t_logits.clone().requires_grad_()
            return torch.autograd.grad(TF.cross_entropy(lg, t_labels), lg)

    cases.append(
        (
            "loss forward+backward",
            None,
            lambda: (loss_fn.forward(logits, labels), loss_fn.backward()),
            None,
            loss_torch,
        )
    )
    return cases


def fused_cases(rng):
    """Rows for conv, pool and ReLU as a fused model runs them, one ConvPool layer
    (kernels/conv_pool.py); PyTorch runs the three eager ops, forward, and their three backward
    ops. The backward is to the weights and the input, but for conv1 (to the weights only, as
    in LeNet-5)."""
    f32 = np.float32
    cases = []
    for (name, C, H, F, K, pad), (pool_name, _, _) in zip(CONVS, POOLS):
        x = rng.standard_normal((BATCH, C, H, H)).astype(f32)
        w = rng.standard_normal((F, C, K, K)).astype(f32) * 0.1
        b = rng.standard_normal(F).astype(f32)
        out, argmax = conv_pool.conv2d_pool_forward(x, w, b, pad, True)
        g = rng.standard_normal(out.shape).astype(f32)
        input_grad = name != "conv1"  # as in LeNet-5: conv1's input is the image

        def forward(x=x, w=w, b=b, p=pad, twin=False):
            kernel = conv_pool.conv2d_pool_forward_numpy if twin else conv_pool.conv2d_pool_forward
            return kernel(x, w, b, p, True)

        def backward(x=x, w=w, g=g, a=argmax, p=pad, K=K, H=H, i=input_grad, twin=False):
            m = conv_pool
            dw = (m.conv2d_pool_backward_weight_numpy if twin else m.conv2d_pool_backward_weight)(
                x, g, a, p, K
            )
            bi = m.conv2d_pool_backward_input_numpy if twin else m.conv2d_pool_backward_input
            return dw, bi(g, a, w, p, H, H) if i else None

        torch_fwd = torch_bwd = None
        if torch is not None:
            tx, tw, tb, tg = map(torch.from_numpy, (x, w, b, g))
            tc = TF.conv2d(tx, tw, tb, padding=pad)
            tp, idx = TF.max_pool2d(tc, 2, return_indices=True)
            tr = TF.relu(tp)

            def torch_fwd(tx=tx, tw=tw, tb=tb, p=pad):
                return TF.relu(TF.max_pool2d(TF.conv2d(tx, tw, tb, padding=p), 2))

            def torch_bwd(tx=tx, tw=tw, tg=tg, tc=tc, tr=tr, idx=idx, p=pad, F=F, i=input_grad):
                gp = torch.ops.aten.threshold_backward(tg, tr, 0)
                gc = torch.ops.aten.max_pool2d_with_indices_backward(
                    gp, tc, [2, 2], [2, 2], [0, 0], [1, 1], False, idx
                )
                mask = [i, True, True]
                return torch.ops.aten.convolution_backward(
                    gc, tx, tw, [F], [1, 1], [p, p], [1, 1], False, [0, 0], 1, mask
                )

        steps = f"{name}+{pool_name}+relu{name[-1]}"
        flops = conv_flops(BATCH, C, H, F, K, pad)
        cases += [
            (f"{steps} forward", flops, forward, lambda f=forward: f(twin=True), torch_fwd),
            (
                f"{steps} backward",
                flops * (2 if input_grad else 1),
                backward,
                lambda f=backward: f(twin=True),
                torch_bwd,
            ),
        ]
    return cases


# --- training step, epoch and inference --------------------------------------------------------


def tinyprune_step(model, x, y):
    loss_fn = SoftmaxCrossEntropy()
    optimizer = MaskedSGD(model.params(), LR, MOMENTUM, WEIGHT_DECAY)

    def step():
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()

    return step


def torch_optimizer(net):
    """SGD as MaskedSGD: momentum, weight decay on the weights but not the biases."""
    weights = [p for name, p in net.named_parameters() if name.endswith("weight")]
    biases = [p for name, p in net.named_parameters() if name.endswith("bias")]
    return torch.optim.SGD(
        [
            {"params": weights, "weight_decay": WEIGHT_DECAY},
            {"params": biases, "weight_decay": 0.0},
        ],
        lr=LR,
        momentum=MOMENTUM,
    )


def torch_step(net, opt, x, y):
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad(set_to_none=True)
        TF.cross_entropy(net(tx), ty).backward()
        opt.step()

    return step


def torch_inference(net, images, labels, batch_size=1000):
    """As tinyprune's evaluate(): loss and accuracy over all images, batches of 1000."""
    with torch.no_grad():
        correct = 0
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(to_input(images[s : s + batch_size]))
            y = torch.from_numpy(labels[s : s + batch_size].astype(np.int64))
            logits = net(x)
            TF.cross_entropy(logits, y, reduction="sum")
            correct += int((logits.argmax(1) == y).sum())
    return correct


def tinyprune_epoch_seconds(data, twins: bool, fused: bool = False):
    model = lenet5(0, fused=fused)
    optimizer = MaskedSGD(model.params(), LR, MOMENTUM, WEIGHT_DECAY)
    one_epoch = type(data)(
        data.train_images, data.train_labels, data.test_images[:1000], data.test_labels[:1000]
    )
    if twins:
        with numpy_twins(), threadpool_limits(limits=get_threads(), user_api="blas"):
            # fit() would limit BLAS to one thread; the twins have no numba to make room for.
            history = fit.__wrapped__(
                model, one_epoch, optimizer, 1, BATCH, seed=0, max_shift=SHIFT
            )
    else:
        history = fit(model, one_epoch, optimizer, 1, BATCH, seed=0, max_shift=SHIFT)
    return history[0]["seconds"]


def load_data():
    """MNIST if it is there, else random uint8 images of MNIST's shapes (timing only)."""
    try:
        from tinyprune.data.mnist import load_mnist

        return load_mnist(download_missing=False, progress=False), "MNIST"
    except Exception as error:  # noqa: BLE001 - any failure: fall back and say so
        print(f"MNIST not loaded ({error}); timing on random images", file=sys.stderr)
        from tinyprune.data.mnist import Mnist

        rng = np.random.default_rng(0)
        return Mnist(
            rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, 60000, dtype=np.uint8),
            rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, 10000, dtype=np.uint8),
        ), "random"


# --- main --------------------------------------------------------------------------------------


def row(name, flops, t_numba, t_twin, t_torch):
    gflops = (
        None
        if flops is None
        else {
            k: (None if t is None else flops / t / 1e9)
            for k, t in (("tinyprune", t_numba), ("numpy", t_twin), ("torch", t_torch))
        }
    )
    return {
        "name": name,
        "flops": flops,
        "seconds": {"tinyprune": t_numba, "numpy": t_twin, "torch": t_torch},
        "gflops": gflops,
        "speedup_vs_numpy": None if t_twin is None else t_twin / t_numba,
        "time_ratio_vs_torch": None if t_torch is None else t_numba / t_torch,
    }


NAME = 34  # width of the name column


def print_table(title, rows):
    print(f"\n{title}")
    print(
        f"{'':{NAME}} {'NumPy twin':>11} {'tinyprune':>10} {'PyTorch':>9} {'twin/tiny':>10} "
        f"{'tiny/torch':>11} {'tiny GFLOP/s':>13}"
    )
    for r in rows:
        s = r["seconds"]
        gf = r["gflops"]["tinyprune"] if r["gflops"] else None
        unit = "s" if title.startswith("whole") else "ms"
        fmt = (lambda t: "-" if t is None else f"{t:.2f}") if unit == "s" else ms
        print(
            f"{r['name']:{NAME}} {fmt(s['numpy']):>11} {fmt(s['tinyprune']):>10} "
            f"{fmt(s['torch']):>9} {ratio(s['numpy'], s['tinyprune']):>10} "
            f"{ratio(s['tinyprune'], s['torch']):>11} "
            f"{'-' if gf is None else f'{gf:.1f}':>13}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=get_threads())
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--no-epoch",
        action="store_true",
        help="skip the whole-epoch timings (about a minute with the twins)",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    set_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    result = {
        "machine": machine_info(args.threads),
        "batch": BATCH,
        "repeats": args.repeats,
        "torch": None if torch is None else torch.__version__,
    }
    result["machine"]["matmul_gflops"] = matmul_gflops(args.threads)
    print(
        f"{args.threads} threads; float32 1024x1024 matrix product (BLAS): "
        f"{result['machine']['matmul_gflops']:.0f} GFLOP/s; "
        f"PyTorch: {result['torch'] or 'not installed'}; times in ms, median of {args.repeats}"
    )

    def timed(fn, blas_threads):
        if fn is None:
            return None
        with threadpool_limits(limits=blas_threads, user_api="blas"):
            return median_seconds(fn, args.repeats)

    rows = []
    for name, flops, fn, twin, torch_fn in kernel_cases(rng):
        rows.append(
            row(name, flops, timed(fn, 1), timed(twin, args.threads), timed(torch_fn, None))
        )
    result["kernels"] = rows
    print_table(f"kernels at batch {BATCH} (float32)", rows)

    data, source = load_data()
    x = to_input(data.train_images[:BATCH])
    y = data.train_labels[:BATCH].astype(np.int64)
    t_step_torch = t_inf_torch = None
    reps = max(3, args.repeats // 5)
    if torch is not None:
        net = torch_lenet5()
        t_step_torch = timed(torch_step(net, torch_optimizer(net), x, y), None)
        t_inf_torch = median_seconds(
            lambda: torch_inference(net, data.test_images, data.test_labels), reps, warmup=1
        )

    def infer(m):
        return lambda: evaluate(m, data.test_images, data.test_labels)

    whole = []
    for way, fused in (("", False), (", fused", True)):  # lenet5(), then lenet5(fused=True)
        model = lenet5(0, fused=fused)
        t_step = timed(tinyprune_step(model, x, y), 1)
        with numpy_twins():
            t_step_twin = timed(tinyprune_step(lenet5(0, fused=fused), x, y), args.threads)
        step = f"training step{way} (batch 128)"
        whole.append(row(step, step_flops(BATCH), t_step, t_step_twin, t_step_torch))
        t_inf = median_seconds(infer(model), reps, warmup=1)
        with numpy_twins():
            t_inf_twin = median_seconds(infer(model), reps, warmup=1)
        whole.append(row(f"inference{way}, 10,000 images", None, t_inf, t_inf_twin, t_inf_torch))
    print_table("training step and inference (fused: conv, pool and ReLU as one layer)", whole)

    if not args.no_epoch:
        n_steps = math.ceil(len(data.train_images) / BATCH)
        t_epoch = tinyprune_epoch_seconds(data, twins=False)
        t_epoch_twin = tinyprune_epoch_seconds(data, twins=True)
        t_epoch_fused = tinyprune_epoch_seconds(data, twins=False, fused=True)
        # No PyTorch epoch here: run in this process, beside numba, it would share the cores'
        # thread pools and be timed cold. benchmarks/whole_run.py times PyTorch's epochs in a
        # process of their own, warm, as users run them.
        flops = n_steps * step_flops(BATCH)
        epochs = [
            row(f"training epoch ({source})", flops, t_epoch, t_epoch_twin, None),
            row(f"training epoch, fused ({source})", flops, t_epoch_fused, None, None),
        ]
        whole += epochs
        print_table("whole epoch, seconds (one run each)", epochs)
        print("(PyTorch's epoch: benchmarks/whole_run.py, each framework in its own process)")
    result["whole"] = whole
    if args.json:
        write_json(args.json, result)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
