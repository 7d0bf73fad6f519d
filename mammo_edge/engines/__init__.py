"""Engines that run the per-image steps of :mod:`mammo_edge.pipeline` at scale.

The local engine is :meth:`mammo_edge.predictor.Predictor.iter_predict` (a thread pool in
this process). :mod:`mammo_edge.engines.ray_engine` runs the same steps on Ray Data.
"""
