"""The benchmark corpus: real PDFs shipped by Debian packages, and helpers shared by
``ingest.py`` and ``retrieval.py``.

The corpus is 11 PDFs (387 pages) from 9 Debian packages: two prose manuals
(FASTA, 4ti2) and nine R package vignettes (statistics papers with tables,
figures, code and formulas). They are read where Debian installs them; when one
is missing, :func:`corpus_files` prints the ``apt-get`` command that installs
them and exits non-zero.

Nothing here talks to a vistack server.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

PACKAGES = (
    "fasta3-doc",
    "4ti2-doc",
    "r-cran-zoo",
    "r-cran-sandwich",
    "r-cran-strucchange",
    "r-cran-vcd",
    "r-cran-lme4",
    "r-cran-xtable",
    "r-cran-survival",
)

INSTALL_COMMAND = "apt-get update && apt-get install -y --no-install-recommends " + " ".join(PACKAGES)


@dataclass(frozen=True)
class CorpusFile:
    name: str  # the file name, unique in the corpus (what questions cite)
    package: str
    path: Path
    what: str


_SITE = Path("/usr/lib/R/site-library")
_BASE = Path("/usr/lib/R/library")

CORPUS: tuple[CorpusFile, ...] = (
    CorpusFile("fasta_guide.pdf", "fasta3-doc", Path("/usr/share/doc/fasta3/fasta_guide.pdf"),
               "FASTA sequence comparison programs: user guide (prose manual, option tables)"),
    CorpusFile("4ti2_manual.pdf", "4ti2-doc", Path("/usr/share/doc/4ti2/4ti2_manual.pdf"),
               "4ti2 algebraic/combinatorial toolbox: user manual (prose, input/output file listings)"),
    CorpusFile("zoo.pdf", "r-cran-zoo", _SITE / "zoo/doc/zoo.pdf",
               "zoo: S3 infrastructure for ordered observations (vignette, figures)"),
    CorpusFile("sandwich.pdf", "r-cran-sandwich", _SITE / "sandwich/doc/sandwich.pdf",
               "sandwich: econometric computing with HC and HAC covariance estimators (vignette, tables, figures)"),
    CorpusFile("sandwich-CL.pdf", "r-cran-sandwich", _SITE / "sandwich/doc/sandwich-CL.pdf",
               "sandwich: various versatile variances (clustered covariances; simulation figures, tables)"),
    CorpusFile("strucchange-intro.pdf", "r-cran-strucchange", _SITE / "strucchange/doc/strucchange-intro.pdf",
               "strucchange: testing, monitoring and dating structural changes (vignette, figures)"),
    CorpusFile("strucplot.pdf", "r-cran-vcd", _SITE / "vcd/doc/strucplot.pdf",
               "vcd: the strucplot framework for categorical data (mosaic/association plots, many figures)"),
    CorpusFile("lmer.pdf", "r-cran-lme4", _SITE / "lme4/doc/lmer.pdf",
               "lme4: fitting linear mixed-effects models (long paper, tables, figures)"),
    CorpusFile("xtableGallery.pdf", "r-cran-xtable", _SITE / "xtable/doc/xtableGallery.pdf",
               "xtable gallery: many rendered LaTeX tables"),
    CorpusFile("timedep.pdf", "r-cran-survival", _BASE / "survival/doc/timedep.pdf",
               "survival: time-dependent covariates and coefficients (vignette, figures)"),
    CorpusFile("compete.pdf", "r-cran-survival", _BASE / "survival/doc/compete.pdf",
               "survival: multi-state models and competing risks (vignette, figures, tables)"),
)


def corpus_files(limit: int | None = None) -> list[CorpusFile]:
    """The corpus files present on disk; prints the install command and exits 2 if any is missing."""
    missing = [f for f in CORPUS if not f.path.is_file()]
    if missing:
        print("benchmark corpus missing:", file=sys.stderr)
        for f in missing:
            print(f"  {f.path}  (Debian package {f.package})", file=sys.stderr)
        print(f"install it with (as root):\n  {INSTALL_COMMAND}", file=sys.stderr)
        raise SystemExit(2)
    return list(CORPUS[:limit] if limit else CORPUS)


def by_name() -> dict[str, CorpusFile]:
    return {f.name: f for f in CORPUS}


def page_texts(path: Path) -> list[str]:
    """``page.get_text()`` of every page (index 0 is page 1)."""
    import pymupdf

    with pymupdf.open(path) as doc:
        return [page.get_text() for page in doc]


def page_count(path: Path) -> int:
    import pymupdf

    with pymupdf.open(path) as doc:
        return doc.page_count


_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase, ligatures and dashes unified, whitespace collapsed: for evidence matching."""
    text = (text.replace("\ufb01", "fi").replace("\ufb02", "fl").replace("\ufb00", "ff")
            .replace("\ufb03", "ffi").replace("\ufb04", "ffl").replace("\u2212", "-").replace("\u2013", "-")
            .replace("\u2014", "-").replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"'))
    # words hyphenated at a line end: "estima-\ntors" -> "estimators"
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)
    return _SPACE.sub(" ", text).strip().lower()


def vocabulary(texts: list[str], min_len: int = 3) -> list[str]:
    """Distinct words of the corpus, for synthetic chunks."""
    words = {w for t in texts for w in re.findall(r"[A-Za-z][A-Za-z\-]+", t) if len(w) >= min_len}
    return sorted(words)


def machine() -> str:
    """One line: CPU model, cores usable by this process, memory, date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f"GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{cpu}, {cores} cores{mem}, {gpu}, Python {platform.python_version()}, {date.today().isoformat()}"


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1])."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def document_distribution(state_dir: Path, name: str = "bench", **vector_stores) -> dict:
    """A distribution with files, embedded Chroma and MiniLM embeddings only (no LLM to load)."""
    return {
        "version": 2,
        "distro_name": name,
        "apis": ["inference", "files", "vector_io"],
        "providers": {
            "inference": [{"provider_id": "sentence-transformers", "provider_type": "inline::sentence-transformers",
                           "config": {"device": "cpu"}}],
            "vector_io": [{"provider_id": "chromadb", "provider_type": "inline::chromadb", "config": {}}],
            "files": [{"provider_id": "localfs", "provider_type": "inline::localfs",
                       "config": {"max_file_bytes": 64 * 1024 * 1024}}],
        },
        "models": [{"model_id": "all-MiniLM-L6-v2", "provider_id": "sentence-transformers",
                    "model_type": "embedding", "metadata": {"embedding_dimension": 384}}],
        "vector_stores": {"default_provider_id": "chromadb",
                          "default_embedding_model": "sentence-transformers/all-MiniLM-L6-v2", **vector_stores},
        "storage": {"state_dir": str(state_dir)},
        "server": {"max_request_bytes": 256 * 1024 * 1024},
    }
