"""Review before deploy: `gamedb plan` (what upgrade-all would do now, from each schema's current
revision: SQL, squawk's findings, table locks) and `gamedb report --html` (the fleet on one page).

Modules: `locks` (the lock each statement takes), `plan` (the plan read from the live fleet),
`render` (text, markdown, JSON)."""
