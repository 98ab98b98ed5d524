"""Redash's own tables (getredash/redash, redash/models/), brought in as a test service: nobody here wrote them."""
