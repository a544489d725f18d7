"""Narrow wrappers around the outside programs the installer runs."""
