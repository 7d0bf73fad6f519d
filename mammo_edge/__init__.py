"""mammo-edge: flag abnormal mammograms with a small CNN through onnxruntime (research use only)."""

__version__ = "0.1.0"
