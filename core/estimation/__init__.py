"""Sizing before anyone applies: hardware catalog, training compute and memory, recommendation,
inference sizing from load tests. Pure functions over plain dataclasses; no I/O except reading
the catalog files in ``data/``."""
