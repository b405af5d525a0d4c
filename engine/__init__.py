"""The exhibit engine: model, loader, validation, signals, logic and runtime.

The engine never imports a concrete driver; drivers register by ``kind`` in a
:class:`engine.registry.Registry` that ``launcher.py`` fills.
"""
