"""The master URL the pinned Spark provider builds from the connection the stack provisions.

Some provider versions dropped the spark:// scheme of env-var connections (airflow #56453);
spark-submit then fails. The stack provisions AIRFLOW_CONN_SPARK_DEFAULT as
{"conn_type": "spark", "host": "spark://<master alias>", "port": <master port>}.
"""

import json
from typing import Any

import pytest
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook


def master_url(platform: dict[str, Any]) -> str:
    return f"spark://{platform['aliases']['sparkMaster']}:{platform['ports']['sparkMaster']}"


def connection_forms(platform: dict[str, Any]) -> dict[str, str]:
    alias, port = platform["aliases"]["sparkMaster"], platform["ports"]["sparkMaster"]
    return {
        "stack json (scheme in host)": json.dumps(
            {"conn_type": "spark", "host": f"spark://{alias}", "port": port}
        ),
        "json without scheme": json.dumps({"conn_type": "spark", "host": alias, "port": port}),
        "uri": f"spark://{alias}:{port}",
    }


@pytest.mark.parametrize("form", ["stack json (scheme in host)", "json without scheme", "uri"])
def test_provider_builds_the_standalone_master_url(
    platform: dict[str, Any], monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    conn_id = platform["connections"]["spark"]
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_forms(platform)[form])
    hook = SparkSubmitHook(conn_id=conn_id)
    assert hook._connection["master"] == master_url(platform)
    command = hook._build_spark_submit_command("job.py")
    assert command[command.index("--master") + 1] == master_url(platform)
