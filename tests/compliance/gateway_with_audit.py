"""The gateway's ASGI factory with the audit stage in front, for test_gateway_kill9.

Once pipeline/build.py puts `AuditStage` in the stage list itself, this adds nothing and the test runs
against the gateway exactly as `owstack serve` builds it.
"""

from __future__ import annotations

from typing import Any

from owstack.api.app import create_app as gateway_app
from owstack.compliance.stage import AuditStage
from owstack.pipeline.pipeline import Pipeline


def create_app() -> Any:
    gw = gateway_app()
    if "audit" not in gw.pipeline.names:
        stage = AuditStage(gw.config)
        gw.pipeline = Pipeline([stage, *gw.pipeline.stages])
        gw.hooks.append(stage)
    return gw
