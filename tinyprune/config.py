"""What a run is asked to do: built once from the command line, read by everything below it.

    data = DataConfig(data_dir=None, limit=6000)
    train = TrainConfig(model="lenet5", epochs=10)
    prune = PruneConfig(sparsity=0.9, method="global", schedule="agp")

Frozen, so no stage can change what a later stage (or a resumed run) reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

# Training's initial learning rate, for every model. Chosen on a validation split (trained on
# the first 50,000 training images, tested on the other 10,000): lenet5-caffe reached 99.23%
# there at 0.05 against 98.95% at 0.01.
DEFAULT_LR = 0.05
VALIDATION_IMAGES = 50_000

# Training's learning rate rises linearly over its first WARMUP_STEPS steps (train/loop.py,
# cosine_lr, says why). Chosen on the validation split: see benchmarks/seed_stability.py.
WARMUP_STEPS = 100


@dataclass(frozen=True)
class DataConfig:
    """Which images, from where. data_dir None: see data.datasets.resolve_data_dir
    ($TINYPRUNE_DATA_DIR, else data/<dataset>)."""

    data_dir: Path | None = None
    limit: int | None = None  # train on the first `limit` training images only
    dataset: str = "mnist"  # a key of data.datasets.DATASETS
    test_limit: int | None = None  # measure on the first `test_limit` test images only
    # Choose recipes without the test set: train on the first VALIDATION_IMAGES training
    # images and measure on the rest of the training set instead of the test set.
    validation: bool = False

    def options(self) -> dict:
        """What of it decides the numbers (not where the files are)."""
        return {k: v for k, v in asdict(self).items() if k != "data_dir"}


@dataclass(frozen=True)
class TrainConfig:
    """How the dense model is trained (and so which cached dense model fits)."""

    model: str = "lenet5"
    epochs: int = 10
    lr: float = DEFAULT_LR
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    shift: int = 0  # random shifts of up to this many pixels (0: none)
    seed: int = 0
    warmup_steps: int = WARMUP_STEPS  # the learning rate rises linearly over the first steps


@dataclass(frozen=True)
class PruneConfig:
    """How the trained model is pruned and fine-tuned."""

    sparsity: float = 0.5
    method: str = "layerwise"
    schedule: str = "oneshot"
    rounds: int = 4
    quality: float | None = None  # method "std": prune |w| < quality x std; sets the sparsity
    finetune_epochs: int = 5
    finetune_lr: float = 0.01


@dataclass(frozen=True)
class StructureConfig:
    """Learned structured pruning (prune/structured.py): while the dense model trains, a
    penalty (structure "group-lasso"; None: none) of strength lam (one, or one per layer whose
    units may go) zeroes whole filters and neurons, which the run then removes."""

    structure: str | None = None
    lam: tuple[float, ...] = (1e-3,)


@dataclass(frozen=True)
class ShareConfig:
    """Weight sharing after pruning (deploy/weight_sharing.py): bits per shared-value index as
    parse_bits takes them ('5', 'conv=8,fc=5', ...); bias_bits: share biases too (None: they
    stay float32); epochs and lr: fine-tuning of the shared values."""

    bits: str = "conv=8,fc=5"  # Deep Compression's setting
    bias_bits: int | None = None
    epochs: int = 1
    lr: float = 1e-4


@dataclass(frozen=True)
class RunConfig:
    """Everything `python -m tinyprune.run` does, and where it writes."""

    data: DataConfig
    train: TrainConfig
    prune: PruneConfig
    out: Path
    share: ShareConfig = ShareConfig()
    structure: StructureConfig = StructureConfig()
    # Start from the trained dense model cached in this folder (train/dense_cache.py), trained
    # and cached first if it is not there; None: train it here, no cache.
    cache_dir: Path | None = None
    # Build the model with each convolution, its pooling and its ReLU as one fused layer
    # (MODELS[name](seed, fused=True)): the same numbers, faster.
    fused: bool = False
