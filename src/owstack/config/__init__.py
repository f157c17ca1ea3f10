"""Configuration: a strict file schema resolved into an immutable `Config` (`owstack.config.load`).

This face imports nothing: the feature packages' own sections (`metering/config.py`, ...) build on
`owstack.config.base`, and the schema (`owstack.config.schema`) assembles them, so importing `base` must not
load the schema.
"""
