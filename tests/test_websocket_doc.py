"""docs/websocket.md against the code: every frame type and close code the server can send is
documented, and the close-code table lists no code the server never sends. What the server can
send is read from the source of the whole package (wherever the modules live), not listed here,
so a new frame or close code fails this test until the document says what it means."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "expertconnect"
DOC = ROOT / "docs" / "websocket.md"

# Codes Tornado sends by itself, each because of a setting this project passes it: a frame
# over websocket_max_message_size closes with 1009; a socket that misses its pong within
# websocket_ping_timeout is closed with 1000 ("ping timed out").
TORNADO_CODES = {"websocket_max_message_size": 1009, "websocket_ping_timeout": 1000}

# Anchors the scan must find, so a scan that broke cannot pass by finding nothing.
KNOWN_FRAME_TYPES = {"message.receive", "notification.receive", "error", "resync_required"}
KNOWN_CLOSE_CODES = {1001, 4401, 4404}


def _sources() -> list[Path]:
    """The package wherever its modules live, and the server's entry point beside it."""
    return sorted(PACKAGE.rglob("*.py")) + [p for p in [ROOT / "server.py"] if p.exists()]


def _modules() -> list[ast.Module]:
    return [ast.parse(p.read_text(encoding="utf-8")) for p in _sources()]


def _constants(modules: list[ast.Module], kind: type) -> dict[str, object]:
    """NAME = literal assignments of `kind` anywhere in the package (module constants, enum
    members), for frames and close codes spelled with a name."""
    names = {}
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and type(node.value.value) is kind:
                        names[target.id] = node.value.value
    return names


def _resolve(value: ast.expr | None, constants: dict[str, object]) -> object:
    """A literal, or the literal a NAME or a module.NAME / Enum.NAME stands for."""
    if isinstance(value, ast.Constant):
        return value.value
    if isinstance(value, ast.Name):
        return constants.get(value.id)
    if isinstance(value, ast.Attribute):
        return constants.get(value.attr)
    return None


def _frame_types(modules: list[ast.Module]) -> set[str]:
    """The value of every "type" key of a dict the server builds: {"type": X, ...} or
    dict(type=X), X a string literal or a constant naming one."""
    constants = _constants(modules, str)

    def resolve(value: ast.expr) -> str | None:
        found = _resolve(value, constants)
        return found if isinstance(found, str) else None

    found = set()
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "type":
                        found.add(resolve(value))
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict":
                found.update(resolve(k.value) for k in node.keywords if k.arg == "type")
    found.discard(None)
    return found


def _close_codes(modules: list[ast.Module]) -> set[int]:
    """Codes in constants named CLOSE_*, arguments of any call whose name has "close" in it
    (socket.close(4404, ...), hub.close_all(1001, ...), self.close(CLOSE_TOO_SLOW, ...),
    literal or named), and defaults of parameters named `code` (hub.close_token(code=4401))."""

    constants = _constants(modules, int)

    def code_of(value: ast.expr | None) -> int | None:
        code = _resolve(value, constants)
        return code if type(code) is int and 1000 <= code <= 4999 else None

    found = set()
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Assign):
                if any(isinstance(t, ast.Name) and t.id.startswith("CLOSE_") for t in node.targets):
                    found.add(code_of(node.value))
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if "close" in name:
                    found.update(code_of(a) for a in node.args)
                    found.update(code_of(k.value) for k in node.keywords)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults))
                defaults += node.args.defaults + node.args.kw_defaults
                for arg, default in zip(args, defaults, strict=True):
                    if arg.arg == "code":
                        found.add(code_of(default))
    source = "\n".join(p.read_text(encoding="utf-8") for p in _sources())
    found.update(code for setting, code in TORNADO_CODES.items() if setting in source)
    found.discard(None)
    return found


def _section(text: str, heading: str) -> str:
    """The body of the `## heading` section, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/websocket.md has no '## {heading}' section"
    return match.group(1)


MODULES = _modules()
TEXT = DOC.read_text(encoding="utf-8")


def test_the_scan_finds_what_the_server_is_known_to_send():
    assert KNOWN_FRAME_TYPES <= _frame_types(MODULES)
    assert KNOWN_CLOSE_CODES <= _close_codes(MODULES)


def test_every_frame_type_the_server_sends_has_a_json_example():
    examples = "\n".join(re.findall(r"```json\n(.*?)```", TEXT, re.S))
    missing = {t for t in _frame_types(MODULES) if f'"type": "{t}"' not in examples}
    assert not missing, f"frame types without a JSON example in docs/websocket.md: {missing}"


def test_every_close_code_the_server_sends_is_in_the_close_code_table():
    table = _section(TEXT, "Close codes")
    listed = {int(code) for code in re.findall(r"^\|\s*`?(\d{4})`?\s*\|", table, re.M)}
    sent = _close_codes(MODULES)
    assert not sent - listed, f"close codes missing from the table: {sent - listed}"
    assert not listed - sent, f"the table lists codes the server never sends: {listed - sent}"


def test_the_inbound_frame_the_server_reads_has_a_json_example():
    source = "\n".join(p.read_text(encoding="utf-8") for p in _sources())
    assert '"message.send"' in source  # the chat socket's one accepted frame type
    examples = "\n".join(re.findall(r"```json\n(.*?)```", TEXT, re.S))
    assert '"type": "message.send"' in examples
