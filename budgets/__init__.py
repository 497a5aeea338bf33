"""Budgets and threshold alerts: definitions (``model``), their periods, spend from the aggregates, the
evaluator and its ledger, the channels, and the pre-flight check (``check``) with its quote."""
