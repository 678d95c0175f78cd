"""The benchmark corpora: real PDFs shipped by Debian packages, and helpers shared by
``ingest.py`` and ``retrieval.py``.

Two corpora, each a list of :class:`CorpusFile` entries:

* ``own`` (the default everywhere): 11 PDFs, 387 pages, from 9 Debian packages: two
  prose manuals (FASTA, 4ti2) and nine R package vignettes (statistics papers with
  tables, figures, code and formulas). ``retrieval_questions.jsonl`` asks about it;
  ingestion and search were tuned with it.
* ``heldout``: 11 other PDFs, 560 pages, from 10 other Debian packages: a compiler
  manual, a C library reference manual, a modelling-language reference, a file-format
  specification, four R vignettes, a Rcpp journal paper, beamer conference slides and
  a two-page reference card. ``heldout_questions.jsonl`` asks about it. It is never
  used for tuning (see benchmarks/README.md, "Held-out set").

The PDFs are read where Debian installs them; when one is missing,
:func:`corpus_files` prints the ``apt-get`` command that installs that corpus and
exits with status 2. A few packages ship their PDF gzip-compressed (``.pdf.gz``):
:attr:`CorpusFile.path` then decompresses it once into a cache directory
(``$XDG_CACHE_HOME/vistack-benchmarks``, default ``~/.cache/vistack-benchmarks``).

Nothing here talks to a vistack server.
"""

from __future__ import annotations

import gzip
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

CORPUS_NAMES = ("own", "heldout")


@dataclass(frozen=True)
class CorpusFile:
    name: str  # the file name, unique in its corpus (what questions cite)
    package: str  # the Debian package that installs it
    installed: Path  # where Debian installs it (a .pdf, or a .pdf.gz)
    what: str  # content, in a few words
    version: str = ""  # the Debian package version the questions were written against
    pages: int = 0  # its page count in that version

    @property
    def path(self) -> Path:
        """The readable PDF (a ``.pdf.gz`` is decompressed once into the cache directory)."""
        if self.installed.suffix != ".gz":
            return self.installed
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vistack-benchmarks"
        target = cache / self.name
        source = self.installed.stat()
        if not target.is_file() or target.stat().st_mtime < source.st_mtime:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".tmp{os.getpid()}")
            with gzip.open(self.installed, "rb") as src, tmp.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            os.utime(tmp, (source.st_mtime, source.st_mtime))
            tmp.replace(target)
        return target


_SITE = Path("/usr/lib/R/site-library")
_BASE = Path("/usr/lib/R/library")

CORPUS: tuple[CorpusFile, ...] = (
    CorpusFile("fasta_guide.pdf", "fasta3-doc", Path("/usr/share/doc/fasta3/fasta_guide.pdf"),
               "FASTA sequence comparison programs: user guide (prose manual, option tables)",
               "36.3.8i.14-Nov-2020-1", 37),
    CorpusFile("4ti2_manual.pdf", "4ti2-doc", Path("/usr/share/doc/4ti2/4ti2_manual.pdf"),
               "4ti2 algebraic/combinatorial toolbox: user manual (prose, input/output file listings)",
               "1.6.9+ds-8", 59),
    CorpusFile("zoo.pdf", "r-cran-zoo", _SITE / "zoo/doc/zoo.pdf",
               "zoo: S3 infrastructure for ordered observations (vignette, figures)", "1.8-11-1", 30),
    CorpusFile("sandwich.pdf", "r-cran-sandwich", _SITE / "sandwich/doc/sandwich.pdf",
               "sandwich: econometric computing with HC and HAC covariance estimators (vignette, tables, figures)",
               "3.0-2-1", 21),
    CorpusFile("sandwich-CL.pdf", "r-cran-sandwich", _SITE / "sandwich/doc/sandwich-CL.pdf",
               "sandwich: various versatile variances (clustered covariances; simulation figures, tables)",
               "3.0-2-1", 36),
    CorpusFile("strucchange-intro.pdf", "r-cran-strucchange", _SITE / "strucchange/doc/strucchange-intro.pdf",
               "strucchange: testing, monitoring and dating structural changes (vignette, figures)", "1.5-3-1", 17),
    CorpusFile("strucplot.pdf", "r-cran-vcd", _SITE / "vcd/doc/strucplot.pdf",
               "vcd: the strucplot framework for categorical data (mosaic/association plots, many figures)",
               "1:1.4-11-1", 48),
    CorpusFile("lmer.pdf", "r-cran-lme4", _SITE / "lme4/doc/lmer.pdf",
               "lme4: fitting linear mixed-effects models (long paper, tables, figures)", "1.1-31-1", 51),
    CorpusFile("xtableGallery.pdf", "r-cran-xtable", _SITE / "xtable/doc/xtableGallery.pdf",
               "xtable gallery: many rendered LaTeX tables", "1:1.8-4-2", 29),
    CorpusFile("timedep.pdf", "r-cran-survival", _BASE / "survival/doc/timedep.pdf",
               "survival: time-dependent covariates and coefficients (vignette, figures)", "3.5-3-1", 30),
    CorpusFile("compete.pdf", "r-cran-survival", _BASE / "survival/doc/compete.pdf",
               "survival: multi-state models and competing risks (vignette, figures, tables)", "3.5-3-1", 29),
)

HELDOUT: tuple[CorpusFile, ...] = (
    CorpusFile("sdccman.pdf", "sdcc-doc", Path("/usr/share/doc/sdcc-doc/sdccman.pdf.gz"),
               "SDCC small-device C compiler: user guide (options, memory models, ports, tables)",
               "4.2.0+dfsg-1", 134),
    CorpusFile("glpk.pdf", "glpk-doc", Path("/usr/share/doc/glpk-doc/glpk.pdf"),
               "GLPK reference manual: C API routines, parameter tables, file formats", "5.0-1", 177),
    CorpusFile("gmpl.pdf", "glpk-doc", Path("/usr/share/doc/glpk-doc/gmpl.pdf"),
               "GNU MathProg modelling language reference: syntax, operators, statements, tables",
               "5.0-1", 74),
    CorpusFile("srf_spec.pdf", "srf-doc", Path("/usr/share/doc/srf-doc/SRF_v_1_3_2_June_19th_2008-0001.pdf"),
               "SRF sequence read format specification v1.3 (field layouts, block types)", "0.1+dfsg-7", 23),
    CorpusFile("countreg.pdf", "r-cran-pscl", _SITE / "pscl/doc/countreg.pdf",
               "pscl: regression models for count data (coefficient tables, figures)", "1.5.5-1+b1", 25),
    CorpusFile("mob.pdf", "r-cran-partykit", _SITE / "partykit/doc/mob.pdf",
               "partykit: model-based recursive partitioning (tree figures, tables)", "1.2-16-1", 39),
    CorpusFile("diversity-vegan.pdf", "r-cran-vegan", _SITE / "vegan/doc/diversity-vegan.pdf",
               "vegan: diversity analysis in community ecology (figures, R output)", "2.6-4+dfsg-1", 12),
    CorpusFile("generalsiminf.pdf", "r-cran-multcomp", _SITE / "multcomp/doc/generalsiminf.pdf",
               "multcomp: simultaneous inference in general parametric models (tables, figures)",
               "1.4-22-1", 24),
    CorpusFile("Rcpp-jss-2011.pdf", "r-cran-rcpp", _SITE / "Rcpp/doc/Rcpp-jss-2011.pdf",
               "Rcpp: seamless R and C++ integration (journal paper: code, timing table)", "1.0.10-1", 19),
    CorpusFile("beamer-conference-talk.pdf", "texlive-latex-recommended-doc",
               Path("/usr/share/doc/texlive-doc/latex/beamer/beamerexample-conference-talk.pdf"),
               "beamer example conference talk: 31 slides (bullets, a table, diagrams)", "2022.20230122-3", 31),
    CorpusFile("debian-refcard.pdf", "debian-refcard", Path("/usr/share/doc/debian-refcard/refcard-en-a4.pdf.gz"),
               "Debian reference card, English A4: two landscape pages of commands in boxes", "12.0", 2),
)

CORPORA: dict[str, tuple[CorpusFile, ...]] = {"own": CORPUS, "heldout": HELDOUT}


def packages(corpus: str = "own") -> list[str]:
    """The Debian packages of a corpus, in order, without repeats."""
    return list(dict.fromkeys(f.package for f in CORPORA[corpus]))


def install_command(corpus: str = "own") -> str:
    return "apt-get update && apt-get install -y --no-install-recommends " + " ".join(packages(corpus))


PACKAGES = tuple(packages("own"))
INSTALL_COMMAND = install_command("own")


def corpus_files(limit: int | None = None, corpus: str = "own") -> list[CorpusFile]:
    """The files of a corpus (``own`` or ``heldout``) present on disk; prints the install
    command and exits 2 if any is missing."""
    files = CORPORA[corpus]
    missing = [f for f in files if not f.installed.is_file()]
    if missing:
        print(f"benchmark corpus {corpus!r} missing:", file=sys.stderr)
        for f in missing:
            print(f"  {f.installed}  (Debian package {f.package})", file=sys.stderr)
        print(f"install it with (as root):\n  {install_command(corpus)}", file=sys.stderr)
        raise SystemExit(2)
    return list(files[:limit] if limit else files)


def by_name(corpus: str = "own") -> dict[str, CorpusFile]:
    return {f.name: f for f in CORPORA[corpus]}


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
