"""The PostgreSQL server gamedb talks to: which URL (resolution, masking, one-line errors), engines
and connections (`service_engine` for a service's own sessions), and the embedded server for tests.
"""

from __future__ import annotations

from gamedb.server.connections import service_engine

__all__ = ["service_engine"]
