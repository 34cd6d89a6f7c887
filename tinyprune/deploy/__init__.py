"""Stage 6, deployment: the compressed file format, a pruned model run by sparse kernels, and
its export as C."""
