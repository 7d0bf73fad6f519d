"""``mammo-edge bench``'s measuring core: how fast this machine scores, model alone and end
to end, with runtime dependencies only.

The development suite (``benchmarks/``) times through the same functions.

- :mod:`.machine`: :class:`MachineFacts` (CPU, cores, ISA flags, GPU, onnxruntime);
- :mod:`.timing`: warm-up and repeats (:func:`time_calls`), :func:`summarize`, :func:`spread`;
- :mod:`.model_alone`: batch search, one pass's images/s, batch-1 latency;
- :mod:`.end_to_end`: the files screened, then ``Predictor.iter_predict`` timed;
- :mod:`.process`: fresh ``mammo-edge predict`` children (cold start, peak RSS);
- :mod:`.images`: the built-in synthetic image set;
- :mod:`.run`: :func:`run_bench` and its records (:class:`BenchRow`, :class:`BenchReport`);
- :mod:`.report`: the JSON object, CSV and terminal table.
"""

from __future__ import annotations

from mammo_edge.bench.machine import MachineFacts, machine_facts
from mammo_edge.bench.run import (
    ROW_FIELDS,
    BenchError,
    BenchReport,
    BenchResult,
    BenchRow,
    BenchSettings,
    all_models,
    default_devices,
    default_models,
    run_bench,
)
from mammo_edge.bench.timing import (
    LatencySummary,
    RepeatPolicy,
    Spread,
    spread,
    summarize,
    time_calls,
)

__all__ = [
    "ROW_FIELDS",
    "BenchError",
    "BenchReport",
    "BenchResult",
    "BenchRow",
    "BenchSettings",
    "LatencySummary",
    "MachineFacts",
    "RepeatPolicy",
    "Spread",
    "all_models",
    "default_devices",
    "default_models",
    "machine_facts",
    "run_bench",
    "spread",
    "summarize",
    "time_calls",
]
