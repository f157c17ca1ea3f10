"""Admin events (key created, key revoked) handed to the compliance audit log.

The audit log belongs to `owstack.compliance`; its entry point is
`audit_admin_event(config, kind, details, *, tenant=None)`, exported by `owstack.compliance` (or found in
`owstack.compliance.service`). Without it, `record_admin_event` does nothing and returns False, so that
callers can say so. Details never hold a key's secret.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from owstack.config.load import Config

KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
_MODULES = ("owstack.compliance", "owstack.compliance.service")


def audit_hook() -> Callable[..., Any] | None:
    """The compliance package's `audit_admin_event`, or None when it is not there."""
    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        hook = getattr(module, "audit_admin_event", None)
        if callable(hook):
            return hook
    return None


def record_admin_event(config: Config, kind: str, details: dict[str, Any], *, tenant: str | None = None) -> bool:
    """Record an admin event in the audit log; False when no audit log is available to take it.

    Errors of the audit log itself propagate: the caller decides whether the action stands.
    """
    hook = audit_hook()
    if hook is None:
        return False
    kwargs: dict[str, Any] = {}
    if tenant is not None and "tenant" in inspect.signature(hook).parameters:
        kwargs["tenant"] = tenant
    hook(config, kind, details, **kwargs)
    return True
