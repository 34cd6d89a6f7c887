"""Finding, verifying, downloading and loading MNIST.

Downloads are tested against a real HTTP server on 127.0.0.1 serving tiny fake MNIST files;
a guard fails any test that tries to connect anywhere else.
"""

import gzip
import hashlib
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tinyprune.data import mnist
from tinyprune.data.datasets import FASHION_MNIST, FILE_NAMES, KMNIST, MNIST, Dataset
from tinyprune.data.idx import IdxError, read_bytes
from tinyprune.data.mnist import (
    Mnist,
    MnistError,
    WrongDataset,
    download,
    load_mnist,
    resolve_data_dir,
)

NAMES = list(FILE_NAMES)  # train images, train labels, test images, test labels
LABELS = "train-labels-idx1-ubyte"


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed uint8 IDX file holding array."""
    return struct.pack(f">HBB{array.ndim}I", 0, 0x08, array.ndim, *array.shape) + array.tobytes()


def fake_mnist(n_train: int = 5, n_test: int = 3) -> Mnist:
    rng = np.random.default_rng(0)
    return Mnist(
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def use_fake_checksums(monkeypatch, data: Mnist) -> dict[str, bytes]:
    """Make tinyprune.mnist accept `data`'s files; return name -> gzip-compressed file."""
    files = {}
    for name, array in zip(NAMES, data):
        monkeypatch.setitem(MNIST.sha256, name, hashlib.sha256(idx_bytes(array)).hexdigest())
        files[name] = gzip.compress(idx_bytes(array))
    return files


def assert_mnist_equal(got: Mnist, want: Mnist) -> None:
    assert got.dataset == want.dataset
    for g, w in zip(got[:4], want[:4]):
        assert g.dtype == np.uint8
        np.testing.assert_array_equal(g, w)


# --- a real HTTP server on loopback ---


@pytest.fixture
def loopback_only(monkeypatch):
    """Fail the test if it connects to anything but 127.0.0.1, and bypass any proxy."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    connect = socket.socket.connect

    def loopback_connect(sock, address):
        assert address[0] == "127.0.0.1", f"the test tried to connect to {address}"
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_connect)


class Handler(BaseHTTPRequestHandler):
    """GET /MODE/NAME.gz serves server.files[NAME], behaving as MODE says:

    ok: the file; 404, 500: that error; wrong: other valid gzip content; corrupt: a bad gzip stream;
    cut: Content-Length of the whole file, half of it, then the connection closes;
    flaky: cut the first time, ok afterwards;
    stall: nothing until the test ends; stall-body: headers and half the file, then nothing.
    """

    def do_GET(self):
        _, mode, filename = self.path.split("/")
        server = self.server
        server.log.append(mode)
        body = server.files.get(filename.removesuffix(".gz"))
        if body is None or mode in ("404", "500"):
            self.send_error(404 if body is None else int(mode))
            return
        if mode == "flaky":
            mode = "cut" if server.log.count("flaky") == 1 else "ok"
        if mode == "wrong":
            body = gzip.compress(idx_bytes(np.arange(7, dtype=np.uint8)))
        if mode == "corrupt":
            body = body[:-8] + bytes(8)  # zeroed CRC and size
        if mode == "stall":
            server.release.wait(10)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode in ("cut", "stall-body"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if mode == "stall-body":
                server.release.wait(10)
            return  # HTTP/1.0: the connection closes here, short of Content-Length
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(loopback_only):
    """A threaded HTTP server on 127.0.0.1; server.url(mode) is a mirror base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.log, httpd.release = {}, [], threading.Event()
    httpd.handle_error = lambda request, address: None  # a client that hung up is expected here
    httpd.url = lambda mode: f"http://127.0.0.1:{httpd.server_address[1]}/{mode}/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()  # let stalled handlers return, so closing does not wait for them
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def labels_file(server):
    """Serve a fake labels file; return (its decompressed content, a data set holding it)."""
    content = idx_bytes(np.arange(3000, dtype=np.uint8) % 10)
    server.files[LABELS] = gzip.compress(content)
    return content, Dataset(
        "fake",
        "Fake",
        MNIST.classes,
        0.5,
        0.5,
        mirrors=(),
        sha256={LABELS: hashlib.sha256(content).hexdigest()},
    )


def get(server, tmp_path, labels_file, modes, **kwargs):
    """Download the fake labels file from mirrors in `modes` into tmp_path."""
    kwargs = {"timeout": 5, "retries": 2, "progress": False} | kwargs
    return download(
        LABELS, tmp_path, labels_file[1], [server.url(mode) for mode in modes], **kwargs
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- download ---


@pytest.mark.parametrize("error", ["404", "500"])
def test_http_error_moves_to_next_mirror_without_retrying(server, tmp_path, labels_file, error):
    path = get(server, tmp_path, labels_file, [error, "ok"])
    assert path == tmp_path / f"{LABELS}.gz"
    assert gzip.decompress(path.read_bytes()) == labels_file[0]
    assert server.log == [error, "ok"]
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("bad", ["wrong", "corrupt"])
def test_wrong_content_is_discarded_and_next_mirror_used(server, tmp_path, labels_file, bad):
    path = get(server, tmp_path, labels_file, [bad, "ok"])
    assert gzip.decompress(path.read_bytes()) == labels_file[0]
    assert server.log == [bad, "ok"]
    assert os.listdir(tmp_path) == [path.name]


def test_all_mirrors_wrong_raises_and_leaves_nothing(server, tmp_path, labels_file):
    with pytest.raises(MnistError) as info:
        get(server, tmp_path, labels_file, ["wrong", "corrupt"])
    message = str(info.value)
    assert message.count("wrong content") == 2 and server.url("wrong") in message
    assert f"by hand into {tmp_path}" in message
    assert os.listdir(tmp_path) == []


def test_cut_connection_is_retried_then_reported(server, tmp_path, labels_file):
    with pytest.raises(MnistError, match="attempt 3 of 3") as info:
        get(server, tmp_path, labels_file, ["cut"], retries=2)
    assert server.url("cut") in str(info.value)
    assert server.log == ["cut"] * 3
    assert os.listdir(tmp_path) == []  # neither a partial file nor the temporary one


def test_cut_connection_succeeds_on_retry(server, tmp_path, labels_file):
    path = get(server, tmp_path, labels_file, ["flaky"])
    assert gzip.decompress(path.read_bytes()) == labels_file[0]
    assert server.log == ["flaky", "flaky"]


def test_cut_connection_falls_back_to_next_mirror(server, tmp_path, labels_file):
    path = get(server, tmp_path, labels_file, ["cut", "ok"], retries=1)
    assert gzip.decompress(path.read_bytes()) == labels_file[0]
    assert server.log == ["cut", "cut", "ok"]
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("stall", ["stall", "stall-body"])
def test_timeout_is_retried_then_next_mirror(server, tmp_path, labels_file, stall):
    start = time.monotonic()
    path = get(server, tmp_path, labels_file, [stall, "ok"], timeout=0.2, retries=1)
    assert time.monotonic() - start < 2
    assert gzip.decompress(path.read_bytes()) == labels_file[0]
    assert server.log == [stall, stall, "ok"]


def test_timeout_everywhere_raises_and_leaves_nothing(server, tmp_path, labels_file):
    with pytest.raises(MnistError, match="(?s)attempt 2 of 2.*Check your network"):
        get(server, tmp_path, labels_file, ["stall-body", "stall"], timeout=0.2, retries=1)
    assert os.listdir(tmp_path) == []


def test_download_creates_the_directory(server, tmp_path, labels_file):
    path = get(server, tmp_path / "a" / "b", labels_file, ["ok"])
    assert path == tmp_path / "a" / "b" / f"{LABELS}.gz"


def test_progress_bar_goes_to_stderr_unless_disabled(server, tmp_path, labels_file, capsys):
    get(server, tmp_path / "quiet", labels_file, ["ok"], progress=False)
    assert capsys.readouterr().err == ""
    get(server, tmp_path / "loud", labels_file, ["ok"], progress=True)
    assert f"{LABELS}.gz" in capsys.readouterr().err


# --- load_mnist with fake files ---


def test_load_mnist_downloads_missing_files_then_uses_the_cache(server, tmp_path, monkeypatch):
    data = fake_mnist()
    server.files.update(use_fake_checksums(monkeypatch, data))
    data_dir = tmp_path / "new" / "dir"
    assert_mnist_equal(
        load_mnist(data_dir, mirrors=[server.url("404"), server.url("ok")], progress=False), data
    )
    assert sorted(os.listdir(data_dir)) == sorted(f"{name}.gz" for name in NAMES)
    assert server.log == ["404", "ok"] * 4
    assert_mnist_equal(load_mnist(data_dir, download_missing=False), data)
    assert len(server.log) == 8  # nothing downloaded the second time


def test_missing_files_offline_are_named(tmp_path):
    (tmp_path / f"{NAMES[0]}.gz").write_bytes(b"present")
    (tmp_path / NAMES[3]).write_bytes(b"present, uncompressed")
    with pytest.raises(MnistError) as info:
        load_mnist(tmp_path, download_missing=False)
    message = str(info.value)
    assert f"missing {NAMES[1]}.gz, {NAMES[2]}.gz " in message  # and only those two
    assert str(tmp_path) in message and "--data-dir" in message and "TINYPRUNE_DATA_DIR" in message


def test_missing_files_with_unreachable_mirror(loopback_only, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(MnistError) as info:
        load_mnist(tmp_path, mirrors=[url], progress=False)
    message = str(info.value)
    assert all(f"{name}.gz" in message for name in NAMES)
    assert f"{url}{NAMES[0]}.gz" in message and "Check your network" in message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "defect, words",
    [
        (lambda d: d._replace(train_labels=d.train_labels[:-1]), "train labels .* one per image"),
        (
            lambda d: d._replace(test_labels=np.array([0, 10, 2], np.uint8)),
            "test labels go up to 10",
        ),
        (
            lambda d: d._replace(test_images=np.zeros((3, 27, 28), np.uint8)),
            r"test images .*\(3, 27, 28\)",
        ),
        (lambda d: d._replace(train_labels=np.zeros((5, 1), np.uint8)), r"train labels .*\(5, 1\)"),
    ],
)
def test_inconsistent_data_set_is_rejected(tmp_path, monkeypatch, defect, words):
    files = use_fake_checksums(monkeypatch, defect(fake_mnist()))
    for name, gz in files.items():
        (tmp_path / f"{name}.gz").write_bytes(gz)
    with pytest.raises(MnistError, match=words):
        load_mnist(tmp_path, download_missing=False)


# --- where the data lives ---


def test_resolve_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("TINYPRUNE_DATA_DIR", raising=False)
    assert resolve_data_dir() == Path("data/mnist")  # relative: to the current directory
    assert resolve_data_dir(None, FASHION_MNIST) == Path("data/fashion-mnist")
    monkeypatch.setenv("TINYPRUNE_DATA_DIR", "")
    assert resolve_data_dir() == Path("data/mnist")  # set but empty counts as unset
    monkeypatch.setenv("TINYPRUNE_DATA_DIR", "/from/env")  # a folder of data-set folders
    assert resolve_data_dir() == Path("/from/env/mnist")
    assert resolve_data_dir(None, KMNIST) == Path("/from/env/kmnist")
    assert resolve_data_dir("from/arg") == Path("from/arg")
    assert resolve_data_dir(Path("/from/path"), FASHION_MNIST) == Path("/from/path")


def test_data_dir_named_after_a_data_set_has_the_others_as_siblings(monkeypatch):
    monkeypatch.setenv("TINYPRUNE_DATA_DIR", "../shared/mnist")  # as CI sets it
    assert resolve_data_dir() == Path("../shared/mnist")
    assert resolve_data_dir(None, FASHION_MNIST) == Path("../shared/fashion-mnist")


def test_data_dir_holding_the_files_itself_is_used_as_it_is(monkeypatch, tmp_path):
    (tmp_path / f"{NAMES[0]}.gz").write_bytes(b"")
    monkeypatch.setenv("TINYPRUNE_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir(None, FASHION_MNIST) == tmp_path


# --- KMNIST: checked by the MD5 of its .gz files; downloaded from a loopback server ---


@pytest.fixture
def fake_kmnist(monkeypatch):
    """KMNIST's registry entry made to accept fake files; -> (data, name -> served .gz bytes)."""
    data = fake_mnist(4, 2)._replace(dataset=KMNIST)
    files = {name: gzip.compress(idx_bytes(array), mtime=0) for name, array in zip(NAMES, data)}
    for name, gz in files.items():
        monkeypatch.setitem(KMNIST.gz_md5, name, hashlib.md5(gz).hexdigest())
    return data, files


def test_kmnist_downloads_and_is_checked_by_the_md5_of_its_gz_files(server, tmp_path, fake_kmnist):
    data, files = fake_kmnist
    server.files.update(files)
    mirrors = [server.url("wrong"), server.url("ok")]  # the first serves other valid gzip
    assert_mnist_equal(
        load_mnist(tmp_path, dataset="kmnist", mirrors=mirrors, progress=False), data
    )
    assert server.log == ["wrong", "ok"] * 4
    assert sorted(os.listdir(tmp_path)) == sorted(f"{name}.gz" for name in NAMES)
    assert all((tmp_path / f"{n}.gz").read_bytes() == gz for n, gz in files.items())
    assert_mnist_equal(load_mnist(tmp_path, download_missing=False, dataset=KMNIST), data)


def test_kmnist_recompressed_is_refused_and_kept(tmp_path, fake_kmnist):
    data, files = fake_kmnist
    for name, gz in files.items():
        (tmp_path / f"{name}.gz").write_bytes(gz)
    (tmp_path / f"{NAMES[1]}.gz").write_bytes(gzip.compress(idx_bytes(data[1]), mtime=1))
    with pytest.raises(MnistError, match="MD5 of the .gz file.*keep it gzip-compressed"):
        load_mnist(tmp_path, download_missing=False, dataset="kmnist")
    assert len(os.listdir(tmp_path)) == 4


# --- the real MNIST ---
# --- the real MNIST ---


@pytest.fixture(scope="module")
def real() -> Mnist:
    """Real MNIST from $TINYPRUNE_DATA_DIR, else from data/mnist (downloaded there if missing)."""
    try:
        return load_mnist(download_missing="TINYPRUNE_DATA_DIR" not in os.environ, progress=False)
    except (MnistError, IdxError) as e:
        error = e  # fail outside the except block, so the message is not printed twice
    pytest.fail(
        f"real MNIST is needed and could not be loaded; set TINYPRUNE_DATA_DIR to a "
        f"directory holding the four MNIST files.\n{error}",
        pytrace=False,
    )


def test_real_mnist_loads(real):
    assert real.train_images.shape == (60000, 28, 28) and real.train_images.dtype == np.uint8
    assert real.train_labels.shape == (60000,) and real.train_labels.dtype == np.uint8
    assert real.test_images.shape == (10000, 28, 28) and real.test_images.dtype == np.uint8
    assert real.test_labels.shape == (10000,) and real.test_labels.dtype == np.uint8
    assert np.bincount(real.train_labels).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(real.test_labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert real.train_labels[:3].tolist() == [5, 0, 4] and real.test_labels[:3].tolist() == [
        7,
        2,
        1,
    ]
    assert real.train_images.min() == 0 and real.train_images.max() == 255
    assert real.train_images[0].sum() == 27525  # the famous first "5", not some other image


@pytest.fixture
def copy_of_real(real, tmp_path) -> Path:
    """tmp_path holding links to the real MNIST files (take_out one to damage it)."""
    for name in NAMES:
        real_path = mnist.find_file(name, resolve_data_dir()).resolve()
        (tmp_path / real_path.name).symlink_to(real_path)
    return tmp_path


def take_out(data_dir: Path, name: str) -> bytes:
    """Remove name's file (or link) from data_dir; return its decompressed content."""
    path = mnist.find_file(name, data_dir)
    content = read_bytes(path)
    path.unlink()
    return content


def test_uncompressed_files_are_accepted(real, copy_of_real):
    (copy_of_real / NAMES[3]).write_bytes(take_out(copy_of_real, NAMES[3]))
    assert_mnist_equal(load_mnist(copy_of_real, download_missing=False), real)


def test_one_changed_byte_fails_the_checksum(copy_of_real):
    content = bytearray(take_out(copy_of_real, NAMES[3]))
    content[8] = (content[8] + 1) % 10  # the first test label: still a valid digit
    path = copy_of_real / f"{NAMES[3]}.gz"
    path.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(MnistError, match=f"{path}: not MNIST's file by its SHA-256 .*corrupt"):
        load_mnist(copy_of_real, download_missing=False)


def test_truncated_gzip_is_reported(copy_of_real):
    gz = gzip.compress(take_out(copy_of_real, NAMES[3]))
    path = copy_of_real / f"{NAMES[3]}.gz"
    path.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(
        IdxError, match=f"{path}: corrupt gzip stream .* delete it and download again"
    ):
        load_mnist(copy_of_real, download_missing=False)


def test_truncated_uncompressed_file_is_reported(copy_of_real):
    path = copy_of_real / NAMES[1]
    path.write_bytes(take_out(copy_of_real, NAMES[1])[:-100])
    with pytest.raises(MnistError, match=f"{path}: not MNIST's file .*corrupt"):
        load_mnist(copy_of_real, download_missing=False)


# --- a folder holding another data set ---


@pytest.fixture(scope="module")
def fashion_dir() -> Path:
    """The Fashion-MNIST folder: a sibling of $TINYPRUNE_DATA_DIR's mnist (../shared/ in CI)."""
    path = resolve_data_dir(None, FASHION_MNIST)
    if all(mnist.find_file(name, path) for name in NAMES):
        return path
    message = f"Fashion-MNIST is needed in {path.resolve()} (beside MNIST's folder)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def test_real_fashion_mnist_loads(fashion_dir):
    data = load_mnist(fashion_dir, download_missing=False, dataset="fashion-mnist")
    assert data.dataset is FASHION_MNIST and data.dataset.classes[9] == "Ankle boot"
    assert data.train_images.shape == (60000, 28, 28) and data.test_images.shape == (10000, 28, 28)
    assert np.bincount(data.train_labels).tolist() == [6000] * 10
    pixels = data.train_images / 255.0  # the mean and std the registry normalises with
    assert abs(pixels.mean() - FASHION_MNIST.mean) < 1e-4
    assert abs(pixels.std() - FASHION_MNIST.std) < 1e-4


def test_fashion_mnist_files_are_named_not_called_corrupt_nor_touched(
    fashion_dir, tmp_path, loopback_only
):
    for name in NAMES[:3]:  # one file missing: nothing may be downloaded beside the others
        real_path = mnist.find_file(name, fashion_dir).resolve()
        (tmp_path / real_path.name).symlink_to(real_path)
    before = sorted(os.listdir(tmp_path))
    unreachable = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(WrongDataset) as info:
        load_mnist(tmp_path, mirrors=[unreachable], progress=False)
    message = str(info.value)
    assert "these are the Fashion-MNIST files, not MNIST" in message
    assert "add --dataset fashion-mnist" in message
    assert "corrupt" not in message and "elete" not in message and unreachable not in message
    assert sorted(os.listdir(tmp_path)) == before


def test_the_run_names_the_data_set_it_was_pointed_at(fashion_dir, tmp_path, capsys):
    from tinyprune.run import main

    assert main(["--data-dir", str(fashion_dir), "--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "these are the Fashion-MNIST files, not MNIST; add --dataset fashion-mnist" in error
    assert "Traceback" not in error and "corrupt" not in error
