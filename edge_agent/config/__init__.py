"""Typed venue configuration: TOML in, frozen dataclasses out, or every error with its line."""
