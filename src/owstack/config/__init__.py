"""Configuration: a strict file schema resolved into an immutable `Config`."""

from owstack.config.load import Config, load

__all__ = ["Config", "load"]
