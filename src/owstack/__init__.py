"""owstack: self-hosted open-weight AI-agent stack."""

__version__ = "0.1.0"
