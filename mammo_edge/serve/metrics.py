"""The service's counters, rendered in the Prometheus text exposition format (version 0.0.4).

Written by hand: a handful of counters and one histogram do not need a client library.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

#: Upper bounds (seconds) of the request latency histogram's buckets.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Thread-safe counters of one service process.

    Args:
        queue_depth: returns the work waiting now (HTTP requests queued plus received
            instances not yet scored); read at each scrape.
        failed_studies: returns the studies in ``spool/failed/`` now; read at each scrape.
    """

    def __init__(
        self,
        queue_depth: Callable[[], int] = lambda: 0,
        failed_studies: Callable[[], int] = lambda: 0,
    ) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._bucket_counts = [0] * len(LATENCY_BUCKETS)
        self._latency_sum = 0.0
        self._latency_count = 0
        self.instances = {"received": 0, "scored": 0, "failed": 0, "quarantined": 0}
        self.queue_depth = queue_depth
        self.failed_studies = failed_studies

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency."""
        with self._lock:
            self._requests[(method, route, status)] += 1
            self._latency_sum += seconds
            self._latency_count += 1
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self._bucket_counts[index] += 1

    def instance(self, outcome: str, count: int = 1) -> None:
        """Count instances ``received``, ``scored`` (a probability), ``failed`` (an error row)
        or ``quarantined`` (their study moved to ``spool/failed/``)."""
        with self._lock:
            self.instances[outcome] += count

    def render(self) -> str:
        """The metrics as Prometheus text."""
        with self._lock:
            lines = [
                "# HELP mammo_edge_http_requests_total HTTP requests answered.",
                "# TYPE mammo_edge_http_requests_total counter",
            ]
            for (method, route, status), count in sorted(self._requests.items()):
                lines.append(
                    f'mammo_edge_http_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {count}'
                )
            lines += [
                "# HELP mammo_edge_http_request_seconds HTTP request latency.",
                "# TYPE mammo_edge_http_request_seconds histogram",
            ]
            for bound, count in zip(LATENCY_BUCKETS, self._bucket_counts, strict=True):
                lines.append(f'mammo_edge_http_request_seconds_bucket{{le="{bound}"}} {count}')
            lines.append(
                f'mammo_edge_http_request_seconds_bucket{{le="+Inf"}} {self._latency_count}'
            )
            lines.append(f"mammo_edge_http_request_seconds_sum {self._latency_sum:.6f}")
            lines.append(f"mammo_edge_http_request_seconds_count {self._latency_count}")
            for outcome, count in self.instances.items():
                name = f"mammo_edge_instances_{outcome}_total"
                lines += [
                    f"# HELP {name} DICOM instances {outcome}.",
                    f"# TYPE {name} counter",
                    f"{name} {count}",
                ]
        lines += [
            "# HELP mammo_edge_queue_depth Work waiting: HTTP requests queued plus received "
            "instances not yet scored.",
            "# TYPE mammo_edge_queue_depth gauge",
            f"mammo_edge_queue_depth {self.queue_depth()}",
            "# HELP mammo_edge_failed_studies Studies quarantined in spool/failed/ (not retried "
            "until moved back to spool/incoming/).",
            "# TYPE mammo_edge_failed_studies gauge",
            f"mammo_edge_failed_studies {self.failed_studies()}",
        ]
        return "\n".join(lines) + "\n"
