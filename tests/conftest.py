"""Shared fixtures: the real Kafka broker and the real ClickHouse engine, started once per session."""

pytest_plugins = ["tests.fixtures.clickhouse", "tests.fixtures.kafka", "tests.fixtures.webhook"]
