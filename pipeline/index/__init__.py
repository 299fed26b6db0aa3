"""Building an index: list sources, hash, decode and embed (DataLoader workers, or Ray with `distributed`), ingest
into the store.

Imports core, encoders, store (and Ray, lazily, in `ray_session` only, for `distributed`).
"""
