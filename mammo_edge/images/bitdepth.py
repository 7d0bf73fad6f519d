"""High-bit data in 16-bit containers: how many bits a 10/12/14-bit image really uses.

Shared by the readers of PNG/TIFF (:mod:`mammo_edge.images.decode`) and DICOM
(:mod:`mammo_edge.images.dicom`), which both scale such data over its own range, not 16 bits.
"""

from __future__ import annotations

import numpy as np

#: Bit depths of high-bit data found in 16-bit containers without saying so
#: (:func:`high_bit_depth`); 16-bit data is the container's own range.
HIGH_BIT_DEPTHS = (10, 12, 14)


def high_bit_depth(values: np.ndarray, container_bits: int = 16) -> int | None:
    """The bit depth of high-bit data stored unscaled in a 16-bit container, or ``None``.

    The smallest of :data:`HIGH_BIT_DEPTHS` that holds the largest value: 12-bit data
    (0..4095) in a 16-bit PNG gives 12. ``None`` when the values need all 16 bits (or the
    container is not 16-bit), so they map over the full range.
    """
    if container_bits != 16 or values.size == 0:
        return None
    used_bits = int(values.max()).bit_length()
    return next((depth for depth in HIGH_BIT_DEPTHS if used_bits <= depth), None)
