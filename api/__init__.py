"""The HTTP API (FastAPI): usage reports, prices, repricing and API keys, over the store of the process that serves it.

from usagemeter.api import create_app

uvicorn.run(create_app(lambda: client), host="127.0.0.1", port=8765)

Every route but ``/healthz`` takes an API key; ``usagemeter.api.auth`` says who may call what.
"""

from usagemeter.api.app import create_app

__all__ = ["create_app"]
