"""Alembic on one schema: the Config and the one typed options object a run of env.py gets, env.py's
body, the migration session (lock, timeouts, role, retries), extensions, the revision graph read
from the files, and the helpers generated revision files call.
"""
