"""A real Hub HTTP server for tests: olah serving local git repos offline, plus the helpers around it.

olah (https://github.com/vtuber-plan/olah) is a Hugging Face Hub mirror. With
``[accessibility] offline = true`` it never contacts huggingface.co, and with
``[basic] mirrors-path`` it serves git repositories laid out as
``<mirrors>/<models|datasets>/<ORG>/<NAME>`` over the Hub's HTTP API
(``/api/<type>/<repo>/revision/<rev>``, ``/api/.../tree/...``, ``/<repo>/resolve/<rev>/<file>``).
Tests that need the real client code paths (``huggingface_hub``, ``datasets``) against a server use
this module: build repos with :func:`init_repo` / :func:`commit_folder`, start :func:`olah_server`,
and run the client code in a child process with :func:`client_env` and :func:`run_client`
(``huggingface_hub`` reads the endpoint and offline flags at import time, so the test process
itself cannot be pointed at the server).

Not a test module (the name does not start with ``test_``): pytest does not collect it. It does not
import olah; callers skip with ``pytest.importorskip("olah")`` before starting the server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Variables that would send the server or a client to the real Hub, a user's token or cache, or a proxy.
_LEAKY_PREFIXES = ("HF_", "HUGGINGFACE_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


# --------------------------------------------------------------------------------------------- git repos


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity and no user or system config; returns stdout."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def init_repo(path: Path) -> Path:
    """An empty git repo on branch ``main`` at ``path`` (e.g. ``<mirrors>/models/ORG/NAME``)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    return path


def commit_folder(repo: Path, src: Path, message: str = "upload") -> str:
    """Replace the repo's tracked files with ``src``'s and commit; returns the commit sha.

    Hidden files and a ``checkpoints`` folder (training resume state) are left out, as an upload would.
    """
    for old in repo.iterdir():
        if old.name != ".git":
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    shutil.copytree(src, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "checkpoints"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


# --------------------------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class OlahServer:
    """A running olah: its endpoint URL and the file holding its output (one line per request served)."""

    endpoint: str
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no olah output)"


def clean_env() -> dict[str, str]:
    """This process's environment without HF_*/HUGGINGFACE_* and proxy variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(proc: subprocess.Popen, url: str, server: OlahServer, timeout: float) -> None:
    """Poll ``url`` until it answers 200; raise with the server's output if it exits, errs or stays silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"olah exited with {proc.returncode} before answering {url}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:  # it answers, but not with the repo: no point waiting
            raise RuntimeError(f"olah answered {url} with {exc.code} (is the repo under mirrors-path, "
                               f"on branch main?):\n{server.log_tail()}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"olah did not answer {url} within {timeout:.0f} s:\n{server.log_tail()}")


@contextmanager
def olah_server(mirrors: Path, workdir: Path, probe_model: str, timeout: float = 45.0) -> Iterator[OlahServer]:
    """Run olah offline on a free localhost port, serving the git repos under ``mirrors``.

    ``workdir`` receives the config, olah's cache and logs, and ``olah.out`` (the request log that tests
    read to see what was served). The server is ready once ``probe_model`` (a model repo under
    ``mirrors``) resolves at ``main``; it is terminated on exit, killed if it does not stop.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = workdir / "olah.toml"
    # hf-netloc points at a closed local port: offline mode never calls it, and nothing could leak if it did.
    # Paths are written as JSON strings, which are valid TOML basic strings (backslashes escaped).
    config.write_text(textwrap.dedent(f"""\
        [basic]
        host = "127.0.0.1"
        port = {port}
        repos-path = {json.dumps(str(workdir / 'olah-cache'))}
        mirrors-path = [{json.dumps(str(mirrors))}]
        hf-scheme = "http"
        hf-netloc = "127.0.0.1:9"
        hf-lfs-netloc = "127.0.0.1:9"

        [accessibility]
        offline = true
        """))
    server = OlahServer(f"http://127.0.0.1:{port}", workdir / "olah.out")
    with open(server.log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "olah.server", "--config", str(config), "--log-path", str(workdir / "olah-logs")],
            cwd=workdir, env=clean_env(), stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(proc, f"{server.endpoint}/api/models/{probe_model}/revision/main", server, timeout)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------- clients


def client_env(endpoint: str, hf_home: Path) -> dict[str, str]:
    """The environment of a child process whose Hub is ``endpoint``: no user token, cache, proxy or offline flag."""
    return dict(
        clean_env(), HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), TOKENIZERS_PARALLELISM="false",
    )


def run_client(script: str, args: dict, *, cwd: Path, server: OlahServer, timeout: float) -> dict:
    """Run ``script`` (``python -c``, with ``args`` as JSON in argv[1]) against ``server``; returns its result.

    The script prints its result as one line ``RESULT <json>``. Its ``HF_HOME`` is a fresh folder next to
    ``cwd`` (``<cwd>-hf-home``), so nothing is read from a cache the server did not fill. The test fails,
    with the client's stderr and the server's output, when it exits non-zero or prints no such line.
    """
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=cwd,
                          env=client_env(server.endpoint, cwd.parent / f"{cwd.name}-hf-home"),
                          capture_output=True, text=True, timeout=timeout, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        pytest.fail(f"client failed (exit {proc.returncode}, result line {'found' if line else 'missing'}):\n"
                    f"{proc.stderr[-4000:]}\nolah log:\n{server.log_tail()}")
    return json.loads(line[len("RESULT "):])
