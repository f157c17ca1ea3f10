"""The fine-tuning errors: each message names the field, file and line, or the fix.

    FinetuneError
    ├── RecipeError        the recipe (or an override) is invalid
    ├── DataError          a data file or row is unreadable or in the wrong shape
    ├── SovereigntyError   the data may not be processed where the job runs, or consent is missing
    ├── BaseModelError     the base model is not on disk, or a LoRA target does not exist in it
    └── ExportError        an artifact cannot be written (GGUF conversion)

All of them are raised before training starts, except ExportError (after it).
"""

from __future__ import annotations


class FinetuneError(Exception):
    """A fine-tuning job that cannot start or finish; the message is one line for the user."""


class RecipeError(FinetuneError):
    pass


class DataError(FinetuneError):
    pass


class SovereigntyError(FinetuneError):
    pass


class BaseModelError(FinetuneError):
    pass


class ExportError(FinetuneError):
    pass
