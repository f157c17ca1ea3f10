"""owstack.compliance: the audit log (chain, checkpoints, verify, export, retention, crypto-shredding),
the Annex IV documentation skeleton and the ML-BOM.
"""
