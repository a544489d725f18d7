"""Vendor side of Satchel: specs, image sources, and the bundle format."""

__version__ = "0.1.0"
