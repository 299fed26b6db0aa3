"""Encoders: one protocol, a registry, one factory (`create_encoder`); siamese/ holds the fine-tuned heads and
their checkpoint format. Imports only pipeline.core."""

from pipeline.encoders.base import Encoder, EncoderOptions, EncoderSpec, NoFacePolicy, l2_normalise
from pipeline.encoders.registry import EncoderInfo, create_encoder, list_encoders, register_encoder

__all__ = [
    "Encoder",
    "EncoderInfo",
    "EncoderOptions",
    "EncoderSpec",
    "NoFacePolicy",
    "create_encoder",
    "l2_normalise",
    "list_encoders",
    "register_encoder",
]
