"""Building an index: list sources, decode and embed (DataLoader workers), ingest into the store.

Imports core, encoders, store.
"""
