"""Querying an index: single-encoder and fused queries, fusion weights, hubness correction, k-NN graphs.

Imports core, encoders, store, index.
"""
