"""Service record stores: the :class:`~sg.store.base.Store` protocol and its backends."""

from sg.store.base import BeatResult, Store, open_store

__all__ = ["BeatResult", "Store", "open_store"]
