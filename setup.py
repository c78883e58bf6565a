"""Packaging for securebuild: the control side that runs OpenShift Docker builds in project VMs."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _requirements() -> list[str]:
    """Read the direct runtime dependencies; exact pins live in constraints.txt."""
    lines = (HERE / "requirements.in").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="securebuild",
    version=(HERE / "securebuild" / "VERSION").read_text(encoding="utf-8").strip(),
    description="OpenShift Docker-strategy builds in per-project virtual machines",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["securebuild", "securebuild.*"]),
    package_data={"securebuild": ["VERSION", "py.typed"]},
    install_requires=_requirements(),
    entry_points={"console_scripts": ["securebuild = securebuild.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Operating System :: POSIX :: Linux",
    ],
)
