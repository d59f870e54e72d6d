"""The command layer: pure builders, one module per tool, each returning the argv of one command.

`compose` (docker compose for this checkout's project), `docker` (plain docker: images, containers, volumes),
`swarm` (swarm, stack, service, secret, the deploy lock's config), `haproxy` (the proxy's runtime API, the running
proxies), `dbclient` (the SQL clients inside the db service), `uv`, `openssl`,
`netns` (ip, network namespaces and the engines of the on-machine cluster). Nothing here runs anything or
prints; sequencers ask a builder for argv and hand it to the context's runner, probes ask the same builders.
Each is unit-tested as options -> exact argv (tests/unit/test_compose.py, test_swarm.py, test_backup.py, ...).
"""
