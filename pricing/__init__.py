"""The price book and everything that changes it: genai-prices rows (``pricebook``, ``model_names``,
``variants``), per-client overrides (``overrides``, ``overrides_watch``), snapshot updates
(``price_updates``) and repricing (``reprice``).

Imports nothing here, so that ``usagemeter.pricing.columns`` or ``.reprice`` load no price data.
"""
