"""4 host devices (shard_map, all-gather of per-tile partials for the global norm) give the
same bits as one device when every shard starts on a 4096-element tile boundary."""

import json
import os
import subprocess
import sys


def test_four_devices_match_one_device_bit_for_bit():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    script = os.path.join(os.path.dirname(__file__), "sharded_run.py")
    r = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(out)
    assert out["devices"] == 4
    assert out["clipped_steps"] > 0, "the clip never triggered, so the norm was not exercised"
    assert out["local_norm_run_differs"], "per-shard norms gave the global bits: test is blind"
    assert out["same_bits"], out
    assert "x" in out["param_sharding"]
