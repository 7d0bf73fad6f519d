import time, numpy as np, onnx
import os; os.makedirs('reports/int8/sweep/cache', exist_ok=True)
from mammo_edge.metadata import ModelMetadata
from export.provenance import read_metadata_props
from export.images import load_mias_batch
from pathlib import Path
m = onnx.load('mammo_edge/models/lite0.onnx')
md = ModelMetadata.from_props(read_metadata_props(m), source='lite0')
t=time.time()
d = load_mias_batch(Path('../shared/mias/all-mias.tar.gz'), md.preprocess)
print(time.time()-t, d.batch.shape, d.batch.dtype)
np.savez('reports/int8/sweep/cache/mias.npz', batch=d.batch, labels=d.labels, refs=np.array(d.references))
