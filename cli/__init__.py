"""usagemeter: usage metering for LLM and other metered API calls.

Import what you need from the parts: ``usagemeter.producers`` (the emitter services embed),
``usagemeter.schemas`` (the event contract), ``usagemeter.query`` (spend reports), ``usagemeter.consumers``
(the worker). This root package holds the ``usagemeter`` command line and nothing a producer would load.
"""

__version__ = "0.1.0"
