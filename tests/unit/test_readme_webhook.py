"""The README's webhook receiver verifies what routing signs: its `verify` is run here on a
body signed by routing's own signer, a tampered body and a wrong secret."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from routing.adapters.webhooks import signature

README = Path(__file__).resolve().parents[2] / "README.md"


def receiver_namespace() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (code,) = [b for b in blocks if b.startswith("# baton-webhook-receiver.py")]
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}  # not __main__: no server
    exec(compile(code, "README receiver", "exec"), namespace)
    return namespace


def test_the_readme_receiver_accepts_routings_signature_and_refuses_tampering() -> None:
    namespace = receiver_namespace()
    verify: Callable[[bytes, bytes, str], bool] = namespace["verify"]
    secret: bytes = namespace["SECRET"]
    body = b'{"notification_id":"n-1","reason":"breach"}'
    header = signature(secret, body)
    assert verify(secret, body, header)
    assert not verify(secret, body.replace(b"breach", b"warning"), header)
    assert not verify(b"another secret", body, header)
    assert not verify(secret, body, "")
