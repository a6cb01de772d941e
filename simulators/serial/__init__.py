"""Scale simulators that speak real MT-SICS over a socat pseudo-terminal pair."""

from simulators.serial.demo import demo_part

__all__ = ["demo_part"]
