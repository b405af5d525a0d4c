"""The curator's studio, without network code: checking a draft, saving with history, assets, simulation
controls and the inspector. The console serves them (content/console/studio.py)."""
