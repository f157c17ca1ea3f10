"""owstack: self-hosted open-weight AI-agent stack."""

__version__ = "0.1.0"

# The config schema assembles the section models that feature packages own (`metering/config.py`, ...),
# and those import `owstack.config.base`. Importing the config package first, here, fixes that order
# whichever module a program imports first.
import owstack.config  # noqa: F401
