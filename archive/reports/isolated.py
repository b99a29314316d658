"""Report text extraction in a child process, with a deadline and a memory cap.

PDF, Word and RTF parsers are pure Python working on hostile bytes: one file can keep
pdfminer busy on a single page for minutes (the per-page deadline of
:func:`archive.reports.extract.extract_text` is only checked between pages), exhaust memory,
or crash the interpreter. In a crawl that work would also stop the reactor: every other
download waits meanwhile, and a long wait can turn into false ``timeout`` states. So the crawl
pipeline and ``xxgk ingest-report`` extract these formats with :func:`extract_isolated`:

* a new interpreter (``python -m archive.reports.isolated``) reads the file from stdin and
  writes the :class:`~archive.reports.extract.Extracted` fields as JSON to stdout;
* it gets ``timeout`` seconds (``XXGK_EXTRACT_TIMEOUT``, default 60) and an address-space
  limit (``XXGK_EXTRACT_MEMORY_MB``, default 2048); past either it is killed and the report
  is recorded with the error ("pdf extraction timed out after 60 s", "... crashed"), never
  lost and never fatal to the crawl;
* the child also ends itself at the deadline (``SIGALRM``), so a crawl killed while it
  waits leaves no parser running, and it runs at a lower CPU priority than the crawl;
* HTML and plain text (lxml and the codecs, already capped) are extracted in process.

Run from a thread (the crawl pipeline has ``XXGK_EXTRACT_WORKERS``, default 2, for this), the
wait costs the crawl nothing: the child runs on another core.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import struct
import subprocess
import sys

from archive.reports.extract import Extracted, detect_format, extract_text

#: Formats parsed by pure-Python code on untrusted bytes: extracted in a child process.
ISOLATED_FORMATS = frozenset({"pdf", "doc", "docx", "rtf"})
DEFAULT_TIMEOUT = float(os.environ.get("XXGK_EXTRACT_TIMEOUT", "60"))
DEFAULT_MEMORY_MB = int(os.environ.get("XXGK_EXTRACT_MEMORY_MB", "2048"))
_HEADER = struct.Struct(">I")
#: The child: niced before it imports anything (background work: the crawl comes first),
#: then ``python -m archive.reports.isolated``.
_CHILD = ("import os, runpy\ntry:\n    os.nice(10)\nexcept OSError:\n    pass\n"
          "runpy.run_module('archive.reports.isolated', run_name='__main__', alter_sys=True)\n")


def _isolated_format(data: bytes, filename: str | None, content_type: str | None) -> str | None:
    """The format of ``data`` when it is one read in a child process, else None."""
    if not data or data.isspace():  # empty: extract_text says so at once
        return None
    fmt = detect_format(data, filename, content_type)
    return fmt if fmt in ISOLATED_FORMATS else None


def needs_isolation(data: bytes, filename: str | None = None, content_type: str | None = None) -> bool:
    """Whether :func:`extract_isolated` would extract ``data`` in a child process."""
    return _isolated_format(data, filename, content_type) is not None


def extract_isolated(data: bytes, filename: str | None = None, content_type: str | None = None, *,
                     timeout: float | None = None, memory_mb: int | None = None) -> Extracted:
    """:func:`~archive.reports.extract.extract_text` in a child process for binary formats;
    never raises, never takes longer than ``timeout`` (plus start-up)."""
    fmt = _isolated_format(data, filename, content_type)
    if fmt is None:
        return extract_text(data, filename, content_type)
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    header = json.dumps({"filename": filename, "content_type": content_type, "timeout": timeout,
                         "memory_mb": DEFAULT_MEMORY_MB if memory_mb is None else memory_mb}).encode()
    try:
        result = subprocess.run([sys.executable, "-c", _CHILD], input=_HEADER.pack(len(header)) + header + data,
                                capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Extracted("", fmt, f"{fmt} extraction timed out after {timeout:g} s")
    except OSError as exc:
        return Extracted("", fmt, f"{fmt} extraction could not start: {exc}"[:300])
    if result.returncode != 0:
        reason = (f"killed by signal {-result.returncode}" if result.returncode < 0
                  else f"exit status {result.returncode}")
        last = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if "MemoryError" in last[0]:
            reason = "out of memory"
        return Extracted("", fmt, f"{fmt} extraction crashed ({reason})")
    try:
        fields = json.loads(result.stdout)
        return Extracted(**fields)
    except (ValueError, TypeError) as exc:
        return Extracted("", fmt, f"{fmt} extraction returned garbage: {exc}"[:300])


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # no such limit here: the deadline still holds
        pass


def _limit_time(seconds: float) -> None:
    """End this process past its deadline even if nobody is waiting any more (the crawl that
    started it was killed): SIGALRM's default action terminates, also inside C code."""
    if seconds > 0 and hasattr(signal, "alarm"):
        signal.alarm(math.ceil(seconds) + 1)


def main() -> int:
    raw = sys.stdin.buffer.read()
    (size,) = _HEADER.unpack_from(raw)
    request = json.loads(raw[_HEADER.size:_HEADER.size + size])
    _limit_time(float(request.get("timeout") or 0))
    _limit_memory(int(request.get("memory_mb") or 0))
    extracted = extract_text(raw[_HEADER.size + size:], request.get("filename"), request.get("content_type"))
    sys.stdout.buffer.write(json.dumps(dataclasses.asdict(extracted), ensure_ascii=False).encode("utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
