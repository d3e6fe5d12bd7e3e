"""Liveness drivers: the :class:`~sg.drivers.base.Driver` protocol and its backends."""

from sg.drivers.base import Driver, DriverOptions, Membership, open_driver

__all__ = ["Driver", "DriverOptions", "Membership", "open_driver"]
