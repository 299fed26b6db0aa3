"""Pure accuracy metrics (ranking, pairs, copy detection) on arrays. Imports only pipeline.core."""
