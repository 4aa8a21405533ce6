"""Serving speed (issue 5): requests/s for /feeds/all.atom from `aggregator serve`.

    python bench/serve_load.py                      # 100 feeds / 2,500 posts of the perf corpus
    python bench/serve_load.py --config WORK/config.toml   # feeds an earlier run published
    python bench/serve_load.py --duration 30 --connections 100

Without --config it builds a small site first: it generates (or reuses) the
perf corpus of bench/run_bench.py, serves it with bench/serve_corpus.py,
writes a config.toml for it in a temporary directory and runs
`aggregator fetch --all` once, so that all.atom holds real posts.

Then it starts `aggregator serve` on a free port of 127.0.0.1 and loads
/feeds/all.atom with wrk (the load generator from Debian's packages:
`apt-get install wrk`), twice: with the file's ETag in If-None-Match (every
answer a 304) and without it (every answer the full body, gzip not asked
for). It prints requests/s, latency and the targets of issue 5 (≥ 5,000 and
≥ 1,000 requests/s). wrk and the server share this machine's cores, as on a
real host behind a load balancer they would not; the figures are a floor.

It prints figures; it is not a test, and exits 0 whatever they are (1 when
wrk is missing or the server does not start).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run_bench  # noqa: E402  (the corpus, its server and the config writer)

#: Issue 5's targets, requests/s.
TARGET_304 = 5_000
TARGET_FULL = 1_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _with_server_port(config: Path, port: int, into: Path) -> Path:
    """A copy of *config* whose [server] listens on *port* (appended when it has none)."""
    text = config.read_text(encoding="utf-8")
    if re.search(r"(?m)^\[server\]", text):
        text = re.sub(r"(?m)^port\s*=.*$", f"port = {port}", text)
        if f"port = {port}" not in text:
            text = re.sub(r"(?m)^\[server\]\s*$", f"[server]\nport = {port}", text, count=1)
    else:
        text += f'\n[server]\nhost = "127.0.0.1"\nport = {port}\n'
    # Relative paths (database, feeds_dir) stay relative to the original's directory.
    copy = into / f"serve-{config.name}"
    copy.write_text(text, encoding="utf-8")
    return copy


def build_site(work: Path, feeds: int, posts: int, seed: int) -> Path:
    """A config.toml in *work* whose feeds/ holds what one fetch of the perf corpus publishes."""
    corpus = Path(tempfile.gettempdir()) / f"aggregator-perf-corpus-{feeds}-{posts}-{seed}"
    manifest = run_bench.ensure_corpus(corpus, feeds, posts, seed)
    server = run_bench.Server(corpus, gzip=True)
    try:
        urls = [(feed["name"], server.origin + feed["path"])
                for feed in manifest["corpus"]["feeds"]]
        config = run_bench.write_aggregator_config(work, urls, concurrency=20, per_host=20)
        print(f"fetching {len(urls)} feeds once to publish a site …", flush=True)
        subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config), "fetch",
                        "--all"], cwd=work, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    finally:
        server.stop()
    return config


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve_load: `aggregator serve` exited with {process.returncode}")
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"serve_load: nothing answered at {url} within {seconds:.0f} s")


def run_wrk(url: str, *, threads: int, connections: int, duration: int,
            header: str | None) -> dict[str, str]:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if header:
        command += ["-H", header]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    figures = {"requests/s": re.search(r"Requests/sec:\s*([\d.]+)", out),
               "transfer/s": re.search(r"Transfer/sec:\s*(\S+)", out),
               "p50": re.search(r"(?m)^\s*50%\s+(\S+)", out),
               "p99": re.search(r"(?m)^\s*99%\s+(\S+)", out),
               "non-2xx/3xx": re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out),
               "errors": re.search(r"Socket errors:(.*)", out)}
    return {key: (match.group(1).strip() if match else "–") for key, match in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, help="serve the feeds of this config.toml")
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--posts", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--path", default="/feeds/all.atom")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("serve_load: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="aggregator-serve-load-") as tmp:
        work = Path(tmp)
        config = args.config.resolve() if args.config else build_site(
            work, args.feeds, args.posts, args.seed)
        port = _free_port()
        serving = _with_server_port(config, port, config.parent)
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(serving), "serve"],
            cwd=config.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}{args.path}"
            wait_until_up(url, process)
            status, headers, body = _get(url)
            etag = headers.get("ETag") or headers.get("Etag")
            if status != 200 or not etag:
                raise SystemExit(f"serve_load: {url} gave {status} without an ETag")
            again = _get(url, {"If-None-Match": etag})[0]
            print(f"{url}: {len(body):,} bytes, ETag {etag}, If-None-Match → {again}; "
                  f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s; "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
            rows = []
            for label, header, target in (("If-None-Match (304)", f"If-None-Match: {etag}",
                                           TARGET_304),
                                          ("full body (200)", None, TARGET_FULL)):
                figures = run_wrk(url, threads=args.threads, connections=args.connections,
                                  duration=args.duration, header=header)
                rows.append((label, figures, target))
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            serving.unlink(missing_ok=True)

    print(f"{'request':22} {'req/s':>10} {'p50':>9} {'p99':>9} {'transfer/s':>11} "
          f"{'non-2xx/3xx':>11}  target")
    for label, figures, target in rows:
        rate = float(figures["requests/s"]) if figures["requests/s"] != "–" else 0.0
        verdict = "met" if rate >= target else "MISSED"
        print(f"{label:22} {rate:10,.0f} {figures['p50']:>9} {figures['p99']:>9} "
              f"{figures['transfer/s']:>11} {figures['non-2xx/3xx']:>11}  >= {target:,} {verdict}")
        if figures["errors"] != "–":
            print(f"  socket errors: {figures['errors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
