"""owstack.compliance: the audit log (chain, checkpoints, verify, export, retention, crypto-shredding),
the Annex IV documentation skeleton and the ML-BOM.

`owstack.config`'s schema imports this package's `config` module; importing the config package first
keeps that order whichever module of this package is imported first.
"""

import owstack.config  # noqa: F401
