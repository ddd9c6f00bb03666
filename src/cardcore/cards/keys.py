"""The CVK pair, from settings or (embedded mode) generated once into the data directory."""

import json
import os
import secrets
from pathlib import Path

from cardcore.config import Settings


def _check(name: str, value: str) -> bytes:
    if len(value) != 16:
        raise ValueError(f"{name} must be 16 hex digits")
    return bytes.fromhex(value)


def load_cvk(settings: Settings) -> tuple[bytes, bytes]:
    if settings.cvk_a and settings.cvk_b:
        return _check("CARDCORE_CVK_A", settings.cvk_a), _check("CARDCORE_CVK_B", settings.cvk_b)
    path = Path(settings.data_dir).expanduser().resolve() / "cvk.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            json.dump({"a": secrets.token_hex(8), "b": secrets.token_hex(8)}, handle)
    stored = json.loads(path.read_text())
    return _check("cvk a", stored["a"]), _check("cvk b", stored["b"])
