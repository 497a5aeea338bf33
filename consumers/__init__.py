"""The worker pipeline only: consume, check, deduplicate, batch, insert, commit (``worker.py`` in order).

Dead-letter tooling is ``consumers/dlq/``; pricing is ``usagemeter.pricing``, which this package never
imports (the engine prices from the dictionaries pricing fills).
"""
