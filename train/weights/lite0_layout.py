"""EfficientNet-Lite0's layout, shared by the Keras definition and the weight converter.

Kept free of Keras and torch imports: the converter runs in a throwaway torch venv and
imports this file by path.
"""

#: (expand ratio, kernel, stride, output channels, repeats) per stage; Lite0 = B0 scaling
#: without squeeze-excite, ReLU6 activations, a fixed 32-channel stem and 1280-channel head.
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
BN_EPSILON = 1e-3
