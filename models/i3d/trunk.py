"""Windows pooled from the trunk's positions, as I3D's own head pools them: one pass of the trunk (up to
Mixed_5c, convolutional in time, a position every 8 frames) over a long stretch serves every window in it
(`models.recognition.shared_trunk`), and conversion checks the SavedModel's `trunk` signature with it.

A window of `clip_len` frames from frame `s` (a multiple of 8) covers positions `s/8 .. s/8 + clip_len/8 - 1`;
the head's 2x7x7 VALID average pool then the mean over time weigh each position 2, its first and last 1.
"""

from __future__ import annotations

import numpy as np

TRUNK_STRIDE = 8  # frames per Mixed_5c position


def pool_weights(positions: int) -> np.ndarray:
    """`(positions,)` weights of the 2-wide VALID average pool followed by the mean over time."""
    weights = np.full(positions, 2.0, np.float32)
    weights[[0, -1]] = 1.0
    return weights / weights.sum()


def pool_windows(positions: np.ndarray, starts: list[int], clip_len: int, kernel: np.ndarray,
                 bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`positions: (P, 1024)` Mixed_5c space-means from frame 0; windows starting at `starts` (multiples of 8)
    -> `logits: (N, 400)`, `features: (N, 1024)` as the network's head would make them."""
    span = clip_len // TRUNK_STRIDE
    weights = pool_weights(span)
    features = np.stack([weights @ positions[s // TRUNK_STRIDE : s // TRUNK_STRIDE + span] for s in starts])
    return features @ kernel + bias, features
