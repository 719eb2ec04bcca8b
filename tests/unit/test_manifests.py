"""The deployment files agree with the code and with each other: the Slack app manifests
declare exactly what the bot uses, the Kubernetes manifests are hardened and wired together,
and the Dockerfile builds the image they run.

After changing policies.yaml, ``make configmap`` (scripts/sync-configmap) copies it into
manifests/kubernetes/configmap.yaml; these tests only read the files.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import inspect
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
MANIFESTS = ROOT / "manifests"
K8S = MANIFESTS / "kubernetes"
SLACK_HTTP = MANIFESTS / "slack-app.yaml"
SLACK_SOCKET = MANIFESTS / "slack-app.socket-mode.yaml"
PUBLIC_BASE = "https://grantbot.example.com"

# -- Slack: what each Web API method and event needs ------------------------------------------

#: Web API method -> the bot-token scopes that allow it (any one is enough; empty: none
#: needed), with the page of Slack's reference that says so. A method the code calls that is
#: missing here fails the scope test: add it, citing its page.
METHOD_SCOPES: dict[str, tuple[frozenset[str], str]] = {
    "auth.test": (frozenset(), "https://api.slack.com/methods/auth.test"),
    "chat.postMessage": (
        frozenset({"chat:write"}),
        "https://api.slack.com/methods/chat.postMessage",
    ),
    "chat.postEphemeral": (
        frozenset({"chat:write"}),
        "https://api.slack.com/methods/chat.postEphemeral",
    ),
    "chat.update": (frozenset({"chat:write"}), "https://api.slack.com/methods/chat.update"),
    "chat.delete": (frozenset({"chat:write"}), "https://api.slack.com/methods/chat.delete"),
    "chat.getPermalink": (frozenset(), "https://api.slack.com/methods/chat.getPermalink"),
    # "scopes corresponding to the conversation type": public, private, DM, group DM.
    "conversations.info": (
        frozenset({"channels:read", "groups:read", "im:read", "mpim:read"}),
        "https://api.slack.com/methods/conversations.info",
    ),
    # Reading back a bundle's credential DM (bot/slack/bundle_notifier.py): a DM's history.
    "conversations.history": (
        frozenset({"channels:history", "groups:history", "im:history", "mpim:history"}),
        "https://api.slack.com/methods/conversations.history",
    ),
    "conversations.members": (
        frozenset({"channels:read", "groups:read", "im:read", "mpim:read"}),
        "https://api.slack.com/methods/conversations.members",
    ),
    # Opening a DM with one user needs im:write (mpim:write for a group DM).
    "conversations.open": (
        frozenset({"im:write", "mpim:write"}),
        "https://api.slack.com/methods/conversations.open",
    ),
    "users.info": (frozenset({"users:read"}), "https://api.slack.com/methods/users.info"),
    "users.list": (frozenset({"users:read"}), "https://api.slack.com/methods/users.list"),
    "users.lookupByEmail": (
        frozenset({"users:read.email"}),
        "https://api.slack.com/methods/users.lookupByEmail",
    ),
    "usergroups.list": (
        frozenset({"usergroups:read"}),
        "https://api.slack.com/methods/usergroups.list",
    ),
    "usergroups.users.list": (
        frozenset({"usergroups:read"}),
        "https://api.slack.com/methods/usergroups.users.list",
    ),
    "views.open": (frozenset(), "https://api.slack.com/methods/views.open"),
    "views.push": (frozenset(), "https://api.slack.com/methods/views.push"),
    "views.update": (frozenset(), "https://api.slack.com/methods/views.update"),
    "views.publish": (frozenset(), "https://api.slack.com/methods/views.publish"),
    "reactions.add": (
        frozenset({"reactions:write"}),
        "https://api.slack.com/methods/reactions.add",
    ),
}

#: Event -> the scope its subscription needs (None: only a bot user).
EVENT_SCOPES: dict[str, tuple[str | None, str]] = {
    "app_mention": ("app_mentions:read", "https://api.slack.com/events/app_mention"),
    "app_home_opened": (None, "https://api.slack.com/events/app_home_opened"),
    "message.im": ("im:history", "https://api.slack.com/events/message.im"),
}

#: A scope that may only be requested together with another
#: (https://api.slack.com/scopes/users:read.email: "must be requested at the same time as
#: users:read").
REQUIRES_ALSO: dict[str, str] = {"users:read.email": "users:read"}

#: What a slash command needs (https://api.slack.com/scopes/commands).
COMMAND_SCOPE = "commands"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _python_files(under: Path, *, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    for path in sorted(under.rglob("*.py")):
        if not any(part in skip for part in path.relative_to(under).parts):
            yield path


@cache
def sdk_methods() -> dict[str, str]:
    """AsyncWebClient method name -> Slack API method, read from slack_sdk's own source
    (each method body is ``self.api_call("chat.postMessage", ...)``)."""
    from slack_sdk.web import async_client

    tree = ast.parse(inspect.getsource(async_client))
    names: dict[str, str] = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "api_call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names[fn.name] = node.args[0].value
    return names


@cache
def methods_called() -> dict[str, list[str]]:
    """Slack API method -> where bot/ calls it (``file:line``): attribute calls named like a
    client method (``client.chat_postMessage(``) and ``api_call("method")``. bot/devtools is
    left out: it plays Slack in tests, it does not call it."""
    by_name = sdk_methods()
    found: dict[str, list[str]] = {}
    for path in _python_files(BOT, skip=("devtools",)):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = by_name.get(node.func.attr)
            if (
                node.func.attr == "api_call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                method = node.args[0].value
            if method is not None:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.setdefault(method, []).append(where)
    return found


def _imported_names(tree: ast.Module) -> dict[str, Any]:
    """Names a module imports with ``from X import Y``, resolved (modules or attributes)."""
    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot"):
            for alias in node.names:
                local = alias.asname or alias.name
                try:
                    names[local] = importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    names[local] = getattr(importlib.import_module(node.module), alias.name)
    return names


def _value(node: ast.expr, names: Mapping[str, Any]) -> Any:
    """A listener argument's value: a literal, an imported constant (``ids.COMMAND``), or a
    matcher dict's ``type`` (``{"type": "message", ...}``)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        owner = names.get(node.value.id)
        if isinstance(owner, ModuleType):
            return getattr(owner, node.attr)
    if isinstance(node, ast.Dict):
        for key, val in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "type":
                return _value(val, names)
    raise AssertionError(f"cannot read listener argument {ast.unparse(node)}")


@cache
def listeners() -> dict[str, frozenset[str]]:
    """Kind (event, command, action, view, shortcut, options, message) -> the first argument
    of every ``app.<kind>(...)`` registration under bot/slack."""
    kinds = ("event", "command", "action", "view", "shortcut", "options", "message")
    out: dict[str, set[str]] = {k: set() for k in kinds}
    for path in _python_files(BOT / "slack"):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = _imported_names(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in kinds
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
            ):
                arg = _value(node.args[0], names) if node.args else ""
                out[node.func.attr].add(str(arg))
    return {k: frozenset(v) for k, v in out.items()}


def _walk_keys(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield f"{path}.{k}" if path else str(k), v
            yield from _walk_keys(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_keys(v, f"{path}[{i}]")


def _urls(manifest: Mapping[str, Any]) -> dict[str, str]:
    return {
        path: value
        for path, value in _walk_keys(manifest)
        if re.search(r"(^|\.)(url|request_url|message_menu_options_url)$", path)
        or (isinstance(value, str) and value.startswith(("http://", "https://")))
    }


@pytest.fixture(params=[SLACK_HTTP, SLACK_SOCKET], ids=["http", "socket-mode"])
def slack_manifest(request: pytest.FixtureRequest) -> dict[str, Any]:
    manifest: dict[str, Any] = load_yaml(request.param)
    return manifest


def test_slack_manifests_have_the_shape_slack_accepts(slack_manifest: dict[str, Any]) -> None:
    """Display limits from Slack's manifest reference (name <= 35, description <= 140,
    long_description 174..4000, a hex colour), a bot user, and the fixed settings the code
    relies on: no org-wide deploy and no token rotation (the bot holds one static xoxb token
    and never refreshes it)."""
    assert slack_manifest["_metadata"]["major_version"] == 1
    info = slack_manifest["display_information"]
    assert 0 < len(info["name"]) <= 35
    assert 0 < len(info["description"]) <= 140
    assert 174 <= len(info["long_description"]) <= 4000
    assert re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", info["background_color"])
    bot_user = slack_manifest["features"]["bot_user"]
    assert 0 < len(bot_user["display_name"]) <= 80
    settings = slack_manifest["settings"]
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert set(slack_manifest) <= {
        "_metadata",
        "display_information",
        "features",
        "oauth_config",
        "settings",
    }


def test_the_slash_command_is_the_one_the_listeners_register(
    slack_manifest: dict[str, Any],
) -> None:
    """The manifest declares exactly the commands the code registers (``/access``, from
    bot.slack.ids.COMMAND); mentions arrive escaped, as the grammar expects; the usage hint
    names only real subcommands."""
    from bot.slack.commands.usage import SUBCOMMAND_USAGE
    from bot.slack.ids import COMMAND

    commands = slack_manifest["features"]["slash_commands"]
    assert {c["command"] for c in commands} == listeners()["command"] == {COMMAND}
    (command,) = commands
    assert command["command"] == "/access"
    assert command["should_escape"] is True
    assert len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000
    hinted = {part.split()[0] for part in command["usage_hint"].split("|")}
    assert hinted and hinted <= set(SUBCOMMAND_USAGE)


def test_http_manifest_points_every_url_at_the_events_route() -> None:
    """Slash command, Events API and interactivity all go to https://<host> + the route
    bot/web.py serves (Bolt's one handler for all three)."""
    from bot.web import EVENTS_PATH

    manifest = load_yaml(SLACK_HTTP)
    urls = _urls(manifest)
    expected = PUBLIC_BASE + EVENTS_PATH
    assert urls == {
        "features.slash_commands[0].url": expected,
        "settings.event_subscriptions.request_url": expected,
        "settings.interactivity.request_url": expected,
        "settings.interactivity.message_menu_options_url": expected,
    }
    assert EVENTS_PATH == "/slack/events"
    assert manifest["settings"]["socket_mode_enabled"] is False


def test_socket_mode_manifest_is_the_same_app_without_urls() -> None:
    """The Socket Mode manifest enables Socket Mode, has no URL anywhere, and otherwise
    declares exactly what the HTTP one does."""
    http, socket = load_yaml(SLACK_HTTP), load_yaml(SLACK_SOCKET)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert _urls(socket) == {}

    def without_urls(manifest: dict[str, Any]) -> dict[str, Any]:
        copy = yaml.safe_load(yaml.safe_dump(manifest))
        for command in copy["features"]["slash_commands"]:
            command.pop("url", None)
        copy["settings"]["event_subscriptions"].pop("request_url", None)
        copy["settings"]["interactivity"].pop("request_url", None)
        copy["settings"]["interactivity"].pop("message_menu_options_url", None)
        copy["settings"].pop("socket_mode_enabled")
        result: dict[str, Any] = copy
        return result

    assert without_urls(http) == without_urls(socket)


def test_bot_events_are_exactly_the_events_the_listeners_handle(
    slack_manifest: dict[str, Any],
) -> None:
    """Subscribed events == the ``app.event(...)`` registrations under bot/slack: none
    missing (Slack would never send it) and none extra (Slack would send what nobody
    handles)."""
    subscribed = set(slack_manifest["settings"]["event_subscriptions"]["bot_events"])
    handled = set(listeners()["event"])
    if listeners()["message"]:
        handled.add("message.im")
    assert subscribed == handled
    assert {"app_mention", "app_home_opened"} <= subscribed


def test_interactivity_and_app_home_match_the_listeners(slack_manifest: dict[str, Any]) -> None:
    """Interactivity is on because buttons and modals are handled; the Home tab is on because
    the code publishes it; the Messages tab is on because credentials go to the requester's
    DM with the app (read-only: the bot handles no DM messages); shortcuts and external
    select menus are declared only if registered."""
    found = listeners()
    features, settings = slack_manifest["features"], slack_manifest["settings"]
    assert found["action"] and found["view"]
    assert settings["interactivity"]["is_enabled"] is True
    assert "views.publish" in methods_called()
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is (not found["message"])
    declared = {s["callback_id"] for s in features.get("shortcuts", [])}
    assert declared == set(found["shortcut"])
    has_options_url = "message_menu_options_url" in settings["interactivity"]
    assert not found["options"] or has_options_url or "socket_mode_enabled" in settings


def _needed_scopes(manifest: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """What must be covered: per called method / subscribed event / command, the scopes any
    one of which will do."""
    needs: dict[str, frozenset[str]] = {}
    unknown = sorted(set(methods_called()) - METHOD_SCOPES.keys())
    assert not unknown, (
        f"bot/ calls Slack methods the scope table does not know: {unknown} "
        f"(at {[methods_called()[m] for m in unknown]}); add each to METHOD_SCOPES with "
        "the scopes its page on api.slack.com lists"
    )
    for method in methods_called():
        scopes, _doc = METHOD_SCOPES[method]
        if scopes:
            needs[f"method {method}"] = scopes
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        scope, _doc = EVENT_SCOPES[event]
        if scope:
            needs[f"event {event}"] = frozenset({scope})
    if manifest["features"].get("slash_commands"):
        needs["slash command"] = frozenset({COMMAND_SCOPE})
    return needs


def test_web_api_methods_are_found_in_the_code() -> None:
    """The scan really finds the bot's Slack calls (so the scope tests below are not vacuous):
    posting, modals, App Home, user groups and users."""
    assert sdk_methods()["usergroups_users_list"] == "usergroups.users.list"
    assert sdk_methods()["users_lookupByEmail"] == "users.lookupByEmail"
    called = methods_called()
    assert {
        "chat.postMessage",
        "views.open",
        "views.publish",
        "usergroups.users.list",
        "users.info",
    } <= called.keys()


def test_every_web_api_method_called_has_a_listed_scope(slack_manifest: dict[str, Any]) -> None:
    """Each Web API method bot/ calls, each subscribed event and the slash command is allowed
    by a scope the manifest requests (per METHOD_SCOPES / EVENT_SCOPES, from Slack's docs)."""
    listed = set(slack_manifest["oauth_config"]["scopes"]["bot"])
    missing = {
        why: sorted(scopes)
        for why, scopes in _needed_scopes(slack_manifest).items()
        if not scopes & listed
    }
    assert not missing, f"the manifest lacks a scope for: {missing}"
    for scope, also in REQUIRES_ALSO.items():
        assert scope not in listed or also in listed, f"{scope} needs {also} too"


def test_no_listed_scope_is_unused(slack_manifest: dict[str, Any]) -> None:
    """Least privilege: every requested scope is needed by some call, event or the command
    (or by another listed scope that Slack requires it with)."""
    listed = slack_manifest["oauth_config"]["scopes"]["bot"]
    assert len(listed) == len(set(listed)), "a scope is listed twice"
    justified: set[str] = set()
    for scopes in _needed_scopes(slack_manifest).values():
        justified |= scopes
    justified |= {REQUIRES_ALSO[s] for s in listed if s in REQUIRES_ALSO}
    unused = sorted(set(listed) - justified)
    assert not unused, f"scopes no code needs: {unused} (code calls {sorted(methods_called())})"
    assert "user" not in slack_manifest["oauth_config"]["scopes"], "grantbot needs no user token"


# -- Kubernetes ------------------------------------------------------------------------------


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every Kubernetes object in manifests/kubernetes."""
    docs: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path.name, doc) for doc in load_all(path))
    return docs


def only(kind: str, *, name: str | None = None, file: str | None = None) -> dict[str, Any]:
    found = [
        d
        for f, d in k8s_docs()
        if d["kind"] == kind
        and (name is None or d["metadata"]["name"] == name)
        and (file is None or f == file)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in {file or 'the manifests'}"
    return found[0]


def bot_deployment() -> dict[str, Any]:
    return only("Deployment", name="grantbot")


def bot_container() -> dict[str, Any]:
    (container,) = bot_deployment()["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = container
    return result


def env_of(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_every_manifest_parses_and_names_what_it_is() -> None:
    """Every YAML file under manifests/ parses; every Kubernetes document has apiVersion,
    kind and a name, and no name is used twice for one kind."""
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        assert load_all(path), f"{path} is empty"
    seen = set()
    for file, doc in k8s_docs():
        assert doc.get("apiVersion") and doc.get("kind"), file
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"{key} defined twice"
        seen.add(key)
    kinds = {kind for kind, _ in seen}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "StatefulSet"} <= kinds


def test_kustomization_applies_everything_but_the_secret_template() -> None:
    """kustomization.yaml lists every manifest except secret.example.yaml (applying the
    template would overwrite real secrets with placeholders), and pins the image tag."""
    kustomization = load_yaml(K8S / "kustomization.yaml")
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization["resources"]) == files
    assert "secret.example.yaml" not in kustomization["resources"]
    (image,) = kustomization["images"]
    assert image["name"] == bot_container()["image"].split(":")[0]
    assert image["newTag"] not in ("", "latest")


def test_kustomize_labels_every_object_and_pins_the_registry_image() -> None:
    """What ``kubectl apply -k`` renders from kustomization.yaml: every object gets the
    part-of label, the bot's container image (the name kustomize matches) becomes the pinned
    registry tag, and no Secret is among the resources."""
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["labels"] == [{"pairs": {"app.kubernetes.io/part-of": "grantbot"}}]
    (image,) = kustomization["images"]
    assert bot_container()["image"].split(":")[0] == image["name"]
    assert image["newName"] == "registry.example.com/grantbot"
    assert image["newTag"] not in ("", "latest")
    kinds = [doc["kind"] for file in kustomization["resources"] for doc in load_all(K8S / file)]
    assert "Deployment" in kinds and "Secret" not in kinds


def test_deployment_runs_two_hardened_replicas() -> None:
    """Two replicas; readiness on /readyz and liveness on /healthz at the container's HTTP
    port (GRANTBOT_PORT); requests and limits; non-root, read-only root filesystem, no
    privilege escalation, every capability dropped, a writable /tmp; no service-account
    token; rolling updates that never drop below the current ready count."""
    deployment = bot_deployment()
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = bot_container()
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    (port,) = container["ports"]
    assert port["containerPort"] == 3000 == int(env_of(container)["GRANTBOT_PORT"]["value"])
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"

    for part in ("requests", "limits"):
        assert set(container["resources"][part]) == {"cpu", "memory"}

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]  # noqa: S108 - a mount path


def test_shutdown_fits_in_the_grace_period() -> None:
    """terminationGracePeriodSeconds covers the preStop pause plus the bot's own shutdown
    budget (draining acked work, stopping the scheduler, closing the listener)."""
    from bot.scheduling.scheduler import DEFAULT_STOP_GRACE_S
    from bot.wiring import SHUTDOWN_DRAIN_S

    pod = bot_deployment()["spec"]["template"]["spec"]
    pre_stop = bot_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    runner_shutdown_s = 5.0  # web.AppRunner(shutdown_timeout=5.0) in bot/server.py
    needed = float(pre_stop[1]) + SHUTDOWN_DRAIN_S + DEFAULT_STOP_GRACE_S + runner_shutdown_s
    assert pod["terminationGracePeriodSeconds"] >= needed


def test_service_links_cannot_clobber_the_bots_settings() -> None:
    """Kubernetes would set GRANTBOT_PORT=tcp://... for the Service "grantbot" (its docker
    link variables); the pod turns service links off, so the listen port stays 3000."""
    from bot.config import Settings

    aliases = {f.alias for f in Settings.model_fields.values()}
    services = [d["metadata"]["name"] for _, d in k8s_docs() if d["kind"] == "Service"]
    link_vars = {
        re.sub(r"[^A-Z0-9]", "_", name.upper()) + suffix
        for name in services
        for suffix in ("_PORT", "_SERVICE_HOST", "_SERVICE_PORT")
    }
    assert link_vars & aliases  # the clash is real: GRANTBOT_PORT
    assert bot_deployment()["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_env_names_are_settings_the_bot_reads() -> None:
    """Every GRANTBOT_/SLACK_/REDIS_ variable the Deployment sets is a Settings alias (a typo
    would silently be ignored), REDIS_PASSWORD only feeding REDIS_URL."""
    from bot.config import Settings

    aliases = {f.alias for f in Settings.model_fields.values()}
    env = env_of(bot_container())
    unknown = {n for n in env if n.startswith(("GRANTBOT_", "SLACK_", "REDIS_"))} - aliases
    assert unknown == {"REDIS_PASSWORD"}
    assert "$(REDIS_PASSWORD)" in env["REDIS_URL"]["value"]


def test_policy_is_mounted_from_the_configmap_where_grantbot_policy_points() -> None:
    """GRANTBOT_POLICY names policies.yaml inside a read-only directory mount of the
    ConfigMap (a whole-directory mount, not subPath, so edits reach the file and the bot's
    file watch reloads them)."""
    container = bot_container()
    policy_path = Path(env_of(container)["GRANTBOT_POLICY"]["value"])
    assert policy_path == Path("/etc/grantbot/policies.yaml")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(policy_path.parent)]
    assert mount.get("readOnly") is True and "subPath" not in mount
    volumes = {v["name"]: v for v in bot_deployment()["spec"]["template"]["spec"]["volumes"]}
    sources = volumes[mount["name"]]["projected"]["sources"]
    (from_configmap,) = [s["configMap"] for s in sources if "configMap" in s]
    assert {"key": "policies.yaml", "path": policy_path.name} in from_configmap["items"]
    configmap = only("ConfigMap", name=from_configmap["name"], file="configmap.yaml")
    assert "policies.yaml" in configmap["data"]


def sync_configmap() -> ModuleType:
    """scripts/sync-configmap, the ConfigMap's writer, loaded to ask what it would write."""
    path = ROOT / "scripts" / "sync-configmap"
    loader = importlib.machinery.SourceFileLoader("sync_configmap", str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def test_configmap_holds_exactly_the_repositorys_policy(tmp_path: Path) -> None:
    """The ConfigMap's policies.yaml is the repository's file byte for byte, and it passes
    the same check the bot runs at start-up (so a rollout cannot start with a bad policy)."""
    from bot.policy_loader import load_policy

    repo_policy = (ROOT / "policies.yaml").read_text()
    configmap = only("ConfigMap", name="grantbot-policy")
    stale = "manifests/kubernetes/configmap.yaml is stale; run `make configmap`"
    assert configmap["data"]["policies.yaml"] == repo_policy, stale
    assert (K8S / "configmap.yaml").read_text() == sync_configmap().render(repo_policy), stale
    copy = tmp_path / "policies.yaml"
    copy.write_text(configmap["data"]["policies.yaml"])
    loaded = load_policy(copy)
    assert loaded.version == load_policy(ROOT / "policies.yaml").version


def _secret_keys() -> dict[str, set[str]]:
    return {
        d["metadata"]["name"]: set(d["stringData"])
        for f, d in k8s_docs()
        if d["kind"] == "Secret" and f == "secret.example.yaml"
    }


def test_secret_template_covers_every_secret_the_pods_read() -> None:
    """Each secretKeyRef and envFrom Secret exists in secret.example.yaml with that key; the
    bot's Secret carries the Slack credentials and every ${VAR} policies.yaml references;
    every value is a placeholder."""
    from bot.envrefs import referenced_names

    secrets_ = _secret_keys()
    for _, doc in k8s_docs():
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for e in container.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets_[ref["name"]], ref
            for source in container.get("envFrom", []):
                assert source["secretRef"]["name"] in secrets_

    (bot_source,) = bot_container()["envFrom"]
    bot_keys = secrets_[bot_source["secretRef"]["name"]]
    policy = load_yaml(ROOT / "policies.yaml")
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"} <= bot_keys
    assert set(referenced_names(policy)) <= bot_keys

    for _, doc in k8s_docs():
        if doc["kind"] == "Secret":
            assert "data" not in doc
            for key, value in doc["stringData"].items():
                assert "REPLACE_ME" in value, f"{key} holds something other than a placeholder"


def test_redis_url_points_at_the_redis_service() -> None:
    """REDIS_URL's host and port are the Redis Service's, and its password comes from the
    same Secret key the Redis server's requirepass uses."""
    env = env_of(bot_container())
    url = urlsplit(env["REDIS_URL"]["value"].replace("$(REDIS_PASSWORD)", "PW"))
    service = only("Service", name=url.hostname, file="redis.yaml")
    (port,) = service["spec"]["ports"]
    assert url.scheme == "redis" and url.port == port["port"] == 6379 and url.password == "PW"
    names = list(env)
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")  # $(VAR) needs it first
    redis = only("StatefulSet", file="redis.yaml")
    (server,) = redis["spec"]["template"]["spec"]["containers"]
    server_ref = env_of(server)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == server_ref
    args = server["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"


def test_service_sends_port_80_to_the_bot() -> None:
    """The bot's Service maps port 80 to the container's named HTTP port (3000) and selects
    exactly the Deployment's pods, as does the PodDisruptionBudget."""
    service = only("Service", name="grantbot")
    (port,) = service["spec"]["ports"]
    (container_port,) = bot_container()["ports"]
    assert port["port"] == 80 and port["targetPort"] == container_port["name"]
    assert container_port["containerPort"] == 3000
    pod_labels = bot_deployment()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == pod_labels
    assert bot_deployment()["spec"]["selector"]["matchLabels"] == pod_labels
    pdb = only("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == pod_labels
    assert pdb["spec"]["minAvailable"] == 1


def test_redis_keeps_what_it_acknowledged() -> None:
    """Redis runs with AOF on (appendonly yes, fsync every second) into a PersistentVolumeClaim
    mounted at its --dir, never evicts keys, and is as locked down as the bot."""
    redis = only("StatefulSet", file="redis.yaml")
    spec = redis["spec"]
    (server,) = spec["template"]["spec"]["containers"]
    args = server["args"]

    def arg(name: str) -> str:
        value: str = args[args.index(name) + 1]
        return value

    assert arg("--appendonly") == "yes"
    assert arg("--appendfsync") == "everysec"
    assert arg("--maxmemory-policy") == "noeviction"
    (claim,) = spec["volumeClaimTemplates"]
    (mount,) = [m for m in server["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert mount["mountPath"] == arg("--dir")
    assert claim["spec"]["resources"]["requests"]["storage"]
    assert spec["serviceName"] == only("Service", file="redis.yaml")["metadata"]["name"]
    assert spec["replicas"] == 1
    security = server["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    for part in ("requests", "limits"):
        assert set(server["resources"][part]) == {"cpu", "memory"}


def test_only_the_bot_may_reach_redis() -> None:
    """The NetworkPolicy selects the Redis pods and admits only the bot's pods on 6379."""
    policy = only("NetworkPolicy")
    redis_labels = only("StatefulSet", file="redis.yaml")["spec"]["template"]["metadata"]["labels"]
    bot_labels = bot_deployment()["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == redis_labels
    (rule,) = policy["spec"]["ingress"]
    assert [f["podSelector"]["matchLabels"] for f in rule["from"]] == [bot_labels]
    assert [p["port"] for p in rule["ports"]] == [6379]


#: The Kubernetes release whose API schemas the manifests must satisfy.
KUBERNETES_VERSION = "1.30.0"


def test_manifests_match_the_kubernetes_api_schema() -> None:
    """Every object validates (strict: unknown fields are errors) against the Kubernetes API
    schema, with kubernetes-validate (kubeconform is not packaged on the registries here)."""
    import kubernetes_validate

    for file, doc in k8s_docs():
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{file}: {doc['kind']} {doc['metadata']['name']}: {e}")


# -- the image -------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _exec_form(arguments: str) -> list[str]:
    value = yaml.safe_load(arguments)  # a JSON array is valid YAML
    assert isinstance(value, list), f"use the exec form: {arguments}"
    return [str(v) for v in value]


def test_dockerfile_builds_a_non_root_image_that_serves() -> None:
    """python:3.11-slim with openssh-client (ssh-keygen), the package installed with pip,
    a numeric non-root USER that is the Deployment's runAsUser, EXPOSE of the bot's default
    port, and ``grantbot serve`` as what the image runs (``grantbot`` being the package's
    console script)."""
    from bot.config import Settings

    steps = dockerfile()
    (base,) = [args for op, args in steps if op == "FROM"]
    assert base == "python:3.11-slim"
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert re.search(r"apt-get install [^&]*openssh-client", runs)
    assert re.search(r"pip install \.(\s|$)", runs)

    (user,) = [args for op, args in steps if op == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    pod = bot_deployment()["spec"]["template"]["spec"]
    assert int(uid) == pod["securityContext"]["runAsUser"]

    (expose,) = [args for op, args in steps if op == "EXPOSE"]
    assert int(expose) == Settings.model_fields["port"].default == 3000

    (entrypoint,) = [_exec_form(args) for op, args in steps if op == "ENTRYPOINT"]
    (cmd,) = [_exec_form(args) for op, args in steps if op == "CMD"]
    assert entrypoint + cmd == ["grantbot", "serve"]
    assert bot_container()["args"] == cmd
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["grantbot"] == "bot.cli:main"


def test_dockerignore_keeps_state_and_secrets_out_of_the_build_context() -> None:
    """The build context leaves out the virtualenv, git, local bot state and env files, but
    keeps everything the Dockerfile copies."""
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".grantbot", ".env", "*.env"} <= ignored
    copied = [
        part
        for op, args in dockerfile()
        if op == "COPY" and "--from" not in args
        for part in shlex.split(args)[:-1]
    ]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") not in ignored, f"{source} is copied but .dockerignore drops it"
