import sys, time, numpy as np, onnxruntime as ort
threads=int(sys.argv[1]); paths = sys.argv[2:]
x = np.load('reports/int8/sweep/cache/mias.npz')['batch'][:1].copy()
ss = {}
for p in paths:
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    if threads>1: o.add_session_config_entry('session.intra_op.allow_spinning','0')
    ss[p] = ort.InferenceSession(p, o, providers=['CPUExecutionProvider'])
    for _ in range(3): ss[p].run(None, {'image': x})
wall = {p: [] for p in paths}; cpu={p: [] for p in paths}
for r in range(12):
    for p in paths:
        t = time.perf_counter(); c=time.process_time()
        for _ in range(4): ss[p].run(None, {'image': x})
        wall[p].append((time.perf_counter() - t) / 4); cpu[p].append((time.process_time()-c)/4)
bw = np.median(wall[paths[0]]); bc=np.median(cpu[paths[0]])
for p in paths:
    print(f'{threads}t {p}: wall {np.median(wall[p])*1000:.1f} ms ({bw/np.median(wall[p]):.2f}x), cpu {np.median(cpu[p])*1000:.1f} ms ({bc/np.median(cpu[p]):.2f}x)')
