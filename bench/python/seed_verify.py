"""The baseline: the seed's Python `verify` (shared/seeds/001, the Asterisk/FreePBX guide's
inbound lookup API), as users copy it today, with the key loaded once as the seed does."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.serialization import load_pem_public_key


def make_verify(pem: bytes):
    pub = load_pem_public_key(pem)

    def verify(resp: dict) -> bool:
        sig = resp.get("response_signature", "")
        if not sig.startswith("ed25519:"):
            return False
        body = {k: resp[k] for k in sorted(resp) if k != "response_signature"}
        canonical = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        try:
            pub.verify(base64.b64decode(sig[8:]), canonical.encode("utf-8"))
            return True
        except Exception:
            return False

    return verify
