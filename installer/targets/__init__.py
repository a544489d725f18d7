"""Deployment targets: how a rendered release is applied and checked."""
