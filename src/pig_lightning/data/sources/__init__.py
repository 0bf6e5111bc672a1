"""Annotation files: the record type, the six benchmarks' formats and their conversion to JSON lines."""
