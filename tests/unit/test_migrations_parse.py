from usagemeter.consumers import migrations


def test_every_migration_splits_into_create_statements() -> None:
    found = migrations.available()
    assert [m.version for m in found] == sorted({m.version for m in found})
    for migration in found:
        for statement in migration.statements():
            assert statement.startswith("CREATE "), (migration.name, statement[:60])
