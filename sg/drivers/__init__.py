"""Liveness drivers: the :class:`~sg.drivers.base.Driver` protocol and its backends."""

from sg.drivers.base import ChangeNotifier, Driver, Membership

__all__ = ["ChangeNotifier", "Driver", "Membership"]
