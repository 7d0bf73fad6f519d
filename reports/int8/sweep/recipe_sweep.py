import os
import sys, time, json, tempfile, numpy as np, onnx, onnxruntime as ort
from pathlib import Path
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static, CalibrationMethod
from onnxruntime.quantization.shape_inference import quant_pre_process
from mammo_edge.metrics import roc_auc
d = np.load('reports/int8/sweep/cache/mias.npz'); batch, labels = d['batch'], d['labels']
name = sys.argv[1]; method = sys.argv[2]; excl = sys.argv[3]; ncal = int(sys.argv[4]); extra = json.loads(sys.argv[5]) if len(sys.argv)>5 else {}
src = 'mammo_edge/models/lite0.onnx'
pre = 'reports/int8/sweep/cache/pre.onnx'
if not Path(pre).exists():
    quant_pre_process(src, pre, skip_symbolic_shape=True)
m = onnx.load(pre)
convs = [n for n in m.graph.node if n.op_type == 'Conv']
print('nodes after pre', len(m.graph.node), 'convs', len(convs), file=sys.stderr)
exclude = []
if 'first' in excl: exclude.append(convs[0].name)
if 'head' in excl:
    # everything from the lesion (cell logit) conv onward
    names=[n.name for n in m.graph.node]
    i = names.index(convs[-1].name); exclude += names[i:]
consumers={}
for n in m.graph.node:
    for i in n.input: consumers.setdefault(i,[]).append(n)
def grp(n):
    g=[a.i for a in n.attribute if a.name=='group']
    if g and g[0]>1: return 'dw'
    nxt=consumers.get(n.output[0],[])
    return 'expand' if any(c.op_type=='Clip' for c in nxt) else 'proj'
for g in ('dw','proj','expand'):
    if g in excl.split(','): exclude += [n.name for n in convs[1:-2] if grp(n)==g]
if 'add' in excl.split(','): exclude += [n.name for n in m.graph.node if n.op_type=='Add']
if 'headconv' in excl:
    exclude.append(convs[-2].name)
# calibration subset: every k-th image
idx = np.linspace(0, len(batch)-1, ncal).round().astype(int)
cal = batch[idx]
class R(CalibrationDataReader):
    def __init__(s): s.it = iter([{'image': cal[i:i+8]} for i in range(0, len(cal), 8)])
    def get_next(s): return next(s.it, None)
out = f'reports/int8/sweep/cache/{name}.onnx'
t=time.time()
quantize_static(pre, out, R(), quant_format=QuantFormat.QDQ, activation_type=getattr(QuantType, os.environ.get('ACT','QInt8')), weight_type=QuantType.QInt8,
    per_channel=True, calibrate_method=getattr(CalibrationMethod, method), nodes_to_exclude=exclude, extra_options=extra)
tq=time.time()-t
def probs(path):
    o=ort.SessionOptions(); o.intra_op_num_threads=1
    s=ort.InferenceSession(path, o, providers=['CPUExecutionProvider'])
    return np.concatenate([s.run(['probability'],{'image':batch[i:i+16]})[0] for i in range(0,len(batch),16)]).ravel()
if not Path('reports/int8/sweep/cache/fp32p.npy').exists(): np.save('reports/int8/sweep/cache/fp32p.npy', probs(src))
pf = np.load('reports/int8/sweep/cache/fp32p.npy'); pi = probs(out)
held = np.setdiff1d(np.arange(len(batch)), idx)
r = dict(name=name, method=method, excl=excl, ncal=ncal, extra=extra, n_excluded=len(exclude), quant_s=round(tq,1),
  dauc=roc_auc(labels,pi)-roc_auc(labels,pf), dauc_held=roc_auc(labels[held],pi[held])-roc_auc(labels[held],pf[held]),
  maxdp=float(np.abs(pi-pf).max()), meandp=float(np.abs(pi-pf).mean()), agree=float(np.mean((pi>=0.253401)==(pf>=0.253401))))
print(json.dumps(r)); open('reports/int8/sweep/results.jsonl','a').write(json.dumps(r)+'\n')
