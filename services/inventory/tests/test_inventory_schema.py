"""gamedb's per-schema checks for inventory: one head, up/down/up, models match, own schema only, rw can read."""

from gamedb.testing import schema_checks

TestInventorySchema = schema_checks("inventory")
