"""Version pins agree: platform.json, the Airflow constraints, the test requirements, and the
Python minor of the Airflow image (PySpark driver) and the Spark image (executors)."""

import re
import sys
from pathlib import Path
from typing import Any

from conftest import REPO

AIRFLOW_DIR = REPO / "docker" / "airflow"
SPARK_DIR = REPO / "docker" / "spark"
# python3 of each Debian release the Spark image can be built on (Debian's own package).
DEBIAN_PYTHON3 = {"bookworm": "3.11", "trixie": "3.13"}
PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def constraints() -> dict[str, str]:
    return pins(AIRFLOW_DIR / "constraints.txt")


def test_airflow_image_tag_carries_the_platform_python_minor(platform: dict[str, Any]) -> None:
    assert platform["images"]["airflow"].endswith(f"-python{platform['pythonMinor']}")
    assert platform["images"]["airflow"].split(":")[1].startswith(platform["versions"]["airflow"])


def test_spark_image_base_has_the_platform_python_minor(platform: dict[str, Any]) -> None:
    tag = platform["images"]["debian"].split(":")[1]
    releases = [release for release in DEBIAN_PYTHON3 if release in tag]
    assert len(releases) == 1, f"unknown Debian release in {tag}"
    assert DEBIAN_PYTHON3[releases[0]] == platform["pythonMinor"]


def test_dockerfiles_build_on_the_checked_base_images() -> None:
    airflow = (AIRFLOW_DIR / "Dockerfile").read_text()
    spark = (SPARK_DIR / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", airflow, re.M) == ["${AIRFLOW_IMAGE}", "${AIRFLOW_IMAGE}"]
    assert re.findall(r"^FROM (\S+)", spark, re.M) == ["${DEBIAN_IMAGE}"]
    # The Spark build also refuses a base whose python3 minor differs from pythonMinor.
    assert "json pythonMinor" in (SPARK_DIR / "build" / "setup.sh").read_text()


def test_constraints_match_platform_versions(platform: dict[str, Any]) -> None:
    pinned = constraints()
    versions = platform["versions"]
    assert pinned["apache-airflow"] == versions["airflow"]
    assert pinned["apache-airflow-core"] == versions["airflow"]
    assert pinned["pyspark"] == versions["pyspark"]
    # pyspark-client installs into the same package folder as pyspark.
    assert pinned["pyspark-client"] == versions["pyspark"]
    assert pinned["grpcio"] == pinned["grpcio-tools"] == versions["grpcio"]


def test_constraints_were_frozen_on_the_platform_python(platform: dict[str, Any]) -> None:
    header = (AIRFLOW_DIR / "constraints.txt").read_text().split("\n\n")[0]
    assert f"Python {platform['pythonMinor']}." in header
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == platform["pythonMinor"]


def test_image_requirements_are_all_pinned_by_the_constraints() -> None:
    lines = (AIRFLOW_DIR / "requirements.txt").read_text().splitlines()
    names = [canonical(line) for line in map(str.strip, lines) if line and not line.startswith("#")]
    assert names, "requirements.txt lists no package"
    assert all("=" not in name for name in names), "versions belong in constraints.txt only"
    missing = [name for name in names if name not in constraints()]
    assert missing == []


def test_test_requirements_agree_with_the_constraints() -> None:
    pinned = constraints()
    tests = pins(REPO / "tests" / "requirements" / "dags.txt")
    assert tests, "dags.txt pins nothing"
    differing = {n: (v, pinned[n]) for n, v in tests.items() if n in pinned and pinned[n] != v}
    assert differing == {}
