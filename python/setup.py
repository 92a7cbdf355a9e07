"""Builds rl_rewards._core with the project's own CMake (python/CMakeLists.txt), so that pip
and `cmake --build` compile the same sources with the same options; the reward specs of
configs/rewards/ go into the package as rl_rewards/specs/ (rl_rewards.SPECS)."""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class BuildWithCMake(build_ext):
    def build_extension(self, ext):
        build_dir = os.path.abspath(os.path.join(self.build_temp, "cmake"))
        configure = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                     "-DRL_WITH_TORCH=OFF", "-DRL_BUILD_TESTS=OFF", "-DRL_BUILD_BENCH=OFF",
                     "-DRL_BUILD_PYTHON=ON", f"-DPYTHON_EXECUTABLE={sys.executable}"]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        subprocess.check_call(configure)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "rl_rewards_core",
                               "-j", str(os.cpu_count() or 1)])
        built = glob.glob(os.path.join(build_dir, "python", "rl_rewards", "_core*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one built rl_rewards/_core*.so under {build_dir}, found {built}")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built[0], target)


class BuildWithSpecs(build_py):
    def run(self):
        super().run()
        specs = os.path.join(self.build_lib, "rl_rewards", "specs")
        os.makedirs(specs, exist_ok=True)
        for spec in glob.glob(os.path.join(ROOT, "configs", "rewards", "*.yaml")):
            shutil.copy(spec, specs)


setup(ext_modules=[CMakeExtension("rl_rewards._core")],
      cmdclass={"build_ext": BuildWithCMake, "build_py": BuildWithSpecs})
