"""The gym hub: one service per gym (or chain) that follows every machine on the broker.

It runs as its own process (`millctl gym serve`), never in a machine's core. What flows in
comes from MQTT (docs/mqtt.md); what flows out is the dashboard, the API and the CLI:

- `schema.py`, `migrations/`  the central history's tables (SQLAlchemy Core) and their
                              alembic migrations, one schema for SQLite and PostgreSQL
- `database.py`               engine from a URL, migrations run at start
- `store.py`                  sessions in and out: idempotent inserts, lists, totals, exports
- `ingest.py`                 one MQTT message → a tracker update or a store write (typed errors)
- `link.py`                   the persistent MQTT session: QoS 1 acked only after the commit
- `web.py`, `static/`         the dashboard and the HTTP API (aiohttp, WebSocket push)
- `service.py`                `gym serve`: link, writer and web together
"""
