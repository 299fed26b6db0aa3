"""Fine-tuned Siamese encoders: model config and nets, the checkpoint format, the encoder, late interaction.

Imports core and pipeline.encoders.base.
"""
