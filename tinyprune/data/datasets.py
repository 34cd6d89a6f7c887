"""The data sets tinyprune knows: MNIST and its look-alikes in the same IDX layout.

Each is described once here: its four files and how to check them, where to download them,
its class names, and the mean and standard deviation its pixels are normalised with. Loading
(tinyprune/data/mnist.py) is the same for all of them; only the description differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# The four files of every data set here, in the order of the Mnist tuple's fields.
FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
ENV_VAR = "TINYPRUNE_DATA_DIR"
DEFAULT_ROOT = Path("data")


@dataclass(frozen=True)
class Dataset:
    """One data set in MNIST's layout: 60,000 + 10,000 grey 28x28 images, labels 0..9.

    sha256: file name -> SHA-256 of its *decompressed* content (any mirror's gzip wrapper is
    then accepted). gz_md5: file name -> MD5 of the .gz file as its authors serve it, for a
    data set whose decompressed checksums are not published; either may be empty, not both.
    mean, std: of the training pixels scaled to [0, 1]; the network's input is
    (pixel / 255 - mean) / std.
    """

    key: str  # the --dataset value and the name of its folder under data/
    title: str  # for people: "Fashion-MNIST"
    classes: tuple[str, ...]
    mean: float
    std: float
    mirrors: tuple[str, ...]
    sha256: dict[str, str] = field(default_factory=dict)
    gz_md5: dict[str, str] = field(default_factory=dict)


MNIST = Dataset(
    key="mnist",
    title="MNIST",
    classes=tuple(str(digit) for digit in range(10)),
    mean=0.1307,
    std=0.3081,
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    sha256={
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
)

# Zalando's clothes. The SHA-256 sums are of the decompressed files, as in the SHA256SUMS of
# the copy the tests use (../shared/fashion-mnist); mean and std measured on its training set.
FASHION_MNIST = Dataset(
    key="fashion-mnist",
    title="Fashion-MNIST",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mean=0.2860,
    std=0.3530,
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    sha256={
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
)

# Kuzushiji-MNIST (Clanuwat et al. 2018), ten cursive Japanese characters, named by their
# modern hiragana. Its authors' repository (github.com/rois-codh/kmnist: README.md and
# download_data.py) gives the download addresses but publishes no checksums, and no SHA-256 of
# the decompressed files is published anywhere we found. So KMNIST's .gz files are checked
# by the MD5 sums that torchvision's KMNIST class pins for exactly these files on the authors'
# server (torchvision/datasets/mnist.py; the same sums appear in other libraries). Mean and
# std: the values commonly quoted for KMNIST's training set (not measurable here).
KMNIST = Dataset(
    key="kmnist",
    title="KMNIST",
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    mean=0.1918,
    std=0.3483,
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    gz_md5={
        "train-images-idx3-ubyte": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte": "7320c461ea6c1c855c0b718fb2a4b134",
    },
)

DATASETS = {d.key: d for d in (MNIST, FASHION_MNIST, KMNIST)}


def resolve_data_dir(data_dir: str | os.PathLike | None = None, dataset: Dataset = MNIST) -> Path:
    """The folder of one data set's four files.

    1. data_dir (--data-dir) if given: that folder, as it is.
    2. else $TINYPRUNE_DATA_DIR, the folder that holds one folder per data set
       ($TINYPRUNE_DATA_DIR/fashion-mnist), with two cases kept from when there was only MNIST:
       named after a data set (../shared/mnist), it is that data set's folder and the others
       are its siblings (../shared/fashion-mnist); holding IDX files itself, it is used as it is
       (and a wrong data set there is named when it is loaded).
    3. else data/<key>: data/mnist, data/fashion-mnist, data/kmnist.
    """
    if data_dir is not None:
        return Path(data_dir)
    root = Path(os.environ.get(ENV_VAR) or DEFAULT_ROOT)
    if root.name in DATASETS:
        return root.parent / dataset.key
    if any((root / name).is_file() or (root / f"{name}.gz").is_file() for name in FILE_NAMES):
        return root
    return root / dataset.key
