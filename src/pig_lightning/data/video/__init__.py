"""Video in: PyAV decoding, frame folders, clip reading, frame sampling, pixel transforms, re-encoding (`preprocess`)."""
