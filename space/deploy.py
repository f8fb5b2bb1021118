"""Assemble the Space folder (this folder + the leaderboard and hf_unlearn packages) and upload it.

    python space/deploy.py ORG/SPACE_NAME            # build in a temporary folder and upload (needs HF_TOKEN)
    python space/deploy.py --out build/space         # only build the folder, to inspect or upload by hand

On the Space, ``app.py`` sits at the root next to ``leaderboard/`` and
``hf_unlearn/``, so both import without installing hf-unlearn; the third-party
packages come from ``requirements.txt``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

SPACE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SPACE_DIR.parent
SPACE_FILES = ("app.py", "README.md", "requirements.txt")
PACKAGES = ("leaderboard", "hf_unlearn")
# Not needed on the Space: the shipped image samples and YAML presets serve the training CLI.
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "samples", "configs", ".*")


def build(out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in SPACE_FILES:
        shutil.copy2(SPACE_DIR / name, out / name)
    for package in PACKAGES:
        target = out / package
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(REPO_ROOT / package, target, ignore=IGNORE)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("space", nargs="?", help="Space repo id ORG/NAME to upload to")
    parser.add_argument("--out", help="build the folder here and stop (no upload)")
    args = parser.parse_args(argv)
    if args.out:
        print(f"Space folder: {build(args.out)}")
        return
    if not args.space:
        parser.error("give a Space id ORG/NAME to upload to, or --out FOLDER to only build the folder")
    try:
        from hf_unlearn import hub
    except ImportError:  # run from a source checkout
        import sys

        sys.path.insert(0, str(REPO_ROOT))
        from hf_unlearn import hub
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "space")
        print(hub.push_folder(folder, args.space, repo_type="space"))


if __name__ == "__main__":
    main()
