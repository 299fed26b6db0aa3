"""Evaluation protocols that run through the production path (encoder → Qdrant → query)."""
