import sys, time, numpy as np, onnxruntime as ort
x = np.load('reports/int8/sweep/cache/mias.npz')['batch'][:2].copy()
paths = ['mammo_edge/models/lite0.onnx', 'mammo_edge/models/lite0-int8.onnx']
ss = {}
for p in paths:
    for spin in ('1', '0'):
        o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
        o.add_session_config_entry('session.intra_op.allow_spinning', spin)
        ss[(p, spin)] = ort.InferenceSession(p, o, providers=['CPUExecutionProvider'])
        for _ in range(3): ss[(p, spin)].run(None, {'image': x})
wall = {k: [] for k in ss}; cpu = {k: [] for k in ss}
for r in range(10):
    for k, s in ss.items():
        t = time.perf_counter(); c = time.process_time()
        for _ in range(4): s.run(None, {'image': x})
        wall[k].append((time.perf_counter() - t) / 8 * 1000); cpu[k].append((time.process_time() - c) / 8 * 1000)
for k in ss:
    print(f'{k[0]} spinning={k[1]}: wall {np.median(wall[k]):.2f} ms/image, CPU {np.median(cpu[k]):.2f} ms/image (batch 2, 2 threads)')
