"""Fine-tuned Siamese encoders: model config and nets, the checkpoint format (written and read by `checkpoint`), the
encoder, late interaction.

Imports core and pipeline.encoders.base.
"""
