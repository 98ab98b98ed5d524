"""A realistic service for the tests (not installed): native enums declared every way, volatile and
constant server defaults, a custom column type, CITEXT, partial and expression indexes, CHECKs,
a composite-key association table and circular foreign keys."""
