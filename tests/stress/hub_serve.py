"""Serve a fixture model from the nginx hub (tests/py/hub_fixture.py) until
stdin closes; prints the hub URL on the first line.  Used by
tests/stress/registry_kill.sh and bench/pull_bench.sh.
usage: hub_serve.py ROOT SIZE_MB [LIMIT_RATE]"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from hub_fixture import Hub, Repo  # noqa: E402

root, size_mb = sys.argv[1], float(sys.argv[2])
rate = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
n = int(size_mb * 1e6) // 4
hdr = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
hdr += b" " * (-len(hdr) % 8)
weights = len(hdr).to_bytes(8, "little") + hdr + os.urandom(4 * n)
files = {"config.json": json.dumps({"model_type": "llama", "torch_dtype": "float32"}).encode(),
         "tokenizer.json": b"{}", "model.safetensors": weights}
hub = Hub(root, [Repo("acme/big", files)], limit_rate=rate).start()
print(hub.url, hub.repos[0].commit, flush=True)
try:
    sys.stdin.read()
finally:
    hub.stop()
