"""The inventory service's database schema."""
