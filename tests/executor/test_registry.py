"""Registry validation: every mistake names the task and the field."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import EXECUTOR, TASKS, TEST_ENV, child_env, make_envs_dir, write_registry

from vpe_executor.registry import RegistryError, TaskArgumentError, TaskSpec, load_registry

GOOD = {"env": TEST_ENV, "script": str(TASKS / "echo.py"), "args": ["x"], "timeout_seconds": 5}


@pytest.fixture
def envs_dir(tmp_path: Path) -> Path:
    return make_envs_dir(tmp_path)


def test_good_registry_builds_argv(tmp_path: Path, envs_dir: Path) -> None:
    registry = load_registry(write_registry(tmp_path, {"echo": GOOD}), envs_dir)
    assert registry["echo"].argv(["y"]) == [
        str(envs_dir / TEST_ENV / "bin" / "python"),
        str(TASKS / "echo.py"),
        "x",
        "y",
    ]
    assert registry["echo"].timeout_seconds == 5.0


def test_shipped_registry_is_valid(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    for env in ("ingestion",):
        (envs / env / "bin").mkdir(parents=True)
        (envs / env / "bin" / "python").symlink_to(sys.executable)
    registry = load_registry(EXECUTOR / "tasks.toml", envs)
    assert {"extract_catalog", "import_events", "ping_env"} <= set(registry)
    assert all(spec.script.is_file() for spec in registry.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env": None}, "task 'bad': field 'env' is required"),
        ({"env": "../x"}, "task 'bad': field 'env' must be an environment name"),
        ({"env": "missing"}, "task 'bad': field 'env' names 'missing' but"),
        ({"script": None}, "task 'bad': field 'script' is required"),
        ({"script": "nope.py"}, "task 'bad': field 'script' points to missing file"),
        ({"args": "x"}, "task 'bad': field 'args' must be a list of strings"),
        ({"args": [1]}, "task 'bad': field 'args' must be a list of strings"),
        ({"timeout_seconds": None}, "task 'bad': field 'timeout_seconds' is required"),
        ({"timeout_seconds": 0}, "task 'bad': field 'timeout_seconds' must be a positive number"),
        ({"timeout_seconds": "9"}, "task 'bad': field 'timeout_seconds' must be a positive"),
        ({"timeout_seconds": True}, "task 'bad': field 'timeout_seconds' must be a positive"),
        ({"retries": 3}, "task 'bad': unknown field(s) ['retries']"),
    ],
)
def test_invalid_task_names_task_and_field(
    tmp_path: Path, envs_dir: Path, change: dict[str, Any], message: str
) -> None:
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = write_registry(tmp_path, {"good": GOOD, "bad": body})
    with pytest.raises(RegistryError) as caught:
        load_registry(path, envs_dir)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "needs at least one [tasks.<name>] table"),
        ("tasks = 3\n", "needs at least one [tasks.<name>] table"),
        ("[tasks.a\n", "invalid TOML"),
        ("[other]\n[tasks.a]\n", "unknown top-level keys ['other']"),
        ("[tasks]\na = 1\n", "task 'a': must be a table"),
    ],
)
def test_invalid_document(tmp_path: Path, envs_dir: Path, text: str, message: str) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    with pytest.raises(RegistryError) as caught:
        load_registry(path, envs_dir)
    assert message in str(caught.value)


def test_server_refuses_to_start_with_bad_registry(
    tmp_path: Path, envs_dir: Path, generated_dir: Path
) -> None:
    registry = write_registry(tmp_path, {"bad": {**GOOD, "timeout_seconds": -1}})
    proc = subprocess.run(
        [sys.executable, "-m", "vpe_executor", "--registry", str(registry),
         "--envs-dir", str(envs_dir), "--logs-dir", str(tmp_path), "--port", "0"],
        env=child_env(generated_dir), capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "configuration error: task 'bad': field 'timeout_seconds'" in proc.stderr


# Declared request arguments: the registry's own checks at load, then validated_args.

ARGUMENTS = {
    "--date": {"type": "date", "required": True},
    "--count": {"type": "integer", "min": 1, "max": 10},
    "--limit": {"type": "integer"},
    "--format": {"choices": ["csv", "xlsx"]},
    "--tag": {"pattern": "[a-z]{1,8}"},
}
DAY = ["--date", "2024-05-01"]
DATE = "expected a date YYYY-MM-DD"
COUNT = "expected an integer in 1..10"
UNSAFE = "contains NUL, CR or LF"


@pytest.fixture
def spec(tmp_path: Path, envs_dir: Path) -> TaskSpec:
    body = {**GOOD, "arguments": ARGUMENTS}
    return load_registry(write_registry(tmp_path, {"strict": body}), envs_dir)["strict"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--date", "2024-02-29"], ["--date", "2024-02-29"]),
        (
            ["--tag", "abc", *DAY, "--count", "10", "--format", "xlsx"],
            ["--tag", "abc", *DAY, "--count", "10", "--format", "xlsx"],
        ),
        (["--date=2024-05-01", "--count=1"], [*DAY, "--count", "1"]),
        ([*DAY, "--limit", "123456789"], [*DAY, "--limit", "123456789"]),
    ],
)
def test_declared_arguments_pass_in_the_requests_order(
    spec: TaskSpec, args: list[str], expected: list[str]
) -> None:
    assert spec.validated_args(args) == expected
    assert spec.argv(spec.validated_args(args))[-len(expected) :] == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*DAY, "--buffer-dir", "/x"], "argument '--buffer-dir' is not accepted"),
        ([*DAY, "--source=/etc/passwd"], "argument '--source' is not accepted"),
        (["--dat", "2024-05-01"], "argument '--dat' is not accepted"),
        (["-d", "2024-05-01"], "argument '-d' is not accepted"),
        (["2024-05-01"], "unexpected value '2024-05-01': arguments are --name value pairs"),
        ([*DAY, "x"], "unexpected value 'x'"),
        (["--date"], f"argument '--date' needs a value; {DATE}"),
        ([*DAY, "--date", "2024-05-02"], "argument '--date' is given more than once"),
        (["--date=2024-05-01", "--date=2024-05-01"], "argument '--date' is given more than once"),
        (["--count", "2"], f"argument '--date' is required; {DATE}"),
        ([], "argument '--date' is required"),
        (["--date", "2024-02-30"], f"argument '--date': {DATE}, got '2024-02-30'"),
        (["--date", "2023-02-29"], f"argument '--date': {DATE}"),
        (["--date", "20240501"], f"argument '--date': {DATE}, got '20240501'"),
        (["--date", "2024-W18-3"], f"argument '--date': {DATE}"),
        (["--date", "2024-05-01T00:00"], f"argument '--date': {DATE}"),
        (["--date", "\uff12\uff10\uff12\uff14-05-01"], f"argument '--date': {DATE}"),  # fullwidth
        (["--date="], f"argument '--date': {DATE}, got ''"),
        ([*DAY, "--count", "0"], f"argument '--count': {COUNT}, got '0'"),
        ([*DAY, "--count", "11"], f"argument '--count': {COUNT}"),
        ([*DAY, "--count", "+5"], f"argument '--count': {COUNT}"),
        ([*DAY, "--count", " 5"], f"argument '--count': {COUNT}"),
        ([*DAY, "--count", "1_0"], f"argument '--count': {COUNT}"),
        ([*DAY, "--count", "\u0665"], f"argument '--count': {COUNT}"),  # Arabic-Indic five
        ([*DAY, "--limit", "9" * 5000], "argument '--limit': expected an integer, got '9999"),
        ([*DAY, "--limit", "-1"], "argument '--limit': value '-1' starts with '-'"),
        ([*DAY, "--format", "json"], "argument '--format': expected one of 'csv', 'xlsx'"),
        ([*DAY, "--format", "CSV"], "argument '--format': expected one of 'csv', 'xlsx'"),
        ([*DAY, "--tag", "abc1"], "argument '--tag': expected a value matching '[a-z]{1,8}'"),
        ([*DAY, "--tag", "abcdefghi"], "argument '--tag': expected a value matching"),
        (["--date", "--tag", "x"], "argument '--date': value '--tag' starts with '-'"),
        ([*DAY, "--tag", "-x"], "argument '--tag': value '-x' starts with '-'"),
        ([*DAY, "--tag", "a\x00"], f"argument '--tag': value 'a\\x00' {UNSAFE}"),
        ([*DAY, "--tag", "a\nb"], f"argument '--tag': value 'a\\nb' {UNSAFE}"),
        ([*DAY, "--tag", "a\r"], f"argument '--tag': value 'a\\r' {UNSAFE}"),
    ],
)
def test_undeclared_or_ill_formed_arguments_are_refused_by_name(
    spec: TaskSpec, args: list[str], message: str
) -> None:
    with pytest.raises(TaskArgumentError) as caught:
        spec.validated_args(args)
    assert str(caught.value).startswith("task 'strict': ")
    assert message in str(caught.value)


def test_refusals_quote_long_values_briefly(spec: TaskSpec) -> None:
    with pytest.raises(TaskArgumentError) as caught:
        spec.validated_args(["--" + "x" * 10_000, "1"])
    assert "argument '--xxx" in str(caught.value)
    assert len(str(caught.value)) < 300


def test_a_task_without_arguments_table_accepts_none(tmp_path: Path, envs_dir: Path) -> None:
    plain = {k: v for k, v in GOOD.items() if k != "args"}
    spec = load_registry(write_registry(tmp_path, {"plain": plain}), envs_dir)["plain"]
    assert spec.validated_args([]) == []
    for args in (DAY, ["x"]):
        with pytest.raises(TaskArgumentError) as caught:
            spec.validated_args(args)
        assert "(accepted arguments: none)" in str(caught.value)


NAME = "a name must look like --[a-z][a-z0-9-]*"
ONE_KIND = "needs exactly one of the fields 'type', 'choices', 'pattern'"
BOUND = "must be an integer >= 0"
CHOICES = "field 'choices' must be a non-empty list of distinct non-empty strings"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("--date", "task 'bad': field 'arguments' must be a table"),
        (["--date"], "task 'bad': field 'arguments' must be a table"),
        ({"date": {"type": "date"}}, f"task 'bad': argument 'date': {NAME}"),
        ({"-d": {"type": "date"}}, f"task 'bad': argument '-d': {NAME}"),
        ({"--Date": {"type": "date"}}, f"task 'bad': argument '--Date': {NAME}"),
        ({"--1st": {"type": "date"}}, f"task 'bad': argument '--1st': {NAME}"),
        ({"--a_b": {"type": "date"}}, f"task 'bad': argument '--a_b': {NAME}"),
        ({"--a=b": {"type": "date"}}, f"task 'bad': argument '--a=b': {NAME}"),
        ({"--date": "date"}, "task 'bad': argument '--date': must be a table"),
        ({"--date": {}}, f"task 'bad': argument '--date': {ONE_KIND}, got []"),
        ({"--date": {"required": True}}, f"task 'bad': argument '--date': {ONE_KIND}"),
        ({"--date": {"type": "date", "pattern": "x"}}, f"{ONE_KIND}, got ['type', 'pattern']"),
        ({"--date": {"type": "date", "requird": 1}}, "'--date': unknown field(s) ['requird']"),
        (
            {"--date": {"type": "path"}},
            "'--date': field 'type' must be date or integer, got 'path'",
        ),
        ({"--date": {"type": 1}}, "task 'bad': argument '--date': field 'type' must be date or"),
        ({"--date": {"type": "date", "required": "yes"}}, "'required' must be true or false"),
        ({"--date": {"type": "date", "min": 1}}, "'--date': fields 'min' and 'max' need type"),
        ({"--tag": {"pattern": "x", "max": 1}}, "'--tag': fields 'min' and 'max' need type"),
        ({"--n": {"type": "integer", "min": -1}}, f"'--n': field 'min' {BOUND}, got -1"),
        ({"--n": {"type": "integer", "max": 1.5}}, f"'--n': field 'max' {BOUND}, got 1.5"),
        ({"--n": {"type": "integer", "max": True}}, f"'--n': field 'max' {BOUND}, got True"),
        ({"--n": {"type": "integer", "min": 5, "max": 1}}, "'min' (5) exceeds field 'max' (1)"),
        ({"--f": {"choices": []}}, f"task 'bad': argument '--f': {CHOICES}"),
        ({"--f": {"choices": "csv"}}, f"'--f': {CHOICES}"),
        ({"--f": {"choices": ["a", "a"]}}, f"'--f': {CHOICES}"),
        ({"--f": {"choices": [1]}}, f"'--f': {CHOICES}"),
        ({"--f": {"choices": [""]}}, f"'--f': {CHOICES}"),
        ({"--f": {"choices": ["-x"]}}, "'--f': choice '-x' could never be given"),
        ({"--f": {"choices": ["a\nb"]}}, "'--f': choice 'a\\nb' could never be given"),
        ({"--p": {"pattern": "("}}, "task 'bad': argument '--p': field 'pattern' '(' is not a"),
        ({"--p": {"pattern": ""}}, "'--p': field 'pattern' must be a non-empty regular expression"),
        ({"--p": {"pattern": 3}}, "'--p': field 'pattern' must be a non-empty regular expression"),
        ({"--x": {"pattern": "a"}}, "task 'bad': argument(s) ['--x'] are among its fixed 'args'"),
    ],
)
def test_invalid_arguments_table_names_task_argument_and_field(
    tmp_path: Path, envs_dir: Path, arguments: Any, message: str
) -> None:
    body = {**GOOD, "args": ["--x=1"], "arguments": arguments}
    path = write_registry(tmp_path, {"good": GOOD, "bad": body})
    with pytest.raises(RegistryError) as caught:
        load_registry(path, envs_dir)
    assert message in str(caught.value)


def test_arguments_as_a_sub_table(tmp_path: Path, envs_dir: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(
        f'[tasks.t]\nenv = "{TEST_ENV}"\nscript = "{TASKS / "echo.py"}"\ntimeout_seconds = 5\n'
        '[tasks.t.arguments]\n"--date" = { type = "date", required = true }\n'
    )
    spec = load_registry(path, envs_dir)["t"]
    assert spec.validated_args(DAY) == DAY


# The shipped registry: the DAG's calls pass, nothing else does, and no argument is a path.


@pytest.fixture
def shipped(tmp_path: Path) -> dict[str, TaskSpec]:
    envs = tmp_path / "envs"
    (envs / "ingestion" / "bin").mkdir(parents=True)
    (envs / "ingestion" / "bin" / "python").symlink_to(sys.executable)
    return load_registry(EXECUTOR / "tasks.toml", envs)


def dag_calls(platform: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The executor calls of dags/ingestion.py (DATE_ARGS, format_args) for one date."""
    calls = [("fetch_weather", DAY), ("import_weather", DAY)]
    for source_format in platform["catalogSources"]:
        format_args = [*DAY, "--format", source_format]
        calls += [("extract_catalog", format_args), ("import_events", format_args)]
    return calls


def test_shipped_registry_accepts_the_dags_calls(
    shipped: dict[str, TaskSpec], platform: dict[str, Any]
) -> None:
    for command, args in dag_calls(platform):
        assert shipped[command].validated_args(args) == args
        with pytest.raises(TaskArgumentError, match="'--date' is required"):
            shipped[command].validated_args(args[2:])


def test_shipped_format_choices_are_the_platforms_catalog_sources(
    shipped: dict[str, TaskSpec], platform: dict[str, Any]
) -> None:
    for command in ("extract_catalog", "import_events"):
        choices = shipped[command].arguments["--format"].choices
        assert set(choices) == set(platform["catalogSources"])


@pytest.mark.parametrize(
    ("command", "args", "named"),
    [
        # The issue's attacks: redirect extract_catalog's output, or make it read any file.
        ("extract_catalog", [*DAY, "--buffer-dir", "/opt/vpe/logs/executor"], "'--buffer-dir'"),
        ("extract_catalog", [*DAY, "--format", "csv", "--source", "/etc/passwd"], "'--source'"),
        ("import_events", [*DAY, "--format", "csv", "--buffer-dir", "/tmp"], "'--buffer-dir'"),
        ("fetch_weather", [*DAY, "--cache-dir", "/tmp"], "'--cache-dir'"),
        ("fetch_weather", [*DAY, "--buffer-dir", "/tmp"], "'--buffer-dir'"),
        ("fetch_weather", [*DAY, "--backoff-base", "0"], "'--backoff-base'"),
        ("import_weather", [*DAY, "--buffer-dir", "/tmp"], "'--buffer-dir'"),
        ("ping_env", ["--stamp-file", "/tmp/stamp"], "'--stamp-file'"),
        ("ping_env", ["--stamp", "../../buffer/x"], "'--stamp'"),
    ],
)
def test_shipped_registry_refuses_paths(
    shipped: dict[str, TaskSpec], command: str, args: list[str], named: str
) -> None:
    with pytest.raises(TaskArgumentError) as caught:
        shipped[command].validated_args(args)
    assert named in str(caught.value)


PATH_LIKE_NAME = re.compile(r"dir|file|path|folder|root|source|src|dest|target|output|input")
PATH_LIKE_VALUES = ("/etc/passwd", "../x", "a/b", "a\\b", ".", "..", "~")


def test_shipped_registry_declares_no_path_argument(shipped: dict[str, TaskSpec]) -> None:
    for task, spec in shipped.items():
        for name, argument in spec.arguments.items():
            where = f"task {task!r} argument {name!r}"
            assert not PATH_LIKE_NAME.search(name), f"{where}: its name looks like a path"
            accepted = [v for v in PATH_LIKE_VALUES if argument.problem(v) is None]
            assert accepted == [], f"{where}: accepts path-like values {accepted}"
