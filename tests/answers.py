"""The answer combinations the template supports: the template's tests bake these.

Each is a set of extra_context values over cookiecutter.json's defaults. The four
database x broker combinations, plus "custom": other names and numbers everywhere
(an apostrophe in the project name, another app name, every q_* value changed).
"""

COMBINATIONS = {
    "sqlite-orm": {"database": "sqlite", "broker": "orm"},
    "sqlite-redis": {"database": "sqlite", "broker": "redis"},
    "postgresql-orm": {"database": "postgresql", "broker": "orm"},
    "postgresql-redis": {"database": "postgresql", "broker": "redis"},
    "custom": {
        "project_name": "Bob's Invoices",
        "app_name": "billing",
        "q_workers": "4",
        "q_timeout": "30",
        "q_retry": "45",
        "q_queue_limit": "20",
        "q_recycle": "10",
        "q_max_attempts": "5",
        "task_success_limit": "1000",
    },
}

# Files that exist only for one answer ({app}: the app name).
ONLY_FOR = {
    ("database", "sqlite"): ("{app}/sqlite.py", "tests/test_sqlite.py", "docs/sqlite.md"),
    ("database", "postgresql"): ("docs/postgresql.md",),
    ("broker", "orm"): (
        "{app}/migrations/0001_create_cache_table.py",
        "tests/test_orm_broker.py",
        "docs/broker-orm.md",
    ),
    ("broker", "redis"): ("tests/test_redis_broker.py", "docs/broker-redis.md"),
}

# What the template's tests never do: make a virtualenv (the test interpreter has
# every requirement). A test that needs one says so.
NO_VIRTUALENV = {"create_virtualenv": "no"}
