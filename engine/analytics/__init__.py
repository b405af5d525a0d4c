"""Visitor analytics with privacy by design: what visitors do, never who they are (issue 17).

Per-visitor tracks live in memory only (:mod:`engine.analytics.folding`) and are folded into per-hour aggregates
(:mod:`engine.analytics.records`) when the visitor leaves; only aggregates are ever stored
(:mod:`engine.analytics.store`).
"""
