"""The wheel installs the mpnn_rs package only: no top-level `mpnn` module or package and no
`mpnn` command (another project owns those names), and leaves existing ones untouched."""

import hashlib
import importlib.metadata
import os
import pathlib
import subprocess
import sys
import venv
import zipfile

import pytest

from conftest import CI, REPO


def _wheel():
    env = os.environ.get("MPNN_RS_WHEEL")
    candidates = [pathlib.Path(env)] if env else sorted((REPO / "dist").glob("mpnn_rs-*.whl"))
    candidates = [c for c in candidates if c.is_file()]
    if not candidates:
        msg = "no built wheel (set MPNN_RS_WHEEL, or build one into dist/)"
        if CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return candidates[-1]


def _bad(name):
    """Whether a path inside a wheel or an installation is a top-level mpnn module or command."""
    parts = pathlib.PurePosixPath(name.replace("\\", "/")).parts
    top = parts[0] if parts else ""
    if top in ("mpnn", "mpnn.py") or top.startswith("mpnn.") and top.endswith((".so", ".pyd")):
        return True
    return ".data" in top and len(parts) > 2 and parts[1] == "scripts" or parts[-2:] == ("bin", "mpnn")


def test_installed_distribution_has_no_mpnn_module_or_command():
    files = importlib.metadata.files("mpnn-rs")
    assert files, "mpnn-rs is not installed"
    bad = [str(f) for f in files if _bad(str(f)) or str(f).endswith("bin/mpnn")]
    assert bad == []
    eps = importlib.metadata.distribution("mpnn-rs").entry_points
    assert [e for e in eps if e.group == "console_scripts"] == []


def test_wheel_contents():
    names = zipfile.ZipFile(_wheel()).namelist()
    tops = {n.split("/")[0] for n in names}
    assert all(t == "mpnn_rs" or t.startswith("mpnn_rs-") for t in tops), tops
    assert not [n for n in names if _bad(n)]
    for required in ("mpnn_rs/__init__.py", "mpnn_rs/__init__.pyi", "mpnn_rs/py.typed"):
        assert required in names
    assert any(n.startswith("mpnn_rs/_mpnn_rs") for n in names)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_install_leaves_an_existing_mpnn_package_and_command_untouched(tmp_path):
    wheel = _wheel()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    purelib = subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True).strip()
    site = pathlib.Path(purelib)
    # Stand-ins for another project's `mpnn` package and `mpnn` command.
    pkg = site / "mpnn"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("OWNER = 'another project'\n")
    script = env_dir / "bin" / "mpnn"
    script.write_text("#!/bin/sh\necho another project's mpnn\n")
    script.chmod(0o755)
    before = {p: _digest(p) for p in (pkg / "__init__.py", script)}
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        check=True,
    )
    after = {p: _digest(p) for p in before}
    assert before == after
    assert sorted(p.name for p in pkg.iterdir()) == ["__init__.py"]
    assert (site / "mpnn_rs" / "__init__.py").exists()
    record = next(site.glob("mpnn_rs-*.dist-info")) / "RECORD"
    installed = [line.split(",")[0] for line in record.read_text().splitlines()]
    assert not [n for n in installed if _bad(n) or n.endswith("bin/mpnn")], installed
