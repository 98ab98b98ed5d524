"""gamedb's per-schema checks for inventory: one head, up/down/up, stairway, models match, own schema only,
rw can read. gamedb's pytest plugin collects them (as TestInventorySchema) from this one line."""

gamedb_schema = "inventory"
