"""`python -m tinyprune.export RUN_DIR --format {c,tflite,onnx}`: each format from a run's
folder, the C export's older name, and the errors a user meets."""

import json
import subprocess
import sys

import pytest
from helpers import skip_without

from tinyprune.cli.export import main
from tinyprune.deploy.int8_model import Int8Model
from tinyprune.nn.model import lenet5
from tinyprune.prune.criteria import prune

skip_without("onnx", "flatbuffers")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run's folder as `python -m tinyprune.run` leaves it, for the files export reads."""
    out = tmp_path_factory.mktemp("run")
    model = lenet5(0)
    prune(model, 0.5)
    model.save(out / "pruned.npz", with_masks=True)
    (out / "result.json").write_text(json.dumps({"model": "lenet5", "dataset": "mnist"}))
    return out


@pytest.mark.parametrize(
    "options, files",
    [
        (["--format", "c"], ["lenet5.c", "lenet5.h", "lenet5_main.c"]),
        (["--format", "c", "--int8"], ["lenet5_int8.c", "lenet5_int8.h", "lenet5_int8_main.c"]),
        (["--format", "tflite"], ["lenet5.tflite"]),
        (["--format", "onnx"], ["lenet5.onnx"]),
    ],
)
def test_each_format_from_a_run_folder(run_dir, tmp_path, capsys, options, files):
    assert main([str(run_dir), *options, "--calibration", "100", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    printed = capsys.readouterr().out
    assert all(f"wrote {tmp_path / name}" in printed for name in files)


def test_tflite_holds_the_int8_model_the_c_export_computes(run_dir, tmp_path):
    """The .tflite is the same Int8Model the C export writes: calibrated the same way."""
    from tinyprune.data.mnist import load_mnist
    from tinyprune.deploy import tflite

    main([str(run_dir), "--format", "tflite", "--calibration", "100", "--out", str(tmp_path)])
    model = lenet5(0)
    model.load(run_dir / "pruned.npz")
    q = Int8Model(model, load_mnist().train_images[:100])
    tflite.write(q, tmp_path / "again.tflite")
    same = (tmp_path / "again.tflite").read_bytes() == (tmp_path / "lenet5.tflite").read_bytes()
    assert same


def test_errors_say_what_to_do(run_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--out", str(tmp_path / "x")])  # no result.json
    assert "is not a run's folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(run_dir), "--file", "none.npz", "--out", str(tmp_path / "x")])
    assert "none.npz does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(run_dir), "--format", "pdf", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


def test_a_missing_extra_is_named(run_dir, tmp_path):
    """Without onnx installed the command says which extra brings it, and writes nothing."""
    blocked = "import sys; sys.modules['onnx'] = None; from tinyprune.cli.export import main; "
    call = f"sys.exit(main([{str(run_dir)!r}, '--format', 'onnx', '--out', {str(tmp_path)!r}]))"
    result = subprocess.run([sys.executable, "-c", blocked + call], capture_output=True, text=True)
    assert result.returncode == 1
    assert "pip install -e '.[export]'" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_export_c_is_export_with_format_c(run_dir, tmp_path):
    args = [str(run_dir / "pruned.npz"), "--out", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "tinyprune.export_c", *args], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.c", "lenet5.h", "lenet5_main.c"]
    assert result.stdout.startswith(f"wrote {tmp_path / 'lenet5.c'}")
