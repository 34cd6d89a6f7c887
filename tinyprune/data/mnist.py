"""Find, verify, download and load MNIST.

The four MNIST files live in one directory, the data dir (see resolve_data_dir), under their
usual names, gzip-compressed (`train-images-idx3-ubyte.gz`) or not (`train-images-idx3-ubyte`).
Each file is checked against the SHA-256 of its *decompressed* content: any mirror's gzip wrapper
is accepted, and a corrupt or foreign file is never loaded.
"""

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np
import requests
from tqdm import tqdm

from tinyprune.config import DataConfig
from tinyprune.data.idx import IdxError, parse_idx, read_bytes

# file name (without .gz) -> SHA-256 of its decompressed content; in the order of Mnist's fields.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Public copies of the original files, tried in this order.
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
ENV_VAR = "TINYPRUNE_DATA_DIR"
DEFAULT_DATA_DIR = Path("data/mnist")


class MnistError(RuntimeError):
    """MNIST is missing, cannot be downloaded, or a file is corrupt; the message says what to do."""


class Mnist(NamedTuple):
    """The MNIST data set as stored: pixels 0..255 (0 is background), labels 0..9."""

    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data dir: the argument if given, else $TINYPRUNE_DATA_DIR, else ./data/mnist."""
    if data_dir is None:
        data_dir = os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR
    return Path(data_dir)


def find_file(name: str, data_dir: Path) -> Path | None:
    """data_dir/name.gz or data_dir/name, whichever exists (the .gz first), else None."""
    for path in (data_dir / f"{name}.gz", data_dir / name):
        if path.is_file():
            return path
    return None


def download(name: str, data_dir: str | os.PathLike, mirrors: Sequence[str] = MIRRORS,
             timeout: float = 30, retries: int = 2, progress: bool = True,
             checksums: dict[str, str] = SHA256) -> Path:
    """Download `name` (e.g. "train-images-idx3-ubyte") to data_dir/name.gz; return that path.

    Mirrors are tried in turn. An HTTP error or wrong content moves on to the next mirror; a
    refused or dropped connection or a timeout (`timeout` seconds without a byte) first retries
    the same mirror `retries` times. The file is written under a temporary name and moved into
    place only once its checksum (`checksums[name]`, of the decompressed content) is right, so a
    failed or interrupted download never leaves a file that looks complete.
    """
    name = name.removesuffix(".gz")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # A unique name in the same directory: os.replace is then atomic, and two runs cannot clash.
    fd, part = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=data_dir)
    os.close(fd)
    failures = []
    try:
        for mirror in mirrors:
            url = f"{mirror.rstrip('/')}/{name}.gz"
            error = _fetch(url, part, timeout, retries, progress)
            if error is None:
                try:
                    ok = hashlib.sha256(read_bytes(part)).hexdigest() == checksums[name]
                except IdxError:  # not even a valid gzip stream
                    ok = False
                if ok:
                    os.replace(part, data_dir / f"{name}.gz")
                    return data_dir / f"{name}.gz"
                error = "wrong content (corrupt, or not this MNIST file); discarded"
            failures.append(f"  {url}: {error}")
    finally:
        Path(part).unlink(missing_ok=True)  # already gone after os.replace
    raise MnistError(f"could not download {name}.gz from any mirror:\n" + "\n".join(failures)
                     + f"\nCheck your network connection, or download {name}.gz by hand into "
                     f"{data_dir.resolve()}.")


def _fetch(url: str, path: str, timeout: float, retries: int, progress: bool) -> str | None:
    """Stream url into the file at path, retrying network failures; None on success, else why not."""
    for attempt in range(1, retries + 2):
        try:
            with requests.get(url, stream=True, timeout=timeout) as response, open(path, "wb") as f:
                response.raise_for_status()
                size = int(response.headers.get("Content-Length", 0)) or None
                with tqdm(total=size, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                          disable=not progress) as bar:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        f.write(chunk)
                        bar.update(len(chunk))
            return None
        except requests.HTTPError as e:  # the server answered: asking again will not help
            return str(e)
        except requests.RequestException as e:  # refused, cut mid-file or timed out: may pass next time
            error = f"{e} (attempt {attempt} of {retries + 1})"
    return error


def load_mnist(data_dir: str | os.PathLike | None = None, download_missing: bool = True,
               progress: bool = True, mirrors: Sequence[str] = MIRRORS) -> Mnist:
    """Load MNIST from the data dir (see resolve_data_dir), downloading missing files if allowed.

    Returns Mnist(train_images (60000, 28, 28) uint8, train_labels (60000,) uint8,
                  test_images (10000, 28, 28) uint8, test_labels (10000,) uint8).
    """
    data_dir = resolve_data_dir(data_dir)
    paths = {name: find_file(name, data_dir) for name in SHA256}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        where = (f"MNIST is incomplete in {data_dir.resolve()}: missing "
                 f"{', '.join(f'{name}.gz' for name in missing)} (gzip-compressed or not).")
        if not download_missing:
            raise MnistError(f"{where}\nPut the files there, or point --data-dir or {ENV_VAR} "
                             "at a directory that has them.")
        try:
            for name in missing:
                paths[name] = download(name, data_dir, mirrors, progress=progress)
        except MnistError as e:
            raise MnistError(f"{where}\n{e}") from None
    mnist = Mnist(*(_load(cast(Path, path), name) for name, path in paths.items()))  # all found
    _check(mnist)
    return mnist


def load_data(config: DataConfig) -> Mnist:
    """MNIST from config.data_dir, its training set cut to the first config.limit images."""
    data = load_mnist(config.data_dir)
    if config.limit is not None:
        data = data._replace(train_images=data.train_images[:config.limit],
                             train_labels=data.train_labels[:config.limit])
    return data


def _load(path: Path, name: str) -> np.ndarray:
    """Read the file once, check its SHA-256, then parse it."""
    data = read_bytes(path)
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise MnistError(f"{path}: its content does not have the SHA-256 of {name}; the file is "
                         "corrupt or not MNIST. Delete it and run again to download it afresh.")
    return parse_idx(data, str(path))


def _check(mnist: Mnist) -> None:
    """The checksums pin the content; this guards the code that relies on MNIST's layout."""
    for split, images, labels in [("train", mnist.train_images, mnist.train_labels),
                                  ("test", mnist.test_images, mnist.test_labels)]:
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise MnistError(f"{split} images are {images.dtype} {images.shape}, "
                             "expected uint8 (N, 28, 28)")
        if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
            raise MnistError(f"{split} labels are {labels.dtype} {labels.shape}, "
                             f"expected uint8 ({len(images)},): one per image")
        if labels.size and labels.max() > 9:
            raise MnistError(f"{split} labels go up to {labels.max()}, expected 0..9")
