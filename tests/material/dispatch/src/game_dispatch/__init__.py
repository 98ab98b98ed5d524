"""Netflix Dispatch's own tables (Netflix/dispatch, src/dispatch/), brought in as a test service."""
