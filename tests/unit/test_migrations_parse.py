import re

import pytest

from usagemeter.consumers import migrations

# Statements that can run twice: a migration interrupted half-way is applied again from its start.
_IDEMPOTENT = re.compile(
    r"^(CREATE (TABLE|VIEW|MATERIALIZED VIEW|DICTIONARY|FUNCTION) IF NOT EXISTS|CREATE OR REPLACE"
    r"|ALTER TABLE \w+ MODIFY (SETTING|QUERY)|ALTER TABLE \w+ ADD COLUMN IF NOT EXISTS"
    r"|DROP \w+( \w+)? IF EXISTS|SYSTEM RELOAD)\b"
)


def test_every_migration_splits_into_idempotent_statements() -> None:
    found = migrations.available()
    assert [m.version for m in found] == sorted({m.version for m in found})
    for migration in found:
        for statement in migration.statements():
            assert _IDEMPOTENT.match(statement), (migration.name, statement[:60])


@pytest.mark.parametrize(
    ("sql", "statements"),
    [
        pytest.param("SELECT 1;\nSELECT 2;\n", ["SELECT 1", "SELECT 2"], id="one statement a line"),
        pytest.param("SELECT 'a;\nb';\nSELECT 2", ["SELECT 'a;\nb'", "SELECT 2"], id="semicolon in a string"),
        pytest.param("SELECT 'it''s;\n', 'x\\';\n';", ["SELECT 'it''s;\n', 'x\\';\n'"], id="escaped quotes"),
        pytest.param("-- a; comment;\nSELECT 1; -- end;\n", ["SELECT 1"], id="semicolons in line comments"),
        pytest.param("SELECT /* a;\nb; */ 1;", ["SELECT  1"], id="semicolons in a block comment"),
        pytest.param("SELECT `a;\nb` FROM t", ["SELECT `a;\nb` FROM t"], id="semicolon in an identifier"),
        pytest.param("SELECT '-- not a comment'", ["SELECT '-- not a comment'"], id="dashes in a string"),
        pytest.param("-- only a comment\n;\n", [], id="nothing but comments"),
    ],
)
def test_statements_split_only_outside_strings_and_comments(sql: str, statements: list[str]) -> None:
    assert migrations.split_statements(sql) == statements
