"""What Python hosts do today: requests (a keep-alive Session) plus the seed's verify.

Usage: requests_seed.py BASE_URL PUBLIC_KEY_PEM API_KEY N [CA_FILE]
Prints one JSON object: {"first": seconds, "fresh": [seconds...], "cached": [seconds...]}.
"first" is the new Session's first call (connection and, over HTTPS, the TLS handshake);
"cached" is a dict cache in front of the same call, keyed by number (the seed's advice: cache
by E.164). With CA_FILE (an https:// BASE_URL), the Session trusts that CA, as `verify=` does.
"""
import json
import os
import sys
import time

import requests

# The seed's verify, as users copy it, shared with the Python package's benchmark.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from seed_verify import make_verify  # noqa: E402

base, pem_path, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ca = sys.argv[5] if len(sys.argv) > 5 else None
verify = make_verify(open(pem_path, "rb").read())


session = requests.Session()
# Per request, not on the Session: requests lets REQUESTS_CA_BUNDLE override `Session.verify`.
tls_verify = ca if ca else True
url = base + "/api/v1/inbound/lookup"
headers = {"Authorization": "Bearer " + key}


def lookup(number):
    r = session.post(url, json={"number": number, "context": "inbound_voice"}, headers=headers, timeout=0.4, verify=tls_verify)
    body = r.json()
    if not verify(body):
        return None
    return body


t = time.perf_counter()
assert lookup("+14155551212") is not None
first = time.perf_counter() - t
for _ in range(20):
    lookup("+14155551212")
fresh = []
for _ in range(n):
    t = time.perf_counter()
    assert lookup("+14155551212") is not None
    fresh.append(time.perf_counter() - t)
cache = {}
cached = []
for _ in range(n):
    t = time.perf_counter()
    number = "+14155551212"
    hit = cache.get(number)
    if hit is None:
        hit = cache[number] = lookup(number)
    cached.append(time.perf_counter() - t)
print(json.dumps({"first": first, "fresh": fresh, "cached": cached}))
