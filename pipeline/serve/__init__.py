"""`lookalike serve`: a FastAPI app to search, review duplicates and browse collections, every view also a JSON API.

Imports core, encoders, store, metrics, index, search, dedup and maps; the web libraries (fastapi, starlette) are the
`serve` extra, imported only here.
"""

from pipeline.serve.app import create_app, warm_up
from pipeline.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "warm_up"]
