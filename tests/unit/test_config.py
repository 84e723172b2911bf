"""Settings: defaults, file, environment, flags; each error names where, the key and what was expected."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from aios_tui.config import (
    CloudPriceSettings,
    ConfigError,
    Override,
    Settings,
    SimSettings,
    SshHostSettings,
    default_config_path,
    default_log_path,
    load_settings,
    real_sources_enabled,
    setting_keys,
    sim_only,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own config or environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    for var in [v for v in os.environ if v.startswith("AIOS_TUI_")]:
        monkeypatch.delenv(var)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(path: Path | None = None, **kw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(path, **kw)
    return info.value


# --- defaults and paths ----------------------------------------------------------------------------------


def test_defaults_with_no_file() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert s.config_file is None
    assert not s.read_only
    assert s.role == "operator"
    assert s.sim == SimSettings(enabled=False, seed=0, nodes=200, interval=2.0)
    assert not s.kubernetes.enabled and not s.aws.enabled and not s.prometheus.enabled and not s.nvml.enabled
    assert s.ssh_hosts == ()
    assert real_sources_enabled(s) == []


def test_xdg_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_config_path({"XDG_CONFIG_HOME": "/etc/xdg-test"}) == Path(
        "/etc/xdg-test/aios-tui/config.toml"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    # A relative XDG value is invalid by the spec and ignored.
    assert default_config_path({"XDG_CONFIG_HOME": "rel"}) == tmp_path / ".config/aios-tui/config.toml"
    assert default_log_path({}) == tmp_path / ".local/state/aios-tui/aios-tui.log"
    assert default_log_path({"XDG_STATE_HOME": "/s"}) == Path("/s/aios-tui/aios-tui.log")


def test_the_default_file_is_read_when_present(tmp_path: Path) -> None:
    home = tmp_path / "xdg-config" / "aios-tui"
    home.mkdir(parents=True)
    write(home, "role = 'viewer'\n")
    s = load_settings(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg-config")})
    assert s.role == "viewer"
    assert s.config_file == home / "config.toml"


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    e = error(tmp_path / "nope.toml", env={})
    assert str(e) == f"{tmp_path / 'nope.toml'}: no such file (given by --config)"
    e = error(env={"AIOS_TUI_CONFIG": str(tmp_path / "nope.toml")})
    assert "no such file (given by AIOS_TUI_CONFIG)" in str(e)


# --- a full file -----------------------------------------------------------------------------------------

FULL = """
read_only = true
role = "admin"
user = "oncall"
refresh_interval = 0.5
theme = "nord"
ascii = true
default_pane = "jobs"
audit_path = "~/audit.jsonl"

[sim]
enabled = true
seed = 7
nodes = 64
interval = 1

[kubernetes]
enabled = true
kubeconfig = "/etc/kube/config"
contexts = ["prod", "staging"]
namespaces = ["ml"]
gpu_resource_names = ["nvidia.com/gpu", "amd.com/gpu"]
job_label_selector = "team=ml"
endpoint_label_selector = "serving=true"
read_only = true
interval = 3.0
timeout = 4.0

[aws]
enabled = true
regions = ["us-west-2", "eu-west-1"]
profiles = ["ops", "dev"]
endpoint_url = "http://127.0.0.1:5000"
interval = 30
timeout = 8

[[aws.prices]]
instance_type = "p5.48xlarge"
price = 55.04

[prometheus]
enabled = true
url = "https://prom.example:9090"
timeout = 2.5
interval = 5
verify_tls = false
bearer_token_env = "PROM_TOKEN"

[nvml]
enabled = true
interval = 1.0

[ssh]
config = "~/ssh_config"

[[ssh_hosts]]
host = "gpu-01"

[[ssh_hosts]]
name = "box"
host = "10.0.0.2"
node = "ip-10-0-0-2.ec2.internal"
port = 2222
user = "root"
known_hosts = "/etc/ssh/known"
identity_file = "/keys/id"
"""


def test_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    s = load_settings(path, env={})
    assert s.config_file == path
    assert (s.read_only, s.role, s.user, s.refresh_interval) == (True, "admin", "oncall", 0.5)
    assert (s.theme, s.ascii, s.default_pane) == ("nord", True, "jobs")
    assert s.audit_path == Path.home() / "audit.jsonl"
    assert s.sim == SimSettings(enabled=True, seed=7, nodes=64, interval=1.0)
    assert isinstance(s.sim.interval, float)
    k = s.kubernetes
    assert k.kubeconfig == Path("/etc/kube/config")
    assert k.contexts == ("prod", "staging")
    assert k.gpu_resource_names == ("nvidia.com/gpu", "amd.com/gpu")
    assert (k.job_label_selector, k.endpoint_label_selector, k.read_only) == ("team=ml", "serving=true", True)
    assert s.aws.regions == ("us-west-2", "eu-west-1")
    assert s.aws.endpoint_url == "http://127.0.0.1:5000"
    assert s.aws.profiles == ("ops", "dev")
    assert s.aws.prices == (CloudPriceSettings(instance_type="p5.48xlarge", price=55.04),)
    assert s.prometheus.verify_tls is False
    assert s.prometheus.bearer_token_env == "PROM_TOKEN"
    assert s.nvml.enabled
    assert s.ssh_hosts[0] == SshHostSettings(host="gpu-01")
    assert s.ssh_hosts[0].label == "gpu-01"
    box = s.ssh_hosts[1]
    assert (box.label, box.node, box.port, box.user) == ("box", "ip-10-0-0-2.ec2.internal", 2222, "root")
    assert (s.ssh_hosts[0].port, s.ssh_hosts[0].node) == (0, "")  # 0: the OpenSSH config's Port, else 22
    assert s.ssh.config == Path.home() / "ssh_config"
    assert box.known_hosts == Path("/etc/ssh/known")
    assert [where for where, _ in real_sources_enabled(s)] == [
        "[kubernetes] enabled = true",
        "[aws] enabled = true",
        "[prometheus] enabled = true",
        "[nvml] enabled = true",
        "[[ssh_hosts]] #1 (gpu-01)",
        "[[ssh_hosts]] #2 (box)",
    ]


def test_sim_only_turns_every_real_source_off(tmp_path: Path) -> None:
    s = sim_only(load_settings(write(tmp_path, FULL), env={}))
    assert real_sources_enabled(s) == []
    assert s.sim.enabled and s.sim.seed == 7
    assert s.kubernetes.contexts == ("prod", "staging")  # the rest is kept


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().read_only = True  # type: ignore[misc]


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[sim]\nnodes = "lots"\n', '[sim] nodes: expected an integer from 1 to 5000, got "lots"'),
        ("[sim]\nnodes = 0\n", "[sim] nodes: expected an integer from 1 to 5000, got 0"),
        ("[sim]\nnodes = 5001\n", "[sim] nodes: expected an integer from 1 to 5000, got 5001"),
        ("[sim]\nnodes = 2.5\n", "[sim] nodes: expected an integer from 1 to 5000, got 2.5"),
        ("[sim]\nenabled = 1\n", "[sim] enabled: expected true or false, got 1"),
        ('read_only = "yes"\n', 'read_only: expected true or false, got "yes"'),
        ("refresh_interval = true\n", "refresh_interval: expected a number from 0.1 to 60, got true"),
        ("refresh_interval = nan\n", "refresh_interval: expected a number from 0.1 to 60, got nan"),
        ('role = "root"\n', 'role: expected one of "viewer", "operator", "admin", got "root"'),
        (
            '[kubernetes]\ncontexts = "prod"\n',
            '[kubernetes] contexts: expected a list of strings, got "prod"',
        ),
        ("[aws]\nregions = [1]\n", "[aws] regions: expected a list of strings, got [1]"),
        ("audit_path = 3\n", "audit_path: expected a path (a string), got 3"),
        ("sim = 3\n", "sim: expected a table ([sim]), got 3"),
        ("[[sim]]\nseed = 1\n", "sim: expected a table ([sim]), got [a table]"),
        ("[ssh_hosts]\nhost = 'x'\n", "ssh_hosts: expected an array of tables ([[ssh_hosts]]), got a table"),
        ("[[ssh_hosts]]\nport = 22\n", "[[ssh_hosts]] #1 host: required setting is missing"),
        (
            "[[ssh_hosts]]\nhost = 'a'\n[[ssh_hosts]]\nhost = 'b'\nport = 70000\n",
            "[[ssh_hosts]] #2 port: expected an integer from 0 to 65535, got 70000",
        ),
        (
            "[[ssh_hosts]]\nhost = 'a'\n[[ssh_hosts]]\nname = 'a'\nhost = 'b'\n",
            '[[ssh_hosts]] #2 name: expected a name no other host has, got "a"',
        ),
    ],
)
def test_bad_values_name_file_key_expected_and_got(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    assert str(error(path, env={})) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sim]\nnode = 3\n", '[sim] node: unknown setting; did you mean "nodes"?'),
        ("readonly = true\n", 'readonly: unknown setting; did you mean "read_only"?'),
        ("[simm]\nseed = 1\n", '[simm]: unknown section; did you mean "sim"?'),
        ("[kubernetes]\nflux_capacitor = 1\n", "[kubernetes] flux_capacitor: unknown setting"),
        ("[[ssh_hosts]]\nhost = 'a'\npassword = 'x'\n", "[[ssh_hosts]] #1 password: unknown setting"),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    assert str(error(path, env={})) == f"{path}: {message}"


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "role = 'viewer'\n\n[sim]\nnodes = = 3\n")
    e = error(path, env={})
    assert e.path == str(path)
    assert re.fullmatch(rf"{re.escape(str(path))}: line 4, column \d+: invalid TOML: .+", str(e)), str(e)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"role = '\xff'\n")
    assert "not UTF-8" in str(error(path, env={}))
    assert "not a file" in str(error(tmp_path, env={}))


# --- environment and flags --------------------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "read_only = false\nrole = 'admin'\n")
    s = load_settings(path, env={"AIOS_TUI_READ_ONLY": "yes", "AIOS_TUI_ROLE": "viewer"})
    assert s.read_only and s.role == "viewer"
    s = load_settings(env={"AIOS_TUI_READ_ONLY": "0", "AIOS_TUI_REFRESH_INTERVAL": "2.5"})
    assert not s.read_only and s.refresh_interval == 2.5


def test_environment_names_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, "role = 'viewer'\n", name="other.toml")
    assert load_settings(env={"AIOS_TUI_CONFIG": str(path)}).role == "viewer"


def test_bad_environment_value_names_the_variable() -> None:
    e = error(env={"AIOS_TUI_READ_ONLY": "maybe"})
    assert str(e) == 'AIOS_TUI_READ_ONLY: expected true or false, got "maybe"'


def test_flags_override_environment_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "read_only = false\n[sim]\nnodes = 10\nseed = 1\n")
    s = load_settings(
        path,
        env={"AIOS_TUI_READ_ONLY": "false"},
        overrides=[
            Override("sim.nodes", "5000", "--sim-nodes"),
            Override("sim.seed", "42", "--seed"),
            Override("read_only", True, "--read-only"),
        ],
    )
    assert (s.sim.nodes, s.sim.seed, s.read_only) == (5000, 42, True)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            Override("sim.nodes", "lots", "--sim-nodes"),
            '--sim-nodes: expected an integer from 1 to 5000, got "lots"',
        ),
        (
            Override("sim.nodes", "0", "--sim-nodes"),
            '--sim-nodes: expected an integer from 1 to 5000, got "0"',
        ),
        (Override("sim.seed", "-1", "--seed"), '--seed: expected an integer from 0 to 4294967295, got "-1"'),
    ],
)
def test_bad_flag_value_names_the_flag(override: Override, message: str) -> None:
    assert str(error(env={}, overrides=[override])) == message


# --- config.example.toml stays true to the code ---------------------------------------------------------


def _example_keys(doc: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in doc.items():
        if isinstance(value, dict):
            out |= _example_keys(value, f"{prefix}{key}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                out |= _example_keys(item, f"{prefix}{key}.")
        else:
            out.add(prefix + key)
    return out


def _uncomment(text: str, marker: str) -> str:
    """The commented-out example table that starts at ``marker`` with its "# " removed, up to the first line
    that is not a comment ("# # " lines stay comments)."""
    head, found, tail = text.partition(marker)
    assert found, f"config.example.toml has no commented {marker[2:]} example"
    lines = (found + tail).splitlines()
    n = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    block = [line.removeprefix("# ") for line in lines[:n]]
    return head + "\n".join(block + lines[n:]) + "\n"


def _uncomment_ssh_hosts(text: str) -> str:
    return _uncomment(text, "# [[ssh_hosts]]")


def test_example_file_is_all_defaults() -> None:
    s = load_settings(EXAMPLE, env={})
    assert s == Settings()


def test_example_file_and_settings_cover_each_other() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    full = _uncomment(_uncomment_ssh_hosts(text), "# [[prometheus.queries]]")
    for cloud in ("aws", "gcp", "azure"):
        full = _uncomment(full, f"# [[{cloud}.prices]]")
    full = _uncomment(full, "# [[prices]]")
    full = _uncomment(full, "# [[slo]]")
    full = _uncomment(full, "# ascii = ")  # commented out: set, it would turn off the terminal's detection
    keys = _example_keys(tomllib.loads(full))
    assert keys == setting_keys(), (
        f"in the example but not a setting: {sorted(keys - setting_keys())}; "
        f"a setting missing from the example: {sorted(setting_keys() - keys)}"
    )


def test_example_ssh_host_shows_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, _uncomment_ssh_hosts(EXAMPLE.read_text(encoding="utf-8")))
    s = load_settings(path, env={})
    (host,) = s.ssh_hosts
    assert host == SshHostSettings(host=host.host)
    assert dataclasses.replace(s, ssh_hosts=()) == Settings()


def test_every_setting_has_a_docstring() -> None:
    import ast
    import inspect

    import aios_tui.config as config

    tree = ast.parse(inspect.getsource(config))
    classes = {"Settings", "SimSettings", "KubernetesSettings", "AwsSettings", "PrometheusSettings"}
    classes |= {"NvmlSettings", "SshHostSettings", "SshSettings", "PromQuerySettings", "CloudPriceSettings"}
    classes |= {"PriceSettings"}
    seen = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in classes:
            seen.add(node.name)
            body = node.body
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.AnnAssign):
                    nxt = body[i + 1] if i + 1 < len(body) else None
                    documented = (
                        isinstance(nxt, ast.Expr)
                        and isinstance(nxt.value, ast.Constant)
                        and isinstance(nxt.value.value, str)
                    )
                    assert documented, f"{node.name}.{ast.unparse(stmt.target)} has no docstring"
    assert seen == classes


def test_prometheus_servers_and_queries_are_checked(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        '[prometheus]\nservers = ["vllm"]\n[[prometheus.queries]]\nmetric = "p99_ms"\nquery = "up"\n',
    )
    s = load_settings(good, env={})
    assert s.prometheus.servers == ("vllm",)
    assert [(q.metric, q.query) for q in s.prometheus.queries] == [("p99_ms", "up")]
    bad = write(tmp_path, '[prometheus]\nservers = ["vllm", "ollama"]\n', name="bad.toml")
    assert str(error(bad, env={})) == (
        f'{bad}: [prometheus] servers: expected a list of strings from "vllm", "triton", "tfserving", '
        '"torchserve", got ["vllm", "ollama"]'
    )
    missing = write(tmp_path, '[[prometheus.queries]]\nmetric = "qps"\n', name="missing.toml")
    assert "[[prometheus.queries]] #1 query: required setting is missing" in str(error(missing, env={}))


def test_a_prometheus_url_without_a_scheme_is_refused_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aios_tui.cli import main

    path = write(tmp_path, '[prometheus]\nenabled = true\nurl = "admin:s3cret-8d1f@prom.internal:9090"\n')
    assert str(error(path, env={})) == (
        f"{path}: [prometheus] url: expected a URL such as http://prometheus:9090 (http:// or https://, then "
        'the host), got "***@prom.internal:9090"'
    )
    assert main(["--config", str(path), "snapshot"]) == 2  # nothing started
    out, err = capsys.readouterr()
    assert err == f"aios-tui: {error(path, env={})}\n" and out == ""
    assert "s3cret" not in err
    for url in ("prom:9090", "ftp://prom", "http://", "http://prom:port", "https://u:s3cret-8d1f@:9090"):
        message = str(error(write(tmp_path, f'[prometheus]\nurl = "{url}"\n', name="u.toml"), env={}))
        assert "[prometheus] url: expected a URL such as" in message and "s3cret" not in message, message
    good = "https://u:p@prom.internal:9090/prometheus"
    assert load_settings(write(tmp_path, f'[prometheus]\nurl = "{good}"\n'), env={}).prometheus.url == good


def test_prometheus_label_names_and_answer_limit_are_checked(tmp_path: Path) -> None:
    bad = write(tmp_path, '[prometheus]\nendpoint_label = "app.kubernetes.io/name"\n')
    assert str(error(bad, env={})) == (
        f"{bad}: [prometheus] endpoint_label: expected a label name (letters, digits, _), "
        'got "app.kubernetes.io/name"'
    )
    small = write(tmp_path, "[prometheus]\nmax_answer_mb = 0\n", name="small.toml")
    assert str(error(small, env={})) == (
        f"{small}: [prometheus] max_answer_mb: expected a number from 0.01 to 4096, got 0"
    )
    eight = write(tmp_path, "[prometheus]\nmax_answer_mb = 8\n", name="eight.toml")
    assert load_settings(eight, env={}).prometheus.max_answer_mb == 8
