"""Tenants, API keys and data residency.

    owstack.tenancy.config      TenantSection: a `tenants:` entry (jurisdictions, layers, policies)
    owstack.tenancy.keys        KeyStore: create, list, revoke, authenticate (cached, constant time)
    owstack.tenancy.stage       AuthenticateStage (pipeline stage 1) and check_layer
    owstack.tenancy.residency   allowed, filter_candidates, raise_if_empty
    owstack.tenancy.report      residency_report
    open_mode_allowed           whether the gateway may run without keys, and what to print at start

Importing this package is cheap: SQLAlchemy loads only with `owstack.tenancy.keys`.
"""

from owstack.tenancy.openmode import is_loopback, open_mode_allowed

__all__ = ["is_loopback", "open_mode_allowed"]
