"""lookalike pipeline: ingest → embed → store (Qdrant) → query/rank → evaluate."""
