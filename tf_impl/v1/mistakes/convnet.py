"""Seed 001's own bug in TF1: a summary op created inside the training loop."""

from __future__ import annotations

from tf_impl.v1.convnet import ConvnetPort

__all__ = ["MISTAKES", "SummaryInLoop"]


def _kernel_grid(tf, kernel, rows: int, cols: int, pad: int = 1):
    """Tile a ``[kh, kw, 1, n]`` kernel into one ``[1, H, W, 1]`` uint8 image (n = rows * cols)."""
    lo, hi = tf.reduce_min(kernel), tf.reduce_max(kernel)
    scaled = (kernel - lo) / (hi - lo)
    padded = tf.pad(scaled, [[pad, pad], [pad, pad], [0, 0], [0, 0]])
    kh, kw = int(padded.shape[0]), int(padded.shape[1])
    tiles = tf.reshape(tf.transpose(padded, (3, 0, 1, 2)), [rows, cols, kh, kw])
    image = tf.reshape(tf.transpose(tiles, (0, 2, 1, 3)), [1, rows * kh, cols * kw, 1])
    return tf.image.convert_image_dtype(image, tf.uint8, saturate=True)


class SummaryInLoop(ConvnetPort):
    """The seed's ``tf.image_summary('conv1/features' + str(i), grid)`` on every iteration.

    Each call adds an op to the graph, which then grows every step; the finalized graph
    makes the port refuse with "the port creates ops inside its training loop".
    """

    def define(self, tf, tf1):
        super().define(tf, tf1)
        self._grid = _kernel_grid(tf, self.variables["wc1"], 4, 8)
        self._summaries = 0

    def _step(self, batch):
        with self.graph.as_default():  # the bug: a new op per step
            self.tf1.summary.image(f"conv1/features{self._summaries}", self._grid, max_outputs=1)
        self._summaries += 1
        return super()._step(batch)


MISTAKES = {"summary_in_loop": SummaryInLoop}
