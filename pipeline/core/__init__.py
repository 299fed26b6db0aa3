"""The bottom floor: errors, records, configs, device, careful file operations, signing, image decoding.

Imports nothing from lookalike.
"""
