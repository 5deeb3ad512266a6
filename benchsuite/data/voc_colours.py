"""The Pascal VOC colour map and the mask conventions shared by the segmentation reader and the synthetic
generator (kept apart from both so that the generator need not import the reader)."""

from __future__ import annotations

import numpy as np

#: the value of void (unlabelled, never scored) pixels in VOC masks and in decoded label maps
VOID = 255
#: VOC's void colour (the colour map's entry 255)
VOID_COLOUR = (224, 224, 192)
#: CVAT's class list beside the masks: ``name:r,g,b:parts:actions`` lines
LABELMAP = "labelmap.txt"


def voc_palette(n: int = 256) -> np.ndarray:
    """``(n, 3)`` uint8 the Pascal VOC colour map: entry ``i`` spreads the bits of ``i`` over the channels,
    most significant first (0 black, 15 ``192,128,128``, 255 ``224,224,192``)."""
    index = np.arange(n, dtype=np.int64)
    out = np.zeros((n, 3), np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (index >> (3 * shift + channel)) & 1
            out[:, channel] |= bit << (7 - shift)
    return out.astype(np.uint8)
