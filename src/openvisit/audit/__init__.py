from openvisit.audit import service

__all__ = ["service"]
