"""Synthetic worlds made here: the two-event clips of the demo and the multi-event scenes of the quality benchmark."""
