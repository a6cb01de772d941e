"""Simulated OPC-UA devices."""
