"""Least-privilege roles: the model as SQL (`model`), the one query that lists every deviation from
it (`deviations`, with `outside`: what it reports but never repairs), `roles check` (`check`) and
`roles apply` / logins (`apply`).
"""
