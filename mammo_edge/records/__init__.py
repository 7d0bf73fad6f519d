"""Records: the one result every input yields, and how it is written and read back.

:mod:`.record` defines :class:`PredictionResult` (the schema of docs/runtime.md) and its
one reader; :mod:`.writers` writes it as table, CSV, JSON or JSON Lines;
:mod:`.outputs` opens an output safely (atomic files, closed pipes); :mod:`.resume`
continues an interrupted run from what it wrote.
"""

from ..lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "PredictionResult": "record",
        "read_records": "record",
        "RESULT_FIELDS": "record",
    },
)
