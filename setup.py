"""The one compiled part of the package: the CPU state kernels (qsim_dist/kernels/_cpu.c, OpenMP).

Everything else is declared in setup.cfg and pyproject.toml."""

from setuptools import Extension, setup

CPU_KERNELS = Extension(
    "qsim_dist.kernels._cpu",
    sources=["qsim_dist/kernels/_cpu.c"],
    depends=["qsim_dist/kernels/_cpu_kernels.h"],
    # -ffp-contract=fast: multiply-adds fused; no errno or traps, so the loops vectorise
    extra_compile_args=["-O3", "-std=gnu11", "-fopenmp", "-ffp-contract=fast", "-fno-math-errno",
                        "-fno-trapping-math"],
    extra_link_args=["-fopenmp"],
)

setup(ext_modules=[CPU_KERNELS])
