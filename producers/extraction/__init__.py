"""Usage from provider SDK responses (or their dicts) as event fields, each provider's convention
normalised to ours: ``input_tokens`` includes cached and audio input tokens, ``output_tokens`` includes
reasoning and audio output tokens.

No provider SDK is imported, here or below: responses are read by field name (``base.get``), so the
producer stays as light as its base install. One module per provider; ``detect`` picks one.
"""

from usagemeter.producers.extraction.base import Extracted
from usagemeter.producers.extraction.detect import extract_usage
from usagemeter.schemas.errors import ExtractionError

__all__ = ["Extracted", "ExtractionError", "extract_usage"]
