"""The auth service's database schema."""
