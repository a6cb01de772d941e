"""The mqtt driver."""
