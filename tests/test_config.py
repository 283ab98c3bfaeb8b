"""Configuration loading (expertconnect.config.load_config): defaults, YAML values, environment
overrides, and a ConfigError naming the key for anything unknown or unusable."""

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from expertconnect.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def from_yaml(tmp_path, text: str, **environ) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, environ=environ)


def config_error(tmp_path, text: str = "", **environ) -> str:
    with pytest.raises(ConfigError) as raised:
        from_yaml(tmp_path, text, **environ)
    return str(raised.value)


# ---------------------------------------------------------------------- defaults
def test_without_a_file_every_key_has_its_default():
    config = load_config(None, environ={})
    # With no file to be relative to, the state directory is the current one's var/.
    assert config == Config(var_dir=Path.cwd() / "var")
    assert config.server.port == 8000
    assert config.server.trusted_proxies == ()
    assert config.database.dsn == ""
    assert config.credits.price_usd == Decimal("1.00")
    assert config.var_dir == Path.cwd() / "var"
    assert config.source is None


def test_the_shipped_config_yaml_lists_every_key_with_its_default():
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())
    sections = {
        f.name: f for f in dataclasses.fields(Config) if f.name not in ("var_dir", "source")
    }
    assert set(shipped) == set(sections) | {"var_dir"}
    for name, section in sections.items():
        keys = {f.name for f in dataclasses.fields(section.default_factory())}
        assert set(shipped[name]) == keys, name
    assert load_config(ROOT / "config.yaml", environ={}) == Config(var_dir=ROOT / "var")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "server:\n", "server: {}\n"])
def test_an_empty_file_or_section_means_the_defaults(tmp_path, text):
    # (A relative state directory is relative to the file.)
    assert from_yaml(tmp_path, text) == Config(var_dir=tmp_path / "var")


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError) as raised:
        load_config(missing, environ={})
    assert str(raised.value) == f"config file not found: {missing}"


def test_a_file_that_is_not_yaml_or_not_a_mapping_is_an_error(tmp_path):
    assert "is not valid YAML" in config_error(tmp_path, "server: [unclosed\n")
    assert "top level must be a mapping" in config_error(tmp_path, "- server\n- port\n")
    assert config_error(tmp_path, "server: 8000\n") == "config section server must be a mapping"


# ---------------------------------------------------------------------- values from YAML
def test_yaml_values_are_typed(tmp_path):
    config = from_yaml(
        tmp_path,
        """
server:
  port: 9000
  trusted_proxies: ["127.0.0.1", "10.0.0.0/8"]
database:
  name: 123
  acquire_timeout: 2
credits:
  price_usd: "2.50"
var_dir: /tmp/ec-var
""",
    )
    assert config.server.port == 9000
    assert config.server.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert config.database.name == "123"
    assert config.database.acquire_timeout == 2.0
    assert isinstance(config.database.acquire_timeout, float)
    assert config.credits.price_usd == Decimal("2.50")
    assert config.var_dir == Path("/tmp/ec-var")
    # Keys the file does not mention keep their defaults.
    assert config.server.host == "127.0.0.1"
    assert config.database.pool_max == 10


# ---------------------------------------------------------------------- environment overrides
def test_an_environment_variable_overrides_the_file(tmp_path):
    config = from_yaml(
        tmp_path,
        "server:\n  port: 9000\nauth:\n  bcrypt_rounds: 10\n",
        EXPERTCONNECT_SERVER_PORT="9100",
        EXPERTCONNECT_DATABASE_COMMAND_TIMEOUT="2.5",
        EXPERTCONNECT_CREDITS_PRICE_USD="0.75",
        EXPERTCONNECT_VAR_DIR="/tmp/elsewhere",
    )
    assert config.server.port == 9100
    assert config.auth.bcrypt_rounds == 10  # from the file: no variable for it
    assert config.database.command_timeout == 2.5
    assert config.credits.price_usd == Decimal("0.75")
    assert config.var_dir == Path("/tmp/elsewhere")


def test_a_list_from_the_environment_is_comma_separated(tmp_path):
    config = from_yaml(
        tmp_path,
        "server:\n  cors_origins: ['https://a.example']\n",
        EXPERTCONNECT_SERVER_CORS_ORIGINS=" https://b.example , https://c.example,, ",
        EXPERTCONNECT_SERVER_TRUSTED_PROXIES="127.0.0.1,::1",
    )
    assert config.server.cors_origins == ("https://b.example", "https://c.example")
    assert config.server.trusted_proxies == ("127.0.0.1", "::1")
    emptied = from_yaml(
        tmp_path,
        "server:\n  cors_origins: ['https://a.example']\n",
        EXPERTCONNECT_SERVER_CORS_ORIGINS="",
    )
    assert emptied.server.cors_origins == ()


def test_variables_of_other_programs_and_other_spellings_are_ignored():
    config = load_config(None, environ={"PORT": "1", "expertconnect_server_port": "3"})
    assert config.server.port == 8000


@pytest.mark.parametrize(
    "name", ["EXPERTCONNECT_SERVER_PORTS", "EXPERTCONNECT_LOGGING", "EXPERTCONNECT_X"]
)
def test_an_unknown_expertconnect_variable_is_refused_as_an_unknown_key_is(name):
    with pytest.raises(ConfigError) as raised:
        load_config(None, environ={name: "2"})
    assert str(raised.value) == f"unknown environment variable {name}: no such config key"


def test_the_config_and_state_directory_variables_are_not_config_keys_but_known():
    config = load_config(None, environ={"EXPERTCONNECT_CONFIG": "x", "EXPERTCONNECT_VAR_DIR": "/s"})
    assert config.var_dir == Path("/s")


# ---------------------------------------------------------------------- errors name the key
def test_an_unknown_section_or_key_is_named(tmp_path):
    assert config_error(tmp_path, "sever:\n  port: 1\n") == "unknown config section: sever"
    assert config_error(tmp_path, "server:\n  prot: 1\n") == "unknown config key: server.prot"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("server:\n  port: eighty\n", "server.port"),
        ("server:\n  port: true\n", "server.port"),
        ("server:\n  port: 80.5\n", "server.port"),
        ("server:\n  host: [a]\n", "server.host"),
        ("server:\n  cors_origins: [1, 2]\n", "server.cors_origins"),
        ("database:\n  acquire_timeout: soon\n", "database.acquire_timeout"),
        ("database:\n  acquire_timeout: true\n", "database.acquire_timeout"),
        # A YAML float has already lost the exact amount: money is written as a string.
        ("credits:\n  price_usd: 1.5\n", "credits.price_usd"),
        ("credits:\n  price_usd: lots\n", "credits.price_usd"),
    ],
)
def test_a_value_of_the_wrong_type_is_named(tmp_path, text, key):
    message = config_error(tmp_path, text)
    assert message.startswith(f"config key {key}: expected "), message


@pytest.mark.parametrize(
    ("variable", "value", "key", "rule"),
    [
        ("SERVER_PORT", "70000", "server.port", "a port number 0..65535"),
        ("SERVER_EVENT_LOOP", "trio", "server.event_loop", "uvloop or asyncio"),
        ("SERVER_TRUSTED_PROXIES", "10.0.0.0/8,proxy", "server.trusted_proxies", "a list of IP"),
        ("SERVER_MAX_BODY_SIZE", "100", "server.max_body_size", "at least 1024 bytes"),
        ("DATABASE_POOL_MIN", "0", "database.pool_min", "at least 1"),
        ("AUTH_JWT_SECRET", "short", "auth.jwt_secret", "empty (generated) or at least 32"),
        ("AUTH_BCRYPT_ROUNDS", "3", "auth.bcrypt_rounds", "an integer 4..31"),
        ("AUTH_TOKEN_TTL_SECONDS", "59", "auth.token_ttl_seconds", "at least 60 seconds"),
        ("CREDITS_PRICE_USD", "0", "credits.price_usd", "a positive amount"),
        ("CREDITS_PRICE_USD", "1.005", "credits.price_usd", "at most two decimals"),
        ("REALTIME_BACKEND", "redis", "realtime.backend", "memory or postgres"),
        ("REALTIME_PING_INTERVAL", "0", "realtime.ping_interval", "a positive number"),
    ],
)
def test_a_value_outside_its_rule_is_named_with_the_rule(variable, value, key, rule):
    with pytest.raises(ConfigError) as raised:
        load_config(None, environ={f"EXPERTCONNECT_{variable}": value})
    message = str(raised.value)
    assert message.startswith(f"config key {key}: must be "), message
    assert rule in message


def test_a_bad_environment_value_names_the_key_and_the_variable():
    with pytest.raises(ConfigError) as raised:
        load_config(None, environ={"EXPERTCONNECT_DATABASE_POOL_MAX": "many"})
    assert str(raised.value) == (
        "config key database.pool_max (EXPERTCONNECT_DATABASE_POOL_MAX): expected int, got 'many'"
    )


def test_the_pool_may_not_start_larger_than_its_maximum(tmp_path):
    message = config_error(tmp_path, "database:\n  pool_min: 5\n  pool_max: 4\n")
    assert message == "config key database.pool_min: must not exceed database.pool_max"
    assert from_yaml(tmp_path, "database:\n  pool_min: 4\n  pool_max: 4\n").database.pool_min == 4


def test_a_valid_secret_is_kept_exactly():
    secret = "s" * 32
    config = load_config(None, environ={"EXPERTCONNECT_AUTH_JWT_SECRET": secret})
    assert config.auth.jwt_secret == secret
