"""The lottery-ticket experiment: pruning rates per round, rewinding, the batches of a
training started at any iteration, and a tiny study end to end (resumed, and on 2 workers)."""

import json

import numpy as np
import pytest
from helpers import without_seconds

from tinyprune.cli import lottery
from tinyprune.experiments.lottery import (
    PRUNE_RATES,
    TicketOptions,
    _start,
    next_masks,
    reinit_seed,
    remaining,
)
from tinyprune.nn.model import lenet_300_100
from tinyprune.train.steps import batches


def test_each_round_prunes_20_percent_of_hidden_and_10_of_output_weights_left():
    model = lenet_300_100(seed=0)
    params = model.prunable()
    for round_no in (1, 2, 3):
        before = {
            n: (p.mask.copy() if p.mask is not None else np.ones(p.value.shape, bool))
            for n, p in params.items()
        }
        masks = next_masks(params)
        for name, mask in masks.items():
            alive = int(before[name].sum())
            assert int(mask.sum()) == alive - round(PRUNE_RATES[name] * alive), name
            assert not np.any(mask & ~before[name]), name  # pruned weights stay pruned
            w = np.abs(params[name].value)
            assert w[mask].min() >= w[before[name] & ~mask].max(), name  # smallest |w| went
            params[name].mask = mask
            params[name].value *= mask
            params[name].value += 0.001 * mask  # training moves the survivors on
        shares = remaining(model)
        assert shares["fc1"] == pytest.approx(0.8**round_no, abs=1e-4)
        assert shares["fc3"] == pytest.approx(0.9**round_no, abs=1e-3)


def test_batches_started_at_any_iteration_are_those_of_a_run_from_zero():
    full = list(batches(50, 8, seed=3, start=0, stop=20))  # 6 batches an epoch
    assert all(len(b) == 8 for b in full)
    assert len(set(np.concatenate(full[:6]))) == 48  # an epoch: no image twice
    for start in (1, 6, 13):
        late = list(batches(50, 8, seed=3, start=start, stop=20))
        assert all(np.array_equal(a, b) for a, b in zip(late, full[start:], strict=True))
    with pytest.raises(ValueError, match="larger than the 5 training images"):
        next(batches(5, 8, 0, 0, 1))


def test_rewound_ticket_starts_from_the_init_and_reinit_from_fresh_weights():
    init = lenet_300_100(seed=4).state()
    rewound, start = _start(TicketOptions(seed=4, kind="rewind", round=3), None, None)
    assert start == 0 and all(np.array_equal(v, init[k]) for k, v in rewound.state().items())
    fresh, _ = _start(TicketOptions(seed=4, kind="reinit", round=3), None, None)
    assert not np.array_equal(fresh.state()["fc1.weight"], init["fc1.weight"])
    assert reinit_seed(4, 3) != reinit_seed(4, 2) and reinit_seed(4, 3) != reinit_seed(5, 3)
    with pytest.raises(ValueError, match="round 0 is the dense network"):
        TicketOptions(seed=0, kind="reinit", round=0)
    with pytest.raises(ValueError, match="kind must be one of rewind, reinit"):
        TicketOptions(seed=0, kind="winning", round=1)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--seeds", "0,x", "expected whole numbers separated by commas"),
        ("--seeds", "1,1", "a seed is repeated"),
        ("--rewind-iteration", "100", "--rewind-iteration must be below --iterations"),
        ("--jobs", "0", "must be at least 1"),
    ],
)
def test_bad_options_exit_2_with_one_line(option, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        lottery.main([option, value, "--iterations", "100"])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


TINY = [
    "--limit",
    "600",
    "--validation",
    "500",
    "--iterations",
    "40",
    "--eval-every",
    "10",
    "--rounds",
    "2",
    "--seeds",
    "0,1",
]


@pytest.mark.slow
def test_tiny_study_resumes_and_gives_the_same_bits_on_two_workers(tmp_path, capsys):
    """Real MNIST: 600 training images, 40 iterations a training, 2 rounds, 2 seeds."""
    assert lottery.main(TINY + ["--out", str(tmp_path / "one")]) == 0
    out = capsys.readouterr().out
    assert "seed 1 reinit round  2" in out and "10 trainings run now" in out
    study = json.loads((tmp_path / "one" / "lottery.json").read_text())
    rows = {(r["kind"], r["round"]): r for r in study["summary"]}
    assert sorted(rows) == [
        ("reinit", 1),
        ("reinit", 2),
        ("rewind", 0),
        ("rewind", 1),
        ("rewind", 2),
    ]
    # fc1 (235,200 weights) and fc2 (30,000) at 64%, fc3 (1,000) at 81%
    assert (
        rows["rewind", 2]["remaining"]
        == rows["reinit", 2]["remaining"]
        == (150528 + 19200 + 810) / (235200 + 30000 + 1000)
    )
    for row in rows.values():
        assert row["seeds"] == [0, 1] and 0.3 < row["test_accuracy"]["mean"] <= 1
        assert row["early_stop_iteration"]["mean"] in range(0, 41, 5)
    # Again: everything is read back, nothing trained.
    assert lottery.main(TINY + ["--out", str(tmp_path / "one")]) == 0
    assert "0 trainings run now, 10 read from" in capsys.readouterr().out
    assert without_seconds(
        json.loads((tmp_path / "one" / "lottery.json").read_text())
    ) == without_seconds(study)
    # On two worker processes: the same numbers, bit for bit.
    assert lottery.main(TINY + ["--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    two = json.loads((tmp_path / "two" / "lottery.json").read_text())
    del two["config"]["jobs"], study["config"]["jobs"]
    assert without_seconds(two) == without_seconds(study)
