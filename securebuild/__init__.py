"""securebuild: OpenShift Docker-strategy builds, each project in its own virtual machine.

The package is the control side. It is layered (see ../shared/DESIGN.md section 2, enforced by
import-linter in ``pyproject.toml``): ``cli`` and ``daemon`` at the top, then the adapters to the
outside world (``cluster``, ``runner``, ``fleet``, ``api``, ``logs``), then the pure core
(``model``, ``dockerfile``, ``pki``) that imports no network library.
"""

from pathlib import Path

__version__ = (Path(__file__).parent / "VERSION").read_text(encoding="utf-8").strip()
