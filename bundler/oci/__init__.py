"""Content-addressed images: digests, descriptors, references, stores and registries."""
