"""GPU specs (`8xH100`) and the memory fit check behind `owstack recipe`.

A model variant fits when

    weights_gb + kv_headroom_gb <= gpu_count x memory_gb x memory_fraction

`weights_gb` is the variant's published weight size, else max(params_total, params_alt) x bytes per
parameter; `kv_headroom_gb` is the least room left for the KV/state cache (a per-model catalog estimate);
`memory_fraction` is the share of GPU memory the engine takes (vLLM's --gpu-memory-utilization).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from owstack.catalog._schema import RawGPU
from owstack.errors import ConfigError

_SPEC = re.compile(r"^\s*(\d{1,3})\s*[xX×*]\s*([A-Za-z0-9][A-Za-z0-9_-]*)\s*$")
MAX_GPUS = 72


@dataclass(frozen=True)
class GPUs:
    count: int
    gpu: str
    memory_gb: float
    arch: str

    @property
    def label(self) -> str:
        return f"{self.count}x{self.gpu}"

    @property
    def total_gb(self) -> float:
        return self.count * self.memory_gb


@dataclass(frozen=True)
class Fit:
    weights_gb: float
    headroom_gb: float
    usable_gb: float
    fraction: float

    @property
    def need_gb(self) -> float:
        return self.weights_gb + self.headroom_gb

    @property
    def ok(self) -> bool:
        return self.need_gb <= self.usable_gb

    def describe(self, gpus: GPUs) -> str:
        need = f"{self.need_gb:.1f} GB ({self.weights_gb:.1f} weights + {self.headroom_gb:.1f} KV headroom)"
        has = f"{self.usable_gb:.1f} GB ({gpus.count} x {gpus.memory_gb:g} GB x {self.fraction:g})"
        return f"needs {need}, {gpus.label} gives {has}"


def parse_gpus(spec: str, table: Mapping[str, RawGPU]) -> GPUs:
    """`8xH100`, `2x H200`, `1xB200` (case-insensitive; GPU aliases from recipes.yaml)."""
    m = _SPEC.match(spec)
    names = ", ".join(table)
    if m is None:
        raise ConfigError(f"--gpus: {spec!r} is not COUNTxGPU, e.g. 8xH100 (GPUs: {names})")
    count = int(m.group(1))
    if not 1 <= count <= MAX_GPUS:
        raise ConfigError(f"--gpus: {spec!r}: the count must be 1 to {MAX_GPUS}")
    wanted = m.group(2).upper()
    for name, gpu in table.items():
        if wanted == name.upper() or wanted in (a.upper() for a in gpu.aliases):
            return GPUs(count=count, gpu=name, memory_gb=gpu.memory_gb, arch=gpu.arch)
    raise ConfigError(f"--gpus: unknown GPU {m.group(2)!r}; known GPUs: {names}")


def fit(weights_gb: float, headroom_gb: float, gpus: GPUs, fraction: float) -> Fit:
    return Fit(
        weights_gb=weights_gb,
        headroom_gb=headroom_gb,
        usable_gb=round(gpus.total_gb * fraction, 1),
        fraction=fraction,
    )
