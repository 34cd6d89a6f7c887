"""tinyprune: LeNet-5 trained, pruned and fine-tuned with hand-written NumPy and numba."""

import os

# numba runs its parallel kernels (sparse inference, kernels/sparse.py; the training kernels
# use Python threads instead, see kernels/threads.py) on GNU OpenMP, whose idle threads spin
# while they wait for work. When something else wants the cores (a second run, a build, a
# browser) the spinning steals its time: on 2 cores two runs at once each took 3.6-4.7x as
# long as one alone with spinning threads, 1.8x with sleeping ones, which cost about 3% alone
# (python benchmarks/contention.py, when training still ran on OpenMP). Set before numba
# loads OpenMP; the user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
