"""gamedb's per-schema checks for auth: one head, up/down/up, models match, own schema only, rw can read."""

from gamedb.testing import schema_checks

TestAuthSchema = schema_checks("auth")
