"""Softmax cross-entropy: the loss and its gradient with respect to the logits."""

from __future__ import annotations

import numpy as np


class SoftmaxCrossEntropy:
    """Mean over the batch of -log softmax(logits)[label]."""

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """logits (N, classes) float, labels (N,) int -> mean loss."""
        # Subtracting the row maximum changes nothing mathematically but keeps exp() finite.
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.probs = np.exp(log_probs)
        self.labels = labels
        return float(-log_probs[np.arange(len(labels)), labels].mean())

    def backward(self) -> np.ndarray:
        """-> d(loss)/d(logits) (N, classes) = (softmax - one_hot) / N."""
        grad = self.probs.copy()
        grad[np.arange(len(self.labels)), self.labels] -= 1
        return grad / len(self.labels)
