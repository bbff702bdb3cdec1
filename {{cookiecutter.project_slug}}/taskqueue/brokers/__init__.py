"""The brokers: what the standard tasks API (backend.py) asks of the project's broker
(orm.py or redis.py, one per project), and a broker class tuned for the database where
the project has one."""
