"""The migrations gate (runs in `nox -s qa`): no model change without a migration, and every migration of the
project's own apps reverses to zero and applies again (the test database itself was migrated from empty)."""

from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

SITE = Path(__file__).resolve().parents[2] / "django_site"


def project_apps() -> list[str]:
    """The labels of the apps that live in this project (Django's own are tested by Django)."""
    return [config.label for config in apps.get_app_configs() if Path(config.path).is_relative_to(SITE)]


@pytest.mark.django_db  # makemigrations also checks the applied history against the database
def test_every_model_change_has_a_migration():
    output = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=output, stderr=output)
    except SystemExit:
        pytest.fail(
            "a model change has no migration; run invoke manage makemigrations and commit it:\n" + output.getvalue()
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("app", project_apps())
def test_migrations_reverse_to_zero_and_apply_again(app):
    try:
        call_command("migrate", app, "zero", verbosity=0)
        assert not [table for table in connection.introspection.table_names() if table.startswith(f"{app}_")]
    finally:
        call_command("migrate", verbosity=0)
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
