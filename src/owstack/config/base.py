"""Base class for every config section (strict: unknown keys are errors; immutable), and the markers a
section puts on fields that name files, so that the loader can resolve them in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Location:
    """Field metadata: this string is a file or folder (`path`) or a database URL (`database`).

    A relative one is resolved against the config file's folder, or the data directory when there is no
    config file (owstack.config.paths); `env.NAME` references are left alone."""

    kind: Literal["path", "database"] = "path"


#: a file or folder; relative to the config file's folder
FilePath = Annotated[str, Location("path")]
#: a SQLAlchemy URL; `sqlite:///relative.db` is relative to the config file's folder
DatabaseURL = Annotated[str, Location("database")]
