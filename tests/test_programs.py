"""A fresh machine has every program the toolchain calls: each Debian-provided one is owned by a package that
requirements-debian.txt names or pulls in without recommends (as bootstrap.sh installs them)."""

from pathlib import Path

from toolchain.core import programs
from toolchain.core.config import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements-debian.txt"


def test_every_program_the_toolchain_calls_comes_from_requirements_debian():
    assert programs.not_installed_by(REQUIREMENTS) == {}


def test_the_check_fails_without_the_package_rustc_only_recommends(tmp_path: Path):
    """How the main command came to fail on a new machine: rust-lld's package, rust-web-llvm, left out."""
    scratch = tmp_path / "requirements-debian.txt"
    scratch.write_text("\n".join(n for n in programs.requirement_names(REQUIREMENTS) if n != "rust-web-llvm") + "\n")
    problems = programs.not_installed_by(scratch)
    assert set(problems) == {"rust-lld"}, problems
    assert "rust-web-llvm" in problems["rust-lld"]


def test_base_image_programs_are_here():
    missing = [p.name for p in programs.ALL if p.source == programs.BASE_IMAGE and not p.present()]
    assert not missing, f"machines of this kind come with {missing}"


def test_no_program_is_called_by_bare_name_outside_the_registry():
    """Callers take paths from toolchain/core/programs.py: a bare "wasm-opt" elsewhere would bypass the check above."""
    offenders = []
    for path in sorted((REPO_ROOT / "toolchain").rglob("*.py")):
        if path.name == "programs.py":
            continue
        text = path.read_text()
        for ext in programs.ALL:
            bare = Path(ext.path).name
            for quoted in (f'["{bare}"', f'"{ext.path}"', f'which("{bare}")'):
                if quoted in text:
                    offenders.append(f"{path.relative_to(REPO_ROOT)}: {quoted}")
    assert not offenders, offenders
