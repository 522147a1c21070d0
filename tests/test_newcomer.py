"""A newcomer's first hour: after the demo, every command reaches the same data with nothing configured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backtest_store import Store
from backtest_store.embedded import STATE_FILE, running

CONFIG = ("CC_MONGO_CONNECTION_STRING", "CC_REDIS_URL", "CC_REDIS_HOST", "CC_REDIS_PORT", "CC_REDIS_USER",
          "CC_REDIS_PASSWORD", "BACKTEST_STORE_CACHE_PREFIX")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in CONFIG}


def cli(cwd: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "backtest_store", *args], cwd=cwd, env=_env(), text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == expect, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


@pytest.mark.servers  # the CLI (or Store.local) starts embedded servers of its own
def test_every_command_works_on_the_demo_data_with_no_configuration(tmp_path: Path) -> None:
    cli(tmp_path, "demo", "--symbols", "1", "--minutes", "30", "--no-progress")
    assert running(tmp_path / ".backtest-store") is None  # the demo stopped the servers it started

    report = json.loads(cli(tmp_path, "inspect", "--json").stdout)
    counts = {c["collection"]: c["count"] for c in report["collections"]}
    assert counts["candle-items"] > 0 and counts["session-items"] > 0
    assert "embedded" in cli(tmp_path, "inspect").stdout
    cli(tmp_path, "migrate", "check")  # the demo's store created the indexes: in sync
    cli(tmp_path, "export-dump", "out")
    assert any((tmp_path / "out" / "data" / "candle").rglob("*.json"))
    imported = json.loads(cli(tmp_path, "import-dump", "out", "--json").stdout)
    assert imported["imported"] == 0 and imported["unchanged"] > 0  # the same data, found again
    assert running(tmp_path / ".backtest-store") is None  # each command stopped what it started


@pytest.mark.servers  # the CLI (or Store.local) starts embedded servers of its own
async def test_serve_keeps_the_servers_for_every_other_tool(tmp_path: Path) -> None:
    serve = subprocess.Popen([sys.executable, "-m", "backtest_store", "serve"], cwd=tmp_path, env=_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert serve.stdout is not None
        banner = []
        for line in serve.stdout:
            banner.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(banner)
        urls = running(tmp_path / ".backtest-store")
        assert urls is not None and urls[0] in text and f"export CC_MONGO_CONNECTION_STRING={urls[0]}" in text

        # A notebook shares them: no second server on the same data.
        store = await Store.local(tmp_path / ".backtest-store")
        assert store._servers is None and store.settings.mongo_url == urls[0]
        await store.adapters.signal("BTCUSDT", "s", "e").write_signal_data({"id": "shared"})
        await store.close()
        assert running(tmp_path / ".backtest-store") == urls  # closing a sharing store stops nothing

        out = cli(tmp_path, "inspect", "signal-items").stdout
        assert urls[0] in out and "started for this command" not in out
        again = cli(tmp_path, "serve").stdout
        assert "already running" in again
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0
    assert not (tmp_path / ".backtest-store" / STATE_FILE).exists()
    assert running(tmp_path / ".backtest-store") is None


def test_cli_speaks_to_users(capsys, tmp_path: Path) -> None:
    import pytest

    from backtest_store.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "first steps" in out and "backtest-store demo" in out
    assert "registers itself" not in out and "module" not in out
    # An option that would be silently ignored is an error, in one clean line.
    assert main(["inspect", "--limit", "5", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("backtest-store: error: --limit applies to the audit only") and len(err.splitlines()) == 1
    assert not (tmp_path / "mongo").exists()  # refused before starting anything


ROOT = Path(__file__).parent.parent


def test_ci_runs_the_readme_test_command_as_written() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2 and commands[0].endswith("backtest-store demo") and commands[1].endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()
    # Command 1 too, as typed, in a copy with a venv of its own (so that `.[embedded]` alone is what it installs).
    demo = next(line for line in ci.splitlines() if commands[0] in line)
    assert demo.startswith('(cd "$demo_copy" && deactivate && '), demo


def test_the_install_stays_as_light_as_the_readme_says() -> None:
    """The README states what `pip install .` costs; a new dependency must change this test and that text."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = sorted(d.split(">")[0].split("<")[0].split("=")[0].strip() for d in project["dependencies"])
    assert names == ["beanie", "pydantic", "pymongo", "redis", "redis-om", "rich"]
    assert "34 packages besides itself, 174 MB" in (ROOT / "README.md").read_text()


@pytest.mark.typing  # mypy checks the whole package behind the import: CI runs it beside `mypy`
def test_the_package_is_typed_for_its_users(tmp_path: Path) -> None:
    """A user's mypy sees our types (py.typed): precise options, precise reports, and mistakes flagged."""
    from mypy import api

    user = tmp_path / "user.py"
    user.write_text(
        "from backtest_store import Store\n"
        "async def main() -> None:\n"
        "    store = await Store.open(init_timeout=5.0, cache_prefix='x')\n"
        "    report = await store.schema()\n"
        "    reveal_type(report)\n"
        "    reveal_type(store.adapters.signal('BTCUSDT', 's', 'e'))\n"
        "    await Store.open(init_timout=5.0)\n"
    )
    out, _, code = api.run([str(user), "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache")])
    assert code == 1, out
    assert 'Revealed type is "backtest_store.inspection.schema.SchemaReport"' in out, out
    assert 'Revealed type is "backtest_store.adapters.signal.SignalAdapter"' in out, out
    assert '"init_timout"' in out and "import-untyped" not in out, out


@pytest.mark.parametrize("notebook", sorted((ROOT / "examples").glob("*.ipynb")), ids=lambda p: p.name)
def test_example_notebooks_are_committed_without_outputs(notebook: Path) -> None:
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id


def test_the_cli_works_without_the_notebook_extra(tmp_path: Path) -> None:
    # README command 1 installs `.[embedded]` only: no pandas, no plotly. Every subcommand's module is imported to
    # build the parser, so none may import them at the top; `report`, which needs them, says so in one line.
    blocked = ("import sys; sys.modules['pandas'] = sys.modules['plotly'] = None; "
               "from backtest_store.cli import main; sys.exit(main(sys.argv[1:]))")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", blocked, *args], cwd=tmp_path, env=_env(), text=True,
                              capture_output=True, timeout=120)

    helped = run("--help")
    assert helped.returncode == 0 and "demo" in helped.stdout, helped.stderr[-2000:]
    assert run("demo", "--help").returncode == 0
    refused = run("report")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == ["backtest-store: error: analysis needs pandas: "
                                                   "pip install 'backtest-store[notebook]'"]
