import numpy as np, onnx, sys
from onnxruntime.quantization.qdq_loss_debug import modify_model_output_intermediate_tensors, collect_activations, create_activation_matching, compute_activation_error
from onnxruntime.quantization import CalibrationDataReader
d=np.load('reports/int8/sweep/cache/mias.npz'); b=d['batch'][::32][:8]
class R(CalibrationDataReader):
    def __init__(s): s.it=iter([{'image':b[i:i+1]} for i in range(len(b))])
    def get_next(s): return next(s.it,None)
qd=sys.argv[1]
modify_model_output_intermediate_tensors('reports/int8/sweep/cache/pre.onnx','reports/int8/sweep/cache/dbg_f.onnx')
modify_model_output_intermediate_tensors(qd,'reports/int8/sweep/cache/dbg_q.onnx')
fa=collect_activations('reports/int8/sweep/cache/dbg_f.onnx',R()); qa=collect_activations('reports/int8/sweep/cache/dbg_q.onnx',R())
m=create_activation_matching(qa,fa)
err=compute_activation_error(m)
m0=onnx.load('reports/int8/sweep/cache/pre.onnx'); order={o:i for i,n in enumerate(m0.graph.node) for o in n.output}
rows=sorted(((order.get(k,999),k,v.get('xmodel_err'),v.get('qdq_err')) for k,v in err.items()))
for r in rows: print(r[0], r[1][-50:], 'xmodel %.1f'%r[2] if r[2] is not None else '', 'qdq %.1f'%r[3] if r[3] is not None else '')
