"""wfrun: sell AI workflow runs over a chenyu-compatible HTTP API."""

__version__ = "0.1.0"
