"""The built-in catalogue that serves when the store cannot be opened.

It holds providers, models, tiers and router profiles, never users or keys: with no store there
is no balance to charge, so the data plane answers paid requests with 503
until the store is back, while `/v1/models` and the stats keep working.
"""

from __future__ import annotations

from config_store.catalogue import DEMO_MODELS, DEMO_PROVIDERS, FREE_TIER
from config_store.profiles import DEMO_PROFILES
from config_store.schema import Catalogue

BUILTIN_DEFAULTS = Catalogue(
    providers=DEMO_PROVIDERS, models=DEMO_MODELS, tiers=(FREE_TIER,), profiles=DEMO_PROFILES
)
