"""Metering across processes: one pytest-xdist worker per GPU, and torchrun ranks combined into one result.

- split.py   which GPUs each parallel worker gets (pure functions)
- ranks.py   torchrun ranks: who meters which device, the exchange through the c10d store, combining
             windows (no pytest)
- plugin.py  the pytest hooks for both (the only module here that imports pytest)
"""
