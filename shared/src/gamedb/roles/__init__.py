"""Least-privilege roles: the model as SQL (`model`), the one query that lists every deviation from
it (`deviations`), `roles check` (`check`) and `roles apply` / logins (`apply`).
"""
