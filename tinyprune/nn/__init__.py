"""Stage 3, the network: layers (forward and backward side by side), the loss, the masked
optimizer, and the models built from them. The arithmetic lives in tinyprune.kernels (stage 2)."""
