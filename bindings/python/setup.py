"""Build hook: compile the Rust library (`cargo build --release -p adamant-ffi`) and ship
`libadamant.so` inside the `adamant` package. Everything else is in pyproject.toml."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the cargo workspace
LIB = "libadamant.dylib" if sys.platform == "darwin" else "libadamant.so"


class BuildWithCargo(build_py):
    def run(self):
        prebuilt = os.environ.get("ADAMANT_PREBUILT_LIB")
        if prebuilt:
            lib = Path(prebuilt)
        else:
            if not (ROOT / "Cargo.toml").exists():
                raise RuntimeError(f"adamant: no cargo workspace at {ROOT}; install from the repository")
            cargo = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
            subprocess.check_call(
                [cargo, "build", "--release", "-p", "adamant-ffi", "--manifest-path", str(ROOT / "Cargo.toml")],
                cwd=ROOT,
            )
            target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
            if not target.is_absolute():
                target = ROOT / target
            lib = target / "release" / LIB
        if not lib.exists():
            raise RuntimeError(f"adamant: {lib} was not built")
        super().run()
        dest = Path(self.build_lib) / "adamant"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, dest / LIB)


class BinaryDistribution(Distribution):
    """The wheel carries a native library, so it is platform-specific."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithCargo}, distclass=BinaryDistribution)
