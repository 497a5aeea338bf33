"""The ``usagemeter`` command line: one module per command group, assembled in ``commands.py``.

The top of the dependency direction: it may import every other part, and nothing imports it.
"""
