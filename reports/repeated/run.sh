#!/usr/bin/env bash
# Repeated patient-grouped CV of the lite0 recipe: three patient splits (seeds 0, 1, 2),
# fold weights kept for inference-time variants. Resumable per fold.
cd "$(dirname "$0")/../.."
for seed in 0 1 2; do
  .venv/bin/python -m train --arch lite0 --data ../shared/mias/all-mias.tar.gz \
     --out runs/repeated/seed_$seed --seed $seed --no-final-model
done
echo ALL DONE
