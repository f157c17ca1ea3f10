"""`owstack finetune run|check|demo` and `owstack eval finetune`: fine-tuning on your own data, offline.

Every user error (recipe, data row, base not on disk, LoRA target, jurisdiction, consent) is one line
on stderr and exit 2, before training starts. Ctrl-C during training saves a checkpoint at the end of the
step and prints the command that resumes it (exit 130).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from owstack.cli.common import fail, group, require_extra

finetune_app = group("finetune", "Fine-tune models on your own data (TRL + PEFT), offline.")
#: what training imports from the `owstack[train]` extra
TRAIN_MODULES = ("torch", "transformers", "trl", "peft")

_SET = typer.Option([], "--set", help="Override a recipe field: dotted.path=value (YAML), e.g. training.lr=1e-4.")


def register(app: typer.Typer) -> None:
    app.add_typer(finetune_app, name="finetune")


def _recipe(path: Path, overrides: list[str]) -> Any:
    from owstack.finetune.errors import FinetuneError
    from owstack.finetune.recipe import load

    try:
        return load(path, overrides)
    except FinetuneError as exc:
        fail(str(exc))


def _overrides(sets: list[str], **fields: Any) -> list[str]:
    out = list(sets)
    for path, value in fields.items():
        if value is not None:
            out.append(f"{path.replace('__', '.')}={json.dumps(value) if isinstance(value, str) else value}")
    return out


@finetune_app.command("run")
def run_command(
    recipe: Path = typer.Argument(..., help="The recipe YAML file."),
    sets: list[str] = _SET,
    out: str | None = typer.Option(None, help="Run folder (overrides `out`)."),
    base: str | None = typer.Option(None, help="Base model (overrides `base`)."),
    max_steps: int | None = typer.Option(None, help="Stop after N optimizer steps (training.max_steps)."),
    epochs: float | None = typer.Option(None, help="training.epochs"),
    lr: float | None = typer.Option(None, help="training.lr"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in its folder from its last checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the lineage record as JSON at the end."),
) -> None:
    """Train an adapter (or full model) from a recipe: SFT, or DPO on preference rows."""
    require_extra("train", *TRAIN_MODULES)
    from owstack.finetune.errors import ExportError, FinetuneError
    from owstack.finetune.run import Interrupted, run

    overrides = _overrides(
        sets, out=out, base=base, training__max_steps=max_steps, training__epochs=epochs, training__lr=lr
    )
    loaded = _recipe(recipe, overrides)
    stop = {"requested": False}

    def on_sigint(_signum: int, _frame: Any) -> None:
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        typer.echo("\ninterrupt: finishing this step, then saving a checkpoint (Ctrl-C again to abort)", err=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    resume_cmd = " ".join(a for a in ["owstack", *sys.argv[1:]] if a != "--resume") + " --resume"
    try:
        result = run(loaded, resume=resume, should_stop=lambda: stop["requested"])
    except Interrupted as exc:
        typer.echo(f"{exc}\nresume with: {resume_cmd}", err=True)
        raise typer.Exit(130) from None
    except ExportError as exc:
        fail(str(exc), code=1)
    except FinetuneError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo(f"\naborted; the last checkpoint is kept\nresume with: {resume_cmd}", err=True)
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.record is None:
        return  # not the main process of a multi-process run
    if as_json:
        typer.echo(json.dumps(result.record))
        return
    _print_result(result)


def _print_result(result: Any) -> None:
    record, out = result.record, result.plan.out
    metrics = record["metrics"]
    typer.echo(f"run folder: {out}")
    for name, entry in record["artifacts"].items():
        typer.echo(f"  {name}: {out / entry['path']}")
    shown = {k: metrics[k] for k in ("global_step", "train_loss", "eval_loss") if k in metrics}
    typer.echo("  " + "  ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    typer.echo(f"  may be served in: {', '.join(record['jurisdiction']['serving'])}")
    typer.echo(f"next: owstack eval finetune {out}    then: owstack adapters add {out} --backend <name>")


@finetune_app.command("check")
def check_command(
    recipe: Path = typer.Argument(..., help="The recipe YAML file."),
    sets: list[str] = _SET,
    load_model: bool = typer.Option(True, "--load-model/--no-load-model", help="Also load the base and check targets."),
) -> None:
    """Validate a recipe, its data rows, jurisdictions and LoRA targets without training."""
    if load_model:
        require_extra("train", *TRAIN_MODULES)
    from owstack.finetune.errors import FinetuneError
    from owstack.finetune.plan import prepare
    from owstack.finetune.run import load_base

    loaded = _recipe(recipe, sets)
    try:
        plan = prepare(loaded)
        targets = load_base(plan)[3] if load_model else list(plan.recipe.lora.targets)
    except FinetuneError as exc:
        fail(str(exc))
    typer.echo(f"recipe {loaded.source}: ok")
    typer.echo(f"  base: {plan.base.path} (sha256 {plan.base.sha256[:16]}...)")
    for source in plan.sources:
        typer.echo(f"  data: {source.name}: {source.rows} rows, {source.examples} examples")
    typer.echo(f"  train {len(plan.train)} / held out {len(plan.eval)} examples; targets {', '.join(targets)}")
    typer.echo(f"  compute {plan.recipe.jurisdiction}; may be served in {', '.join(plan.serving_jurisdictions)}")


@finetune_app.command("demo")
def demo_command(
    folder: Path = typer.Argument(..., help="Where to write tickets.jsonl and recipe.yaml."),
    rows: int = typer.Option(240, min=8, max=100_000, help="Generated tickets."),
    seed: int = typer.Option(0, help="Generation seed."),
) -> None:
    """Write a generated support-ticket classification task and a recipe for it."""
    from owstack.finetune.demo import write

    try:
        data, recipe = write(folder, rows, seed)
    except ValueError as exc:
        fail(f"--rows: {exc}")
    typer.echo(f"wrote {data} ({rows} rows) and {recipe}\nnext: owstack finetune run {recipe}")


def eval_finetune(
    run: Path = typer.Argument(..., help="A finished run folder."),
    backend: str = typer.Option("embedded", help="'embedded', or an OpenAI-compatible URL (e.g. the gateway)."),
    base_model: str = typer.Option("edge", help="With a URL: the base model's name."),
    tuned_model: str | None = typer.Option(None, help="With a URL: the tuned model's name (default edge:<run name>)."),
    limit: int | None = typer.Option(None, min=1, help="Evaluate at most N held-out rows (evaluation.limit)."),
    threads: int | None = typer.Option(None, min=1, help="CPU threads of the embedded engine."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    out: Path | None = typer.Option(None, help="Write per-item results here (JSONL)."),
) -> None:
    """Compare the base and the tuned model on the run's held-out split (accuracy with Wilson intervals)."""
    from owstack.efficiency.clients import EvalError
    from owstack.finetune import evaluate
    from owstack.finetune.errors import FinetuneError

    try:
        loaded, examples, target, adapter = _eval_setup(run, backend, base_model, tuned_model, threads)
        settings = loaded.recipe.evaluation
        examples = examples[: limit or settings.limit or None]
        items = asyncio.run(_eval(target, adapter, examples, evaluate.Scorer(settings, loaded.root), settings))
    except (FinetuneError, EvalError, OSError, ValueError) as exc:
        fail(str(exc), code=1 if isinstance(exc, EvalError) else 2)
    report = {"run": str(run), "scorer": settings.scorer, "backend": backend, **evaluate.summary(items)}
    if out is not None:
        out.write_text("".join(json.dumps(i.to_dict()) + "\n" for i in items), "utf-8")
    if as_json:
        typer.echo(json.dumps(report))
        return
    for side in ("base", "tuned"):
        s = report[side]
        low, high = s["accuracy_ci"]
        typer.echo(f"{side:6} {s['correct']}/{report['n']} = {s['accuracy']:.1%}  [95% CI {low:.1%}, {high:.1%}]")
    typer.echo(f"delta {report['delta']:+.1%}; fixed {report['fixed']}, broken {report['broken']}, "
               f"McNemar p = {report['mcnemar_p']:.3g}")  # fmt: skip


def _eval_setup(run: Path, backend: str, base_model: str, tuned_model: str | None, threads: int | None) -> Any:
    from owstack.finetune import lineage
    from owstack.finetune.completers import EmbeddedAdapters, URLModels
    from owstack.finetune.errors import FinetuneError
    from owstack.finetune.plan import heldout
    from owstack.finetune.recipe import validate

    record = lineage.read(run)
    loaded = validate(record["recipe"], source=str(run / lineage.FILE), root=run)
    examples = heldout(run, loaded)
    name = record["name"]
    if backend != "embedded":
        return loaded, examples, URLModels(backend, base_model, tuned_model or f"edge:{name}"), name
    gguf = Path(record["base"]["path"])
    if record["base"]["kind"] != "gguf" or not gguf.is_file():
        raise FinetuneError(f"the base of {run} is not a GGUF file on disk: evaluate through --backend URL instead")
    if not (run / "adapter.gguf").is_file():
        raise FinetuneError(f"{run} has no adapter.gguf (export.gguf_adapter was off)")
    return loaded, examples, EmbeddedAdapters(gguf, {name: run / "adapter.gguf"}, n_threads=threads), name


async def _eval(target: Any, adapter: str, examples: list[Any], scorer: Any, settings: Any) -> list[Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from owstack.finetune.evaluate import compare

    async def complete(messages: list[dict[str, Any]], which: str | None) -> Any:
        return await target(messages, which, settings.max_tokens)

    columns = (TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TextColumn("eta"), TimeRemainingColumn())
    await target.start()
    try:
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("eval", total=2 * len(examples))  # base answers, then tuned ones
            return await compare(examples, complete, adapter, scorer, on_answer=lambda: progress.advance(task))
    finally:
        await target.aclose()
