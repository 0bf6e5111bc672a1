"""The first run on a GPU machine, in one call of at most ~8 minutes, with no network.

    python3 benchmarks/gpu_check.py --out /tmp/gpu_check                 # a node with a CUDA torch
    python3 benchmarks/gpu_check.py --out $OUT --wheels shared/wheels    # + pure-Python / manylinux wheels
    python3 benchmarks/gpu_check.py --out /tmp/dry --dry                 # tiny sizes: the suite runs this on CPU

What it expects of the machine: a ``python3`` that already has a CUDA build of torch (cluster
nodes and cloud GPU images usually have one, with Lightning, transformers, torchmetrics, einops and
TensorBoard). It installs nothing from the network: packages the project needs and ``python3``
lacks (typically ``av``, ``jsonargparse`` with ``docstring-parser`` and ``typeshed-client``,
``litdata``, ``simplejpeg``) are installed from the wheel folder ``--wheels`` with ``pip
--no-index --no-deps`` into ``--target`` (default ``<out>/site``), and the project itself is used
from ``src/`` on ``sys.path``, not installed. A package missing from both is named in the report and
the stages that need it are skipped.

One process runs ten stages (``benchmarks/gpu_stages.py`` says what each measures), each under its
own time limit and all under ``--budget`` seconds. Each stage's result is appended to
``<out>/gpu_check.md`` and ``<out>/gpu_check.json`` as soon as it ends, so a run cut short keeps
everything measured before the cut. A stage that cannot run here (no CUDA device, no bf16, a
missing package) is recorded as ``skipped: why``; one that runs out of memory or time, or fails, is
recorded as such, and the next stage runs. The console shows one line per stage, never a traceback
(the JSON keeps the failing stage's traceback).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# import name -> pip name, for what the stages import (torch is the machine's own, never installed)
NEEDED = {"lightning": "lightning", "transformers": "transformers", "torchmetrics": "torchmetrics",
          "einops": "einops", "yaml": "pyyaml", "safetensors": "safetensors", "tensorboard": "tensorboard",
          "av": "av", "jsonargparse": "jsonargparse", "docstring_parser": "docstring-parser",
          "typeshed_client": "typeshed-client", "litdata": "litdata", "simplejpeg": "simplejpeg",
          # what `import litdata` imports (0.2.x), whether or not it reads from object storage
          "boto3": "boto3", "botocore": "botocore", "s3transfer": "s3transfer", "jmespath": "jmespath",
          "dateutil": "python-dateutil", "requests": "requests", "urllib3": "urllib3", "idna": "idna",
          "certifi": "certifi", "charset_normalizer": "charset-normalizer"}


def missing_modules(names=NEEDED) -> list[str]:
    """The modules of ``names`` that do not import (found but broken counts as missing)."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - any failure to import means the stages that need it cannot run
            missing.append(name)
    return missing


def install_from_wheels(missing: list[str], wheels: str | None, target: Path) -> tuple[list[str], str]:
    """Install the pip packages of ``missing`` from the folder ``wheels`` (no index, no dependencies:
    the machine's own torch and friends must stay as they are) into ``target``, which joins
    ``sys.path``. Returns what is still missing and pip's last words when it failed."""
    if not missing:
        return [], ""
    if not wheels:
        return missing, "no --wheels folder given"
    if not Path(wheels).is_dir():
        return missing, f"--wheels {wheels}: not a folder"
    target.mkdir(parents=True, exist_ok=True)
    note = ""
    for name in missing:  # one at a time: a package absent from the folder does not stop the others
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                               "--disable-pip-version-check", "--find-links", wheels, "--target", str(target),
                               NEEDED.get(name, name)], capture_output=True, text=True)
        if done.returncode:
            lines = (done.stderr or done.stdout).strip().splitlines()
            note += f"{NEEDED.get(name, name)}: {lines[-1] if lines else 'pip failed'}; "
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    return [name for name in missing if importlib.util.find_spec(name) is None], note.rstrip("; ")


class StageTimeout(BaseException):
    """A ``BaseException``: library code that catches ``Exception`` (a compiler wrapping errors, a
    callback guarding a drawing) cannot swallow it."""


@contextmanager
def time_limit(seconds: float):
    """Raise :class:`StageTimeout` in the main thread after ``seconds``, and every 10 s after that
    until the stage ends (in case code swallowed the first), between Python bytecodes: a kernel
    already queued on the GPU still finishes."""
    def expire(signum, frame):
        raise StageTimeout(f"over its {seconds:.0f} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01), 10.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Report:
    """``gpu_check.md`` (appended stage by stage) and ``gpu_check.json`` (rewritten, atomically)."""

    def __init__(self, out: Path, header: list[str]):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.records: list[dict] = []
        (out / "gpu_check.md").write_text("\n".join(header) + "\n")
        self._write_json()

    def add(self, record: dict) -> None:
        self.records.append(record)
        lines = ["", f"## {record['stage']}. {record['title']} — {record['status']} ({record['seconds']:.1f} s)", ""]
        if record.get("why"):
            lines += [f"*{record['status']}: {record['why']}*", ""]
        lines += record.get("lines", [])
        with open(self.out / "gpu_check.md", "a") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._write_json()

    def _write_json(self) -> None:
        partial = self.out / "gpu_check.json.partial"
        partial.write_text(json.dumps({"stages": self.records}, indent=1, default=str))
        os.replace(partial, self.out / "gpu_check.json")


def status_of(exc: BaseException) -> str:
    if type(exc).__name__ == "Skip":  # gpu_stages.Skip
        return "skipped"
    if isinstance(exc, StageTimeout):
        return "timed out"
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return "out of memory"
    return "failed"


def run_stages(stages, ctx, report: Report, deadline: float, only: set[int] | None, order=None) -> None:
    """Run ``stages`` (numbered from 1) in ``order`` (default: their numbers)."""
    for number in order or range(1, len(stages) + 1):
        title, limit, function = stages[number - 1]
        if only and number not in only:
            continue
        left = deadline - time.monotonic()
        start = time.monotonic()
        record = {"stage": number, "title": title, "status": "ok", "why": "", "results": {}, "lines": []}
        try:
            if left < 5:
                raise StageTimeout(f"not started: no time left in the {ctx.budget:.0f} s budget")
            with time_limit(min(ctx.limits.get(number, limit), left)):
                results, lines = function(ctx)
            record["results"], record["lines"] = results, lines
            ctx.results[number] = results
        except BaseException as exc:  # noqa: BLE001 - every stage ends in a record, the next one runs
            if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "SIGTERMException":
                raise  # Ctrl-C, or the outer `timeout` (Lightning turns SIGTERM into SIGTERMException)
            record["status"] = status_of(exc)
            record["why"] = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            if record["status"] in ("failed", "out of memory"):
                record["traceback"] = traceback.format_exc()
            ctx.results[number] = {}
        finally:
            ctx.cleanup()
        record["seconds"] = time.monotonic() - start
        report.add(record)
        print(f"[{time.monotonic() - ctx.started:5.0f} s] stage {number} {title}: {record['status']}"
              + (f" ({record['why']})" if record["why"] else ""), flush=True)


def parse_limits(items: list[str]) -> dict[int, float]:
    limits = {}
    for item in items:
        stage, _, seconds = item.partition("=")
        if not (stage.isdigit() and seconds.replace(".", "", 1).isdigit()):
            raise SystemExit(f"gpu_check: --limit {item!r}: expected STAGE=SECONDS, e.g. 6=90")
        limits[int(stage)] = float(seconds)
    return limits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for gpu_check.md / gpu_check.json (created)")
    parser.add_argument("--wheels", help="folder of wheels for the packages python3 lacks (installed --no-index)")
    parser.add_argument("--target", help="where those wheels are installed (default: a temporary folder)")
    parser.add_argument("--budget", type=float, default=420,
                        help="seconds for all stages together (the installs and the exit come on top)")
    parser.add_argument("--dry", action="store_true",
                        help="tiny sizes (a tiny CLIP, a few clips): the code paths in seconds, on any device")
    parser.add_argument("--only", type=int, nargs="*", help="run only these stage numbers")
    parser.add_argument("--limit", nargs="*", default=[], help="STAGE=SECONDS overrides of a stage's time limit")
    args = parser.parse_args(argv)
    started = time.monotonic()
    out = Path(args.out).resolve()
    os.chdir(ROOT)  # the recipes name files relative to the repository
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")  # no PyPI look-up (30 s stalls without network)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # before torch starts CUDA: fewer fragmentation OOMs when the batch probe grows the batch
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

    header = ["# GPU check", "", f"Command: `python3 benchmarks/gpu_check.py {' '.join(sys.argv[1:] if argv is None else argv)}`. "
              f"Started {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {platform.node()}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPU cores. What each stage measures: `benchmarks/gpu_stages.py`."]
    if importlib.util.find_spec("torch") is None:
        report = Report(out, header + ["", "**python3 has no torch**: install the machine's CUDA build first "
                                           "(docs/gpu.md); nothing was measured."])
        print("gpu_check: python3 has no torch; nothing measured", flush=True)
        return
    target = Path(args.target or tempfile.mkdtemp(prefix="gpu_check_site_"))  # not under --out: it travels back
    missing, note = install_from_wheels(missing_modules(), args.wheels, target)
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    header += ["", "Packages: " + ("all present" if not missing else
                                   f"**missing: {', '.join(NEEDED[m] for m in missing)}** ({note}); "
                                   "stages that need them are skipped")]
    report = Report(out, header)

    try:
        import gpu_stages  # after the wheels and src/ joined sys.path
    except Exception as exc:  # noqa: BLE001 - said in the report, not as a traceback
        with open(out / "gpu_check.md", "a") as f:
            f.write(f"\n**The stages could not be loaded**: {type(exc).__name__}: {exc}\n")
        print(f"gpu_check: the stages could not be loaded: {type(exc).__name__}: {exc}", flush=True)
        return
    ctx = gpu_stages.Context(dry=args.dry, out=out, missing=set(missing), budget=args.budget,
                             limits=parse_limits(args.limit), started=started)
    run_stages(gpu_stages.STAGES, ctx, report, started + args.budget, set(args.only or []), gpu_stages.RUN_ORDER)
    print(f"gpu_check: {time.monotonic() - started:.0f} s; report in {out / 'gpu_check.md'}", flush=True)


if __name__ == "__main__":
    main()
