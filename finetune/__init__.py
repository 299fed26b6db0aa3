"""Siamese fine-tuning (contrastive, triplet, BCE); its checkpoints load as `siamese@DIR` encoders."""
