"""Builds tokenprobe._native with the repository's CMake (the TP_PYTHON option) for the
interpreter running pip, and puts it into the wheel beside the pure-Python package.

The CMake build folder is <repo>/build-python (kept between installs, so a reinstall
recompiles only what changed; ccache is used when installed). TOKENPROBE_CMAKE_ARGS adds
options, e.g. "-DTP_NATIVE=OFF" for a wheel that runs on other x86-64 machines.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not (ROOT / "CMakeLists.txt").exists():
            raise RuntimeError(f"{ROOT} holds no CMakeLists.txt: install from a tokenprobe checkout (pip install ./python)")
        build = ROOT / "build-python"
        args = ["-DCMAKE_BUILD_TYPE=Release", "-DTP_BUILD_TESTS=OFF", "-DTP_BUILD_BENCH=OFF", "-DTP_PYTHON=ON",
                f"-DPYTHON_EXECUTABLE={sys.executable}"]
        try:  # pybind11's CMake files: Debian's python3-pybind11, or pip's in an isolated build
            import pybind11
            args.append(f"-Dpybind11_DIR={pybind11.get_cmake_dir()}")
        except ImportError:
            pass  # CMake looks in its own places (/usr/lib/cmake/pybind11 from pybind11-dev)
        if shutil.which("ninja") and not (build / "CMakeCache.txt").exists():
            args += ["-G", "Ninja"]
        if shutil.which("ccache"):
            args.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
        args += shlex.split(os.environ.get("TOKENPROBE_CMAKE_ARGS", ""))
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *args], check=True)
        cache = (build / "CMakeCache.txt").read_text()
        if "TP_PYTHON_BUILT:INTERNAL=ON" not in cache:
            raise RuntimeError("CMake found no pybind11, so tokenprobe._native cannot be built; on Debian: "
                               "apt-get install python3-pybind11 python3-dev (scripts/setup)")
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", str(build), "--target", "tokenprobe_native", "-j", jobs], check=True)
        built = sorted((build / "python" / "tokenprobe").glob("_native*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one _native*.so in {build / 'python' / 'tokenprobe'}, found {built}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


setup(ext_modules=[Extension("tokenprobe._native", sources=[])], cmdclass={"build_ext": CMakeBuild})
