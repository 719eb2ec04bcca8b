"""Credential targets: one module per kind, one Protocol (:mod:`bot.providers.base`).

Build providers with :func:`bot.providers.registry.build_provider`; validate policy settings
with :func:`bot.providers.registry.validate_provider_settings`.
"""
