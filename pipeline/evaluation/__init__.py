"""Measuring accuracy through the production path: the eval runner, its setup, the protocols, HTML reports.

Imports core, metrics, encoders, store, index, datasets, search.
"""
