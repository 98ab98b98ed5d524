"""A game-shaped service for the tests (not installed): a monthly-partitioned event log, a leaderboard
materialized view refreshed by a function, an updated_at trigger on two tables, and a row-level
security policy keyed on the session setting game.player_id."""
