"""Latency, throughput and footprint benchmarks."""
