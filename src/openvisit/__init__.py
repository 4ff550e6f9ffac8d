"""OpenVisit: open-source video visitation for jails and prisons."""

__version__ = "0.1.0"
