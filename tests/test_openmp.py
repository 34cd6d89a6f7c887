"""tinyprune asks numba's OpenMP threads to sleep, not spin, while they wait (see
tinyprune/__init__.py), unless the user chose a wait policy."""

import os
import subprocess
import sys

import pytest

PROBE = "import tinyprune, os; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize("user_value, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_wait_policy_is_passive_unless_the_user_set_one(user_value, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user_value is not None:
        env["OMP_WAIT_POLICY"] = user_value
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    assert probe.stdout.strip() == expected
