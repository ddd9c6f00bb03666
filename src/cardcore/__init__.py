"""cardcore: an open-source, self-hosted, issuer-side card management system."""

__version__ = "0.1.0"
