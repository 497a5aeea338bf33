import re

from usagemeter.consumers import migrations

# Statements that can run twice: a migration interrupted half-way is applied again from its start.
_IDEMPOTENT = re.compile(
    r"^(CREATE (TABLE|VIEW|MATERIALIZED VIEW|DICTIONARY|FUNCTION) IF NOT EXISTS|CREATE OR REPLACE"
    r"|ALTER TABLE \w+ MODIFY (SETTING|QUERY)|DROP \w+( \w+)? IF EXISTS|SYSTEM RELOAD)\b"
)


def test_every_migration_splits_into_idempotent_statements() -> None:
    found = migrations.available()
    assert [m.version for m in found] == sorted({m.version for m in found})
    for migration in found:
        for statement in migration.statements():
            assert _IDEMPOTENT.match(statement), (migration.name, statement[:60])
