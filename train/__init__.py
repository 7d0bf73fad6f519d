"""Training: MIAS reader, protocols, the seed CNN and its evaluation (needs the train extra)."""
