"""One module per evaluation protocol (candidates, pairs, retrieval, copies). Imports what pipeline.evaluation may."""
