"""Stage 1, data: the IDX file format, finding and verifying MNIST, and images made input."""
