"""Admin events (key created, key revoked) handed to the compliance audit log.

The audit log belongs to `owstack.compliance`; its entry point is
`owstack.compliance.audit_admin_event(config, kind, details)`. Until that exists, `record_admin_event`
does nothing and returns False, so that callers can say so. Details never hold a key's secret.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from owstack.config import Config

KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"


def record_admin_event(config: Config, kind: str, details: dict[str, Any]) -> bool:
    """Record an admin event in the audit log; False when no audit log is available to take it.

    Errors of the audit log itself propagate: the caller decides whether the action stands.
    """
    try:
        compliance = importlib.import_module("owstack.compliance")
    except ModuleNotFoundError:
        return False
    hook = getattr(compliance, "audit_admin_event", None)
    if hook is None:
        return False
    hook(config, kind, details)
    return True
