"""gamedb's per-schema checks for auth: one head, up/down/up, stairway, models match, own schema only,
rw can read. gamedb's pytest plugin collects them (as TestAuthSchema) from this one line."""

gamedb_schema = "auth"
