"""grantbot: just-in-time access from Slack."""

__version__ = "0.1.0"
