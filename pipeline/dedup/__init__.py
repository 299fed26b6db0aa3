"""Duplicate groups of a collection, the keeper rule, thresholds, verified moves and undo, outputs.

Imports core, metrics, encoders, store, index, search.
"""
