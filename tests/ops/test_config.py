"""Settings that say what is wrong (issue 14 item 4): unknown ``WFRUN_*`` variables and TOML
keys are refused with the closest valid name, a missing config file and bad TOML are errors,
bad values name their source; ``wfrun config show`` prints the effective settings, secrets
masked, with where each came from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.ops.wfrun_process import environment, error_lines, run
from wfrun.config import load_settings
from wfrun.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``WFRUN_*`` variable of the test run leaks in; relative paths land in tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("WFRUN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def refusal(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value.message


def test_misspelled_variables_get_the_closest_name(monkeypatch: pytest.MonkeyPatch):
    assert refusal(monkeypatch, WFRUN_WORKER__CONCURENCY="8") == (
        "unknown setting WFRUN_WORKER__CONCURENCY (did you mean WFRUN_WORKER__CONCURRENCY?)"
    )
    monkeypatch.delenv("WFRUN_WORKER__CONCURENCY")
    assert refusal(monkeypatch, WFRUN_DATADIR="x", WFRUN_ZZZ="1") == (
        "unknown setting WFRUN_DATADIR (did you mean WFRUN_DATA_DIR?); "
        "unknown setting WFRUN_ZZZ (wfrun config show lists every setting)"
    )


def test_groups_and_their_json_are_checked(monkeypatch: pytest.MonkeyPatch):
    assert refusal(monkeypatch, WFRUN_WORKERS__CONCURRENCY="2") == (
        "unknown setting WFRUN_WORKERS__CONCURRENCY (did you mean WFRUN_WORKER__CONCURRENCY?)"
    )
    monkeypatch.delenv("WFRUN_WORKERS__CONCURRENCY")
    assert refusal(monkeypatch, WFRUN_WORKER='{"concurency": 2}') == (
        "unknown setting worker.concurency in WFRUN_WORKER (did you mean worker.concurrency?)"
    )


def test_variables_that_are_not_settings_pass(monkeypatch: pytest.MonkeyPatch):
    for name in ("WFRUN_BASE_URL", "WFRUN_API_KEY", "WFRUN_TEST_PG_DSN", "WFRUN_VENV"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("WFRUN_WORKER__CONCURRENCY", "7")
    monkeypatch.setenv(
        "WFRUN_SEEDANCE__PRICES", '{"m": {"per_million": "1", "per_million_with_video": "2"}}'
    )
    settings = load_settings()
    assert settings.worker.concurrency == 7
    assert settings.seedance.prices["m"].per_million_with_video == "2"
    assert settings.sources.origin("worker.concurrency") == "env WFRUN_WORKER__CONCURRENCY"
    assert settings.sources.origin("worker.lease_seconds") == "default"


def test_unknown_toml_keys_at_any_depth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    (tmp_path / "wfrun.toml").write_text(
        'prot = 9000\n[storage]\nbackend = "local"\ns3_bucker = "b"\n'
        '[seedance.prices."m1"]\nper_million = "1"\nper_milion_with_video = "2"\n'
    )
    assert refusal(monkeypatch, WFRUN_CONFIG="wfrun.toml") == (
        "unknown setting prot in wfrun.toml (did you mean port?); "
        "unknown setting storage.s3_bucker in wfrun.toml (did you mean storage.s3_bucket?); "
        "unknown setting seedance.prices.m1.per_milion_with_video in wfrun.toml "
        "(did you mean seedance.prices.m1.per_million_with_video?)"
    )


def test_config_file_problems(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert refusal(monkeypatch, WFRUN_CONFIG="nope.toml") == (
        "config file nope.toml (WFRUN_CONFIG) does not exist; fix it or unset WFRUN_CONFIG"
    )
    (tmp_path / "dir.toml").mkdir()
    assert refusal(monkeypatch, WFRUN_CONFIG="dir.toml") == (
        "cannot read config file dir.toml (WFRUN_CONFIG): Is a directory; "
        "fix it or unset WFRUN_CONFIG"
    )
    (tmp_path / "bad.toml").write_text('port = 8001\nhost = "127.0.0.1\n')
    assert refusal(monkeypatch, WFRUN_CONFIG="bad.toml") == (
        "bad.toml:2:18: invalid TOML: Illegal character '\\n'; fix it or unset WFRUN_CONFIG"
    )


def test_bad_values_name_their_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    (tmp_path / "wfrun.toml").write_text("[worker]\nconcurrency = 0\n")
    assert refusal(monkeypatch, WFRUN_CONFIG="wfrun.toml") == (
        "invalid setting worker.concurrency (config file wfrun.toml): "
        "Input should be greater than or equal to 1 (got 0)"
    )
    monkeypatch.delenv("WFRUN_CONFIG")
    assert refusal(monkeypatch, WFRUN_SECRET_KEY="s3cr3t", WFRUN_SEED_DEMO="maybe") == (
        "invalid setting WFRUN_SEED_DEMO: Input should be a valid boolean, unable to "
        "interpret input (got 'maybe')"
    )
    url = "mysql://root:hunter2@db/wfrun"
    message = refusal(monkeypatch, WFRUN_SEED_DEMO="true", WFRUN_DATABASE_URL=url)
    assert message == (
        "invalid setting WFRUN_DATABASE_URL: unknown database scheme 'mysql'; "
        "expected sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
    )


def test_config_show_masks_secrets_and_names_sources(tmp_path: Path):
    (tmp_path / "wfrun.toml").write_text(
        '[storage]\nbackend = "s3"\ns3_bucket = "media"\ns3_secret_access_key = "tomlsecret"\n'
        "[worker]\nlease_seconds = 12.5\n"
    )
    env = environment(
        WFRUN_CONFIG="wfrun.toml",
        WFRUN_DATABASE_URL="postgresql://ops:pgsecret@db.internal:5432/wfrun",
        WFRUN_SECRET_KEY="signsecret",
        WFRUN_SEEDANCE__ARK_API_KEY="arksecret",
        WFRUN_WORKER__CONCURRENCY="6",
    )
    done = run(tmp_path, "--data-dir", "srv", "config", "show", "--json", env=env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["config_file"] == "wfrun.toml"
    rows = shown["settings"]
    assert rows["data_dir"] == {"value": "srv", "source": "command line"}
    assert rows["database_url"] == {
        "value": "postgresql://ops:********@db.internal:5432/wfrun",
        "source": "env WFRUN_DATABASE_URL",
    }
    assert rows["secret_key"] == {"value": "********", "source": "env WFRUN_SECRET_KEY"}
    assert rows["seedance.ark_api_key"] == {
        "value": "********",
        "source": "env WFRUN_SEEDANCE__ARK_API_KEY",
    }
    assert rows["seedance.secret_access_key"] == {"value": None, "source": "default"}
    assert rows["storage.s3_secret_access_key"] == {
        "value": "********",
        "source": "config file wfrun.toml",
    }
    assert rows["storage.s3_bucket"] == {"value": "media", "source": "config file wfrun.toml"}
    assert rows["worker.concurrency"] == {"value": 6, "source": "env WFRUN_WORKER__CONCURRENCY"}
    assert rows["worker.lease_seconds"] == {"value": 12.5, "source": "config file wfrun.toml"}
    assert rows["port"] == {"value": 8000, "source": "default"}
    for secret in ("pgsecret", "signsecret", "arksecret", "tomlsecret"):
        assert secret not in done.stdout
    text = run(tmp_path, "config", "show", env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["data_dir", "=", '".wfrun"', "#", "default"]
    assert "worker.concurrency = 6" in text.stdout
    for secret in ("pgsecret", "signsecret", "arksecret", "tomlsecret"):
        assert secret not in text.stdout


def test_config_show_with_a_bad_setting_is_one_line(tmp_path: Path):
    env = environment(WFRUN_LIVE__POLL_INTERVALL="1")
    done = run(tmp_path, "config", "show", env=env)
    assert (done.returncode, error_lines(done)) == (
        2,
        [
            (
                "error: unknown setting WFRUN_LIVE__POLL_INTERVALL "
                "(did you mean WFRUN_LIVE__POLL_INTERVAL?)"
            )
        ],
    )
