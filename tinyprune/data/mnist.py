"""Find, verify, download and load MNIST, or another data set in its layout (datasets.py).

A data set's four files live in one folder (see datasets.resolve_data_dir), under MNIST's
names, gzip-compressed (`train-images-idx3-ubyte.gz`) or not (`train-images-idx3-ubyte`). Each
file is checked against its data set's checksums before it is parsed: a corrupt file is never
loaded, and a file of another known data set is named as such ("these are the Fashion-MNIST
files"), never called corrupt and never touched.
"""

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import requests
from tqdm import tqdm

from tinyprune.config import VALIDATION_IMAGES, DataConfig
from tinyprune.data.datasets import (
    DATASETS,
    ENV_VAR,
    FILE_NAMES,
    MNIST,
    Dataset,
    resolve_data_dir,
)
from tinyprune.data.idx import IdxError, gunzip, parse_idx

__all__ = [
    "Mnist",
    "MnistError",
    "WrongDataset",
    "download",
    "find_file",
    "load_data",
    "load_mnist",
    "resolve_data_dir",
]


class MnistError(RuntimeError):
    """A data set is missing, cannot be downloaded, or a file is corrupt; the message says
    what to do."""


class WrongDataset(MnistError):
    """The folder holds another known data set's files; the message names it."""


class Mnist(NamedTuple):
    """A data set in MNIST's layout, as stored: pixels 0..255 (0 is background), labels 0..9."""

    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8
    dataset: Dataset = MNIST  # which one: its classes and normalisation


def find_file(name: str, data_dir: Path) -> Path | None:
    """data_dir/name.gz or data_dir/name, whichever exists (the .gz first), else None."""
    for path in (data_dir / f"{name}.gz", data_dir / name):
        if path.is_file():
            return path
    return None


def matches(dataset: Dataset, name: str, raw: bytes, content: bytes) -> bool:
    """Is this file (raw: its bytes; content: decompressed) `name` of `dataset`?"""
    if dataset.sha256:
        return hashlib.sha256(content).hexdigest() == dataset.sha256[name]
    return hashlib.md5(raw, usedforsecurity=False).hexdigest() == dataset.gz_md5[name]


def identify(name: str, raw: bytes, content: bytes) -> Dataset | None:
    """The known data set whose file `name` this is, if any."""
    return next((d for d in DATASETS.values() if matches(d, name, raw, content)), None)


def download(
    name: str,
    data_dir: str | os.PathLike,
    dataset: Dataset = MNIST,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30,
    retries: int = 2,
    progress: bool = True,
) -> Path:
    """Download `name` (e.g. "train-images-idx3-ubyte") of `dataset` to data_dir/name.gz.

    Mirrors (default: the data set's) are tried in turn. An HTTP error or wrong content moves
    on to the next mirror; a refused or dropped connection or a timeout (`timeout` seconds
    without a byte) first retries the same mirror `retries` times. The file is written under a
    temporary name and moved into place only once its checksum is right, so a failed or
    interrupted download never leaves a file that looks complete. -> the path written.
    """
    name = name.removesuffix(".gz")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # A unique name in the same directory: os.replace is then atomic, and two runs cannot clash.
    fd, part = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=data_dir)
    os.close(fd)
    failures = []
    try:
        for mirror in dataset.mirrors if mirrors is None else mirrors:
            url = f"{mirror.rstrip('/')}/{name}.gz"
            error = _fetch(url, part, timeout, retries, progress)
            if error is None:
                raw = Path(part).read_bytes()
                try:
                    ok = matches(dataset, name, raw, gunzip(raw))
                except IdxError:  # not even a valid gzip stream
                    ok = False
                if ok:
                    os.replace(part, data_dir / f"{name}.gz")
                    return data_dir / f"{name}.gz"
                error = f"wrong content (corrupt, or not this {dataset.title} file); discarded"
            failures.append(f"  {url}: {error}")
    finally:
        Path(part).unlink(missing_ok=True)  # already gone after os.replace
    raise MnistError(
        f"could not download {name}.gz from any mirror:\n"
        + "\n".join(failures)
        + f"\nCheck your network connection, or download {name}.gz by hand into "
        f"{data_dir.resolve()}."
    )


def _fetch(url: str, path: str, timeout: float, retries: int, progress: bool) -> str | None:
    """Stream url into the file at path, retrying network failures; None on success, else why
    not."""
    for attempt in range(1, retries + 2):
        try:
            with requests.get(url, stream=True, timeout=timeout) as response, open(path, "wb") as f:
                response.raise_for_status()
                size = int(response.headers.get("Content-Length", 0)) or None
                with tqdm(
                    total=size,
                    unit="B",
                    unit_scale=True,
                    desc=url.rsplit("/", 1)[-1],
                    disable=not progress,
                ) as bar:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        f.write(chunk)
                        bar.update(len(chunk))
            return None
        except requests.HTTPError as e:  # the server answered: asking again will not help
            return str(e)
        except (
            requests.RequestException
        ) as e:  # refused, cut mid-file or timed out: may pass next time
            error = f"{e} (attempt {attempt} of {retries + 1})"
    return error


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    download_missing: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
    dataset: Dataset | str = MNIST,
) -> Mnist:
    """Load `dataset` (default MNIST) from its folder (see resolve_data_dir); download the
    files that are missing if allowed. The files present are checked first, so nothing is
    downloaded into a folder that holds another data set.

    Returns Mnist(train_images (60000, 28, 28) uint8, train_labels (60000,) uint8,
                  test_images (10000, 28, 28) uint8, test_labels (10000,) uint8, dataset).
    """
    dataset = DATASETS[dataset] if isinstance(dataset, str) else dataset
    data_dir = resolve_data_dir(data_dir, dataset)
    paths = {name: find_file(name, data_dir) for name in FILE_NAMES}
    missing = [name for name, path in paths.items() if path is None]
    where = (
        f"{dataset.title} is incomplete in {data_dir.resolve()}: missing "
        f"{', '.join(f'{name}.gz' for name in missing)} (gzip-compressed or not)."
    )
    if missing and not download_missing:
        raise MnistError(
            f"{where}\nPut the files there, or point --data-dir or {ENV_VAR} "
            "at a directory that has them."
        )
    contents = _check_files(dataset, data_dir, {n: p for n, p in paths.items() if p is not None})
    if missing:
        try:
            for name in missing:
                path = download(name, data_dir, dataset, mirrors, progress=progress)
                contents[name] = gunzip(path.read_bytes(), str(path))
        except MnistError as e:
            raise MnistError(f"{where}\n{e}") from None
    train_images, train_labels, test_images, test_labels = (
        parse_idx(contents[name], str(paths[name] or name)) for name in FILE_NAMES
    )
    data = Mnist(train_images, train_labels, test_images, test_labels, dataset)
    _check(data)
    return data


def load_data(config: DataConfig) -> Mnist:
    """config.dataset from config.data_dir; with config.validation, the validation split (see
    DataConfig) instead of train and test; its training set cut to the first config.limit
    images and its test set to the first config.test_limit, if given."""
    data = load_mnist(config.data_dir, dataset=config.dataset)
    if config.validation:  # the rest of the training set stands in for the test set
        n = VALIDATION_IMAGES
        data = data._replace(
            test_images=data.train_images[n:],
            test_labels=data.train_labels[n:],
            train_images=data.train_images[:n],
            train_labels=data.train_labels[:n],
        )
    if config.limit is not None:
        data = data._replace(
            train_images=data.train_images[: config.limit],
            train_labels=data.train_labels[: config.limit],
        )
    if config.test_limit is not None:
        data = data._replace(
            test_images=data.test_images[: config.test_limit],
            test_labels=data.test_labels[: config.test_limit],
        )
    return data


def _check_files(dataset: Dataset, data_dir: Path, paths: dict[str, Path]) -> dict[str, bytes]:
    """Read each file once and check it; -> name -> decompressed content. Raises WrongDataset
    if the files are another data set's, MnistError if one is unknown (corrupt)."""
    contents, others, unknown = {}, {}, []
    for name, path in paths.items():
        raw = path.read_bytes()
        content = gunzip(raw, str(path))
        if matches(dataset, name, raw, content):
            contents[name] = content
        elif (other := identify(name, raw, content)) is not None:
            others[path] = other
        else:
            unknown.append(path)
    if others:
        titles = sorted({d.title for d in others.values()})
        keys = sorted({d.key for d in others.values()})
        which = "" if len(others) == len(FILE_NAMES) else f" ({', '.join(p.name for p in others)})"
        raise WrongDataset(
            f"{data_dir.resolve()}: these are the {' and '.join(titles)} files, not "
            f"{dataset.title}{which}; add "
            f"{' or '.join(f'--dataset {k}' for k in keys)}, or point --data-dir at a folder "
            f"holding {dataset.title}. They are fine, and were left as they are."
        )
    if unknown:
        how = (
            "its SHA-256 (of the decompressed content)"
            if dataset.sha256
            else "the MD5 of the .gz file as its authors serve it (keep it gzip-compressed)"
        )
        raise MnistError(
            f"{', '.join(str(p) for p in unknown)}: not {dataset.title}'s file by {how}, nor "
            f"any other known data set's: corrupt, or another file under that name. Move it "
            f"away and run again to download it afresh."
        )
    return contents


def _check(data: Mnist) -> None:
    """The checksums pin the content; this guards the code that relies on MNIST's layout."""
    for split, images, labels in [
        ("train", data.train_images, data.train_labels),
        ("test", data.test_images, data.test_labels),
    ]:
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise MnistError(
                f"{split} images are {images.dtype} {images.shape}, expected uint8 (N, 28, 28)"
            )
        if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
            raise MnistError(
                f"{split} labels are {labels.dtype} {labels.shape}, "
                f"expected uint8 ({len(images)},): one per image"
            )
        if labels.size and labels.max() > 9:
            raise MnistError(f"{split} labels go up to {labels.max()}, expected 0..9")
