"""Performance figures for ``launcher.py bench``, each measured against a baseline in the same run.

The helper scripts here (sender, subscriber, baseline bridge) run as separate
processes, so the process under test never shares an interpreter or a GIL with
the code that measures it.
"""
