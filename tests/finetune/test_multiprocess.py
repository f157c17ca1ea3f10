"""The multi-process path for real: the same recipe under torchrun on two CPU processes (gloo backend).

`accelerate launch` runs multi-GPU jobs through the same torch.distributed launcher (torchrun); on CPUs
without MPI torchrun is the launcher, and the Trainer's Accelerate picks the gloo backend. The run must
train the recipe across both processes and write the same kind of artifacts as a one-process run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from procs import free_port

from .conftest import write_recipe

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_two_gloo_processes_train_the_same_recipe(tmp_path: Path, tiny_base: Path) -> None:
    import gguf
    from safetensors.torch import load_file

    recipe = write_recipe(tmp_path, tiny_base, training={"max_steps": 4, "batch_size": 4})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "owstack", "finetune", "run", str(recipe), "--json"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=840, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])  # only the main process prints it
    assert record["run"]["processes"] == 2
    assert record["metrics"]["global_step"] == 4
    out = tmp_path / "runs" / "tiny-run"
    assert json.loads((out / "lineage.json").read_text())["run"]["processes"] == 2
    names = sorted(t.name for t in gguf.GGUFReader(str(out / "adapter.gguf")).tensors)
    assert names == sorted(f"blk.{i}.attn_{p}.weight.lora_{ab}" for i in (0, 1) for p in ("q", "v") for ab in "ab")
    weights = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert any("lora_B" in k and float(v.abs().max()) > 0 for k, v in weights.items())  # it trained (B starts at 0)
    steps = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]  # one log line per step: only rank 0 writes
