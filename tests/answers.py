"""The answer combinations the template supports: the template's tests bake these.

Each is a set of extra_context values over cookiecutter.json's defaults. The four
database x broker combinations, "custom": other names and numbers everywhere (an
apostrophe in the project name, the research notes' app name, every number changed),
and "edge": the limits the pre-generation hook accepts (recycle 1 among them).
"""

COMBINATIONS = {
    "sqlite-orm": {"database": "sqlite", "broker": "orm"},
    "sqlite-redis": {"database": "sqlite", "broker": "redis"},
    "postgresql-orm": {"database": "postgresql", "broker": "orm"},
    "postgresql-redis": {"database": "postgresql", "broker": "redis"},
    "custom": {
        "project_name": "Bob's Invoices",
        "app_name": "accounts",
        "q_workers": "4",
        "q_timeout": "30",
        "q_queue_limit": "20",
        "q_retry": "245",
        "q_recycle": "10",
        "q_max_rss": "524288",
        "q_max_attempts": "5",
        "task_retry_delay": "30",
        "task_success_limit": "1000",
    },
    # The limits the pre-generation hook accepts: the longest names, the smallest numbers.
    "edge": {
        "project_name": "An Edge Project Whose Name Is As Long As The Template Allows",
        "project_slug": "edge_project_with_a_long_slug_",
        "app_name": "an_app_name_that_is_thirty_ch_",
        "q_workers": "1",
        "q_timeout": "1",
        "q_queue_limit": "1",
        "q_retry": "18",
        "q_recycle": "1",
        "q_max_rss": "10240",
        "q_max_attempts": "1",
        "task_retry_delay": "0",
        "task_success_limit": "1",
    },
}

# Files that exist only for one answer.
ONLY_FOR = {
    ("database", "sqlite"): (
        "taskqueue/sqlite.py",
        "taskqueue/management/commands/backup.py",
        "taskqueue/management/commands/restore.py",
        "tests/test_sqlite.py",
        "tests/test_backup.py",
        "taskqueue/replication.py",
        "taskqueue/management/commands/replicate.py",
        "taskqueue/management/commands/restore_replica.py",
        "deploy/litestream.yml",
        "docs/sqlite.md",
        "docs/performance.md",
    ),
    ("database", "postgresql"): (
        "docs/postgresql.md",
        "tests/test_postgresql.py",
        "tests/hosts.py",
        "tests/test_hosts.py",
    ),
    ("broker", "orm"): (
        "taskqueue/brokers/orm.py",
        "taskqueue/migrations/0002_create_cache_table.py",
        "tests/test_orm_broker.py",
        "docs/broker-orm.md",
    ),
    ("broker", "redis"): (
        "taskqueue/brokers/redis.py",
        "tests/test_redis_broker.py",
        "docs/broker-redis.md",
    ),
}

# What the template's tests never do: make a virtualenv (the test interpreter has
# every requirement). A test that needs one says so.
NO_VIRTUALENV = {"create_virtualenv": "no"}
