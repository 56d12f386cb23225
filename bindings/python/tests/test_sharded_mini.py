"""AdaGC + Adam-mini on 4 host devices (shard_map: row/head blocks per shard, a one-block norm
weight in three phases with its per-tile partials all-gathered, AdaGC's per-tensor norms from
gathered partials) give the single-device bits."""

import json
import os
import subprocess
import sys


def test_four_devices_match_one_device_bit_for_bit():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    script = os.path.join(os.path.dirname(__file__), "sharded_mini_run.py")
    r = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(out)
    assert out["devices"] == 4
    assert out["local_run_differs"], "per-shard blocks gave the global bits: test is blind"
    assert out["same_bits"], out
    assert "x" in out["param_sharding"]
