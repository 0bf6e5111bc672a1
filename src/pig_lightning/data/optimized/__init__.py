"""Decode-once datasets (litdata): writing them (`optimize`), their format and streaming them in training."""
