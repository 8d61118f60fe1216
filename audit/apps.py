from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _sqlite_functions(sender, connection, **kwargs):
    """SQLite's LOWER folds only ASCII; the query language compares Unicode case-insensitively."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "lens_lower", 1, lambda value: value.lower() if isinstance(value, str) else value, deterministic=True
        )


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        connection_created.connect(_sqlite_functions, dispatch_uid="audit.sqlite_functions")
