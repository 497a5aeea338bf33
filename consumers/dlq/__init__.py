"""Dead-letter tooling for people: ``reader`` selects and shows dead letters, ``replay`` sends them back
to the events topic once each. The worker writes them (``consumers/dead_letters.py``)."""
