"""Thin translators at the edge: chat platforms and model providers, each both ways."""
