"""Narrow wrappers around outside programs; nothing else in Satchel starts them."""
