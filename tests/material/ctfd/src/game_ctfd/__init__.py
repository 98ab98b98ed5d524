"""CTFd's own tables (CTFd/CTFd, CTFd/models/__init__.py), brought in as a test service."""
