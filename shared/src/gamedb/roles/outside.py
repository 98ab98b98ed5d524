"""What reaches gamedb's objects from outside the role model: reported by `roles check`, never repaired.

Each part is a row of the deviations query (gamedb.roles.deviations) with no fix: gamedb did not make
these objects and can't know what they are for, so `roles apply` leaves them to a person and `roles
check` keeps exiting 1 while they exist. Every part is one catalog read over the whole database.
"""

from __future__ import annotations

REPORTED_ONLY = [
    # a SECURITY DEFINER function outside the service schemas that a role gamedb manages may run: the
    # app (or deployer) login runs its body with its owner's rights, a superuser's typically. (Inside
    # a service schema, one its owner doesn't own makes roles apply refuse: deviations' phase 0.)
    """SELECT 2, NULL::text, 'security definer function',
              format('function %s is SECURITY DEFINER (runs as %s) and %s may execute it', p.oid::regprocedure,
                     p.proowner::regrole,
                     CASE WHEN EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                       WHERE a.grantee = 0)
                               AND EXISTS (SELECT FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                                           WHERE a.grantee = 0 AND a.privilege_type = 'USAGE')
                          THEN 'PUBLIC (every app login)'
                          ELSE string_agg(m.rolname, ', ' ORDER BY m.rolname) END),
              NULL::text
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       JOIN managed m ON has_function_privilege(m.oid, p.oid, 'EXECUTE') AND has_schema_privilege(m.oid, n.oid, 'USAGE')
       WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
         AND n.nspname NOT IN (SELECT schema FROM decl) AND p.proowner NOT IN (SELECT oid FROM managed)
         AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                         AND d.deptype = 'e')
       GROUP BY p.oid, p.proowner, p.proacl, n.oid, n.nspacl, n.nspowner""",
    # event triggers run on every migration's DDL, as their owner (a superuser)
    """SELECT 2, NULL, 'event trigger',
              format('event trigger %I on %s runs %s (owned by %s, %s)', e.evtname, e.evtevent, e.evtfoid::regprocedure,
                     e.evtowner::regrole, CASE e.evtenabled WHEN 'D' THEN 'disabled' ELSE 'enabled' END),
              NULL
       FROM pg_event_trigger e
       WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_event_trigger'::regclass
                         AND d.objid = e.oid AND d.deptype = 'e')""",
    # publications send a service schema's rows elsewhere (gamedb move's own, gamedb_move_<s>, aside)
    """SELECT 2, d.schema, 'publication',
              format('publication %I (owned by %s) publishes %s', p.pubname, p.pubowner::regrole, x.what), NULL
       FROM pg_publication p JOIN decl d ON p.pubname <> 'gamedb_move_' || d.schema
       CROSS JOIN LATERAL (
         SELECT string_agg(w, ', ' ORDER BY w) AS what FROM (
           SELECT format('table %I.%I', t.schemaname, t.tablename) FROM pg_publication_tables t
           WHERE t.pubname = p.pubname AND t.schemaname = d.schema
           UNION
           SELECT format('every table of schema %I', n.nspname) FROM pg_publication_namespace pn
           JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE pn.pnpubid = p.oid AND n.nspname = d.schema
           UNION
           SELECT 'every table (FOR ALL TABLES)' WHERE p.puballtables
         ) u(w)) x
       WHERE x.what IS NOT NULL""",
    # subscriptions write into a service schema's tables as their owner, past every grant
    """SELECT 2, s.schema, 'subscription',
              format('subscription %I (owned by %s) writes into %s', sub.subname, sub.subowner::regrole,
                     string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid::regclass::text)),
              NULL
       FROM pg_subscription sub JOIN pg_subscription_rel r ON r.srsubid = sub.oid
       JOIN pg_class c ON c.oid = r.srrelid JOIN service_ns s ON s.oid = c.relnamespace
       WHERE sub.subdbid = (SELECT db FROM admin) AND sub.subname <> 'gamedb_move_' || s.schema
       GROUP BY s.schema, sub.subname, sub.subowner""",
    # objects owned by a role gamedb manages where the model gives it none: app and deployer logins,
    # rw and migrator own nothing; an owner nothing in `public` or `extensions` (elsewhere it owns its
    # schema, its tables in alembic, and a schema `gamedb move` left behind). The ownership rules
    # repair the database, the shared schemas and the service schemas' objects.
    """SELECT 2, m.schema, 'owned by a role gamedb manages',
              format('%s owns %s, expected not', m.rolname, pg_describe_object(o.classid, o.objid, 0)), NULL
       FROM pg_shdepend o JOIN managed m ON m.oid = o.refobjid
       CROSS JOIN LATERAL pg_identify_object(o.classid, o.objid, 0) i
       CROSS JOIN LATERAL (SELECT CASE WHEN o.classid = 'pg_namespace'::regclass THEN i.name
                                       ELSE i.schema END AS nsp) w
       WHERE o.deptype = 'o' AND o.dbid IN (0, (SELECT db FROM admin))
         AND o.classid NOT IN ('pg_database'::regclass, 'pg_default_acl'::regclass)
         AND NOT (o.classid = 'pg_namespace'::regclass AND w.nsp IN ({alembic}, {extensions}, 'public'))
         AND NOT coalesce(w.nsp IN (SELECT schema FROM decl), false)
         AND (m.kind IN ('rw', 'migrator', 'service login', 'deployer login')
              OR (m.kind = 'owner' AND w.nsp IN ({extensions}, 'public')))""",
    # schema extensions is on every migration's search_path ahead of pg_catalog: a function or operator
    # there that no extension installed shadows the built-in of that name (extensions.lower(text))
    """SELECT 2, NULL, 'not part of an extension',
              format('%s in schema %I is not part of an extension (it is on every migration''s search_path'
                     ' ahead of pg_catalog)', pg_describe_object(x.classid, x.oid, 0), {extensions}::text),
              NULL
       FROM (SELECT 'pg_proc'::regclass AS classid, oid, pronamespace AS ns FROM pg_proc
             UNION ALL SELECT 'pg_operator'::regclass, oid, oprnamespace FROM pg_operator) x
       JOIN pg_namespace n ON n.oid = x.ns AND n.nspname = {extensions}
       WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = x.classid AND d.objid = x.oid
                         AND d.deptype = 'e')""",
    # settings of the database for every login (ALTER DATABASE game SET, ALTER ROLE ALL IN DATABASE game
    # SET) that change what the apps' SQL does: triggers and foreign keys off, another search_path...
    """SELECT 2, NULL, 'database setting',
              format('database %I sets %s for every login', a.datname, c), NULL
       FROM admin a JOIN pg_db_role_setting s ON s.setdatabase = a.db AND s.setrole = 0
       CROSS JOIN LATERAL unnest(s.setconfig) c
       WHERE split_part(c, '=', 1) IN ('session_replication_role', 'search_path', 'role', 'session_authorization',
                                       'row_security', 'default_transaction_read_only', 'session_preload_libraries',
                                       'local_preload_libraries')""",
]
