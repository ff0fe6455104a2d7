"""A Node.js emulator (Azurite, the Cosmos DB server) as a child process: started, waited
for until its ready line, drained so a full pipe never blocks it, stopped."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path


def npm_install(cache: Path, package: str, version: str) -> Path:
    """The package's folder under the npm prefix `cache`, after `npm install
    <package>@<version>` there if that version is not installed yet."""
    folder = cache / "node_modules" / package
    if _installed_version(folder) == version:
        return folder
    npm = shutil.which("npm")
    if npm is None:
        message = f"npm is not on PATH: {package} cannot be installed"
        raise RuntimeError(message)
    cache.mkdir(parents=True, exist_ok=True)
    ignore = cache.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# installed by the test helpers; never committed\n*\n")
    subprocess.run(
        [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
         "--loglevel=error", f"{package}@{version}"],
        check=True,
        timeout=600,
    )  # fmt: skip
    if _installed_version(folder) != version:
        message = f"npm did not install {package}@{version} into {cache}"
        raise RuntimeError(message)
    return folder


def _installed_version(folder: Path) -> str | None:
    try:
        return str(json.loads((folder / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


class NodeServer:
    """One `node` process; `stop()` is safe twice."""

    def __init__(self, name: str, *, startup_timeout: float = 60.0) -> None:
        self.name = name
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None

    def start(
        self, args: list[str], ready: re.Pattern[str], cwd: Path | None = None
    ) -> re.Match[str]:
        """Run `node *args`; the match of `ready` on the first line it fits."""
        node = shutil.which("node")
        if node is None:
            message = f"node is not on PATH: {self.name} cannot run"
            raise RuntimeError(message)
        self._process = subprocess.Popen(
            [node, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, args=(lines,), daemon=True).start()
        deadline = time.monotonic() + self._startup_timeout
        seen: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                line = ""
            if line is None or remaining <= 0:
                self.stop()
                message = f"{self.name} did not start:\n" + "".join(seen)
                raise RuntimeError(message)
            seen.append(line)
            if match := ready.search(line):
                return match

    def _drain(self, lines: queue.Queue[str | None]) -> None:
        # Read until the server exits, so a full pipe never blocks it.
        process = self._process
        assert process is not None
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
