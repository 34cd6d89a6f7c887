"""Stage 2, kernels: numba kernels (conv.py, pool.py, conv_pool.py for a convolution and the
pooling and ReLU after it as one pass, conv_gemm.py for the backward to the input of
convolutions with many taps, and sparse.py for pruned models), each with its plain-NumPy twin
`<kernel>_numpy` beside it; threads.py splits a batch's images between the cores, matmul.py
large matrix products, and precompile.py a first run's compiling.

Kernels are plain functions over arrays and ints that return new arrays; the layers in
`tinyprune.nn.layers` own the parameters and call them. Each works for float32 and float64.
"""
