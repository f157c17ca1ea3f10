"""Where data may be processed: the job's compute jurisdiction against every data source's jurisdictions.

A source lists the jurisdictions its data may go to (a tenant's `jurisdictions`, or `data.jurisdictions`
for local files); a label covers itself and its finer labels (`eu` covers `eu-fr`), as in the gateway's
residency rules (owstack.tenancy.residency). A job whose `jurisdiction:` is not covered by every source
is refused before any row is read into the trainer.

The adapter inherits the restriction: it may be served only where every source allows
(`serving_jurisdictions`), so an adapter trained on EU data is not served from a US backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from owstack.finetune.data import Source
from owstack.finetune.errors import SovereigntyError
from owstack.tenancy.residency import label_covers


def covered(label: str, allowed: Iterable[str]) -> bool:
    return any(label_covers(a, label) for a in allowed)


def check_compute(jurisdiction: str, sources: Sequence[Source]) -> None:
    """Refuse when the compute's jurisdiction is outside any source's jurisdictions."""
    for source in sources:
        if not covered(jurisdiction, source.jurisdictions):
            who = f"tenant {source.details['tenant']!r}" if source.kind == "audit" else f"data file {source.name}"
            raise SovereigntyError(
                f"jurisdiction: this job runs in {jurisdiction!r}, but {who} may only be processed in "
                f"{', '.join(source.jurisdictions)}; run the job there (set `jurisdiction:` to where the compute "
                "really is) or leave that data out"
            )


def serving_jurisdictions(sources: Sequence[Source]) -> list[str]:
    """The labels every source allows (the finest common ones), where the trained adapter may be served."""
    labels = dict.fromkeys(label for s in sources for label in s.jurisdictions)
    common = [label for label in labels if all(covered(label, s.jurisdictions) for s in sources)]
    # keep only the coarsest: `eu` already covers `eu-fr`
    return [label for label in common if not any(other != label and label_covers(other, label) for other in common)]


def may_serve(backend_jurisdiction: str, adapter_jurisdictions: Iterable[str]) -> bool:
    return covered(backend_jurisdiction, adapter_jurisdictions)
