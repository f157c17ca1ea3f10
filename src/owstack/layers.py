"""The names every part of owstack shares: the gateway's layers and the embedded default's backend.

A leaf module (it imports nothing from owstack), so the config, catalog, routing, metering, tenancy, API and
console import it at the top without an import cycle or a function-level import.
"""

from __future__ import annotations

from typing import Literal

#: the three layers of the stack, in the order the docs, `/v1/models` and the console list them
LAYERS: tuple[str, ...] = ("coding", "multimodal", "edge")
#: the model name that asks the router to choose the layer (`routing.auto`)
AUTO = "auto"
#: a layer's name as a type (the catalog's entries are typed with it)
Layer = Literal["coding", "multimodal", "edge"]

#: the backend `owstack serve` runs without a config file: SmolLM2-135M-Instruct on the embedded llama.cpp
EMBEDDED_BACKEND = "edge-local"
EMBEDDED_MODEL = "smollm2-135m-instruct"
