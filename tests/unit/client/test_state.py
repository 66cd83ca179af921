"""pli.client.state: files under PLI_HOME, private and written atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import cast

import pytest

from pli.client.state import Home, default_home
from pli.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "state" / "pli")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_creates_a_private_directory_and_file(home: Home) -> None:
    home.write("token", b"secret token")
    assert mode(home.path) == 0o700
    assert mode(home.path / "token") == 0o600
    assert (home.path / "token").read_bytes() == b"secret token"


def test_files_stay_private_under_a_permissive_umask(home: Home) -> None:
    old = os.umask(0)
    try:
        home.write("identity.age", b"sealed")
        home.write("identity.age", b"sealed again")
    finally:
        os.umask(old)
    assert mode(home.path) == 0o700
    assert mode(home.path / "identity.age") == 0o600


def test_rewrite_replaces_the_file_atomically(home: Home) -> None:
    home.write("pins.json", b"first")
    before = (home.path / "pins.json").stat().st_ino
    with (home.path / "pins.json").open("rb") as reader:
        home.write("pins.json", b"second")
        # A reader holding the old file still sees it whole: the new one was renamed over it.
        assert reader.read() == b"first"
    assert (home.path / "pins.json").read_bytes() == b"second"
    assert (home.path / "pins.json").stat().st_ino != before
    assert mode(home.path / "pins.json") == 0o600


def test_no_temporary_files_are_left(home: Home) -> None:
    for i in range(5):
        home.write("session.json", f"{i}".encode())
    assert sorted(p.name for p in home.path.iterdir()) == ["session.json"]


def test_failed_write_keeps_the_old_file(home: Home) -> None:
    home.write("session.json", b"good")
    with pytest.raises(TypeError):
        home.write("session.json", cast("bytes", "not bytes"))
    assert home.read("session.json") == b"good"
    assert sorted(p.name for p in home.path.iterdir()) == ["session.json"]


def test_read_missing_is_none(home: Home) -> None:
    assert home.read("absent") is None
    assert home.read_json("absent") is None


def test_delete(home: Home) -> None:
    home.write("token", b"x")
    home.delete("token")
    assert home.read("token") is None
    home.delete("token")  # deleting what is gone is fine
    assert not (home.path / "token").exists()


def test_json_round_trip(home: Home) -> None:
    value = {"server": "https://pli.example.org", "nested": {"list": [1, "é", None]}}
    home.write_json("config.json", value)
    assert home.read_json("config.json") == value
    assert mode(home.path / "config.json") == 0o600


def test_corrupted_json_is_a_config_error(home: Home) -> None:
    home.write("config.json", b"{not json")
    with pytest.raises(ConfigError) as info:
        home.read_json("config.json")
    assert "config.json" in str(info.value)
    home.write("config.json", b"\xff\xfe")
    with pytest.raises(ConfigError):
        home.read_json("config.json")


def test_default_home_follows_pli_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLI_HOME", str(tmp_path / "custom"))
    assert default_home() == tmp_path / "custom"
    assert Home().path == tmp_path / "custom"


def test_default_home_without_pli_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLI_HOME", raising=False)
    path = default_home()
    assert path.is_absolute()
    assert path.name == "pli"
