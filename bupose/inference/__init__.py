"""Test-time pipeline: aggregation of model outputs, decoding and projection to the image."""
