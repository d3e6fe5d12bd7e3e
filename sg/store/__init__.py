"""Service record stores: the :class:`~sg.store.base.Store` protocol and its backends."""

from sg.store.base import BeatResult, Store

__all__ = ["BeatResult", "Store"]
