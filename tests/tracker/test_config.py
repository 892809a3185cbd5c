"""The configuration tree: TOML overlay, dotted overrides, round trip, errors that name the key."""

import math
import tomllib
from pathlib import Path

import pytest

from tracker.config import (
    TrackerConfig,
    config_from_dict,
    config_to_toml,
    load_config,
    override,
    parse_address,
)
from tracker.core.errors import ConfigError
from tracker.post.one_euro import SMOOTHING_PRESETS, OneEuroParams


def test_defaults_round_trip_through_toml():
    config = TrackerConfig()
    text = config_to_toml(config)
    assert config_from_dict(tomllib.loads(text)) == config


def test_a_changed_config_round_trips(tmp_path: Path):
    config = override(TrackerConfig(), **{"landmarks.max_hands": 1, "smoothing": None, "prior.enabled": True,
                                          "source.hfov_deg": 72.5, "fusion.triangulation.threshold_px": 9.0,
                                          "output.export": tmp_path / "x.jsonl"})
    path = tmp_path / "run.toml"
    path.write_text(config_to_toml(config))
    assert load_config(path) == config


def test_file_overlays_only_what_it_names(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text('device = "cpu"\nsmoothing = "high"\n[landmarks]\nmax_hands = 1\n[source]\nsource = "clip.mp4"\n')
    config = load_config(path)
    assert config.device == "cpu"
    assert config.smoothing == SMOOTHING_PRESETS["high"]
    assert config.landmarks.max_hands == 1
    assert config.landmarks.model_complexity == TrackerConfig().landmarks.model_complexity
    assert config.source.source == "clip.mp4"
    assert config.source.hfov_deg == 60.0


def test_relative_paths_are_relative_to_the_file(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "run.toml"
    path.write_text('[prior]\nenabled = true\npath = "my_prior.npz"\n[source]\ncalibration = "none"\n')
    config = load_config(path)
    assert config.prior.path == tmp_path / "sub" / "my_prior.npz"
    assert config.source.calibration is None


def test_smoothing_as_a_table():
    config = config_from_dict({"smoothing": {"min_cutoff": 2.0, "beta": 0.1}})
    assert config.smoothing == OneEuroParams(min_cutoff=2.0, beta=0.1)


@pytest.mark.parametrize("data, words", [
    ({"landmarks": {"max_handz": 1}}, "landmarks.max_handz"),
    ({"sauce": {}}, "sauce"),
    ({"source": {"hfov_deg": 200.0}}, "(1, 179)"),
    ({"source": {"hfov_deg": 0.0}}, "(1, 179)"),
    ({"source": {"hfov_deg": math.nan}}, "(1, 179)"),
    ({"source": {"fps": 0.0}}, "fps"),
    ({"device": "tpu"}, "device"),
    ({"landmarks": {"max_hands": "two"}}, "landmarks.max_hands"),
    ({"landmarks": {"max_hands": 0}}, "max_hands"),
    ({"landmarks": 3}, "landmarks must be a table"),
    ({"prior": {"strength": 1.5}}, "strength"),
    ({"smoothing": "silky"}, "smoothing"),
    ({"output": {"frames": 0}}, "frames"),
])
def test_bad_values_name_the_key(data, words):
    with pytest.raises(ConfigError, match=None) as info:
        config_from_dict(data)
    assert words in str(info.value)


def test_bad_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("device = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_override_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown option 'landmark.max_hands'"):
        override(TrackerConfig(), **{"landmark.max_hands": 1})


@pytest.mark.parametrize("text, need_host, expected", [
    ("9000", False, ("127.0.0.1", 9000)),
    ("192.168.1.20:9001", True, ("192.168.1.20", 9001)),
    ("localhost:7000", True, ("localhost", 7000)),
    ("[::1]:9000", True, ("::1", 9000)),
    (":9000", True, ("127.0.0.1", 9000)),
    ("0.0.0.0:0", False, ("0.0.0.0", 0)),
])  # fmt: skip
def test_parse_address(text, need_host, expected):
    assert parse_address(text, "--x", need_host=need_host) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:port", "1.2.3.4:0", "1.2.3.4:65536", "::1:9000", "9000"])
def test_parse_address_refuses(text):
    with pytest.raises(ConfigError, match="--osc"):
        parse_address(text, "--osc", need_host=True, min_port=1)
