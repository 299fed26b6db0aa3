"""Embedding maps: a collection's stored vectors laid out in 2-D (UMAP, t-SNE, PCA, or as they are) and drawn as a
PNG and a self-contained interactive HTML page. Imports core, encoders, store, search."""
