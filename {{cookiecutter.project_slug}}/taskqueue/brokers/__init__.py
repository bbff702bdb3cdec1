"""The brokers: what the standard tasks API (backend.py) asks of the project's broker
(orm.py or redis.py, one per project), and the SQLite broker class (sqlite.py)."""
