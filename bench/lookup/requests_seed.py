"""What Python hosts do today: requests (a keep-alive Session) plus the seed's verify.

Usage: requests_seed.py BASE_URL PUBLIC_KEY_PEM API_KEY N
Prints one JSON object: {"fresh": [seconds...], "cached": [seconds...]}. "cached" is a dict
cache in front of the same call, keyed by number (the seed's advice: cache by E.164).
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
verify = make_verify(open(pem_path, "rb").read())


session = requests.Session()
url = base + "/api/v1/inbound/lookup"
headers = {"Authorization": "Bearer " + key}


def lookup(number):
    r = session.post(url, json={"number": number, "context": "inbound_voice"}, headers=headers, timeout=0.4)
    body = r.json()
    if not verify(body):
        return None
    return body


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
print(json.dumps({"fresh": fresh, "cached": cached}))
