-- A regexp_tree dictionary with no rows throws on every lookup (code 489), so a store whose price book
-- is not loaded yet would refuse every insert. One node that can never match keeps it answerable.
CREATE OR REPLACE VIEW model_pattern_current AS
SELECT id, toUInt64(0) AS parent_id, regexp, ['target'] AS keys, [target] AS values
FROM model_pattern_source
WHERE book_version = (SELECT max(book_version) FROM model_pattern_source)
UNION ALL
SELECT toUInt64(18446744073709551615) AS id, toUInt64(0) AS parent_id, '[^\\s\\S]' AS regexp,
       ['target'] AS keys, ['!never'] AS values;

SYSTEM RELOAD DICTIONARY model_pattern;
