"""``python -m vistack.testing KIND DIR``: write a tiny offline model (tiny-mllama, tiny-llama, ...)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .tiny_classifier import build_tiny_prompt_guard
from .tiny_models import build_tiny_cross_encoder, build_tiny_llama, build_tiny_mllama

_BUILDERS = {
    "tiny-mllama": build_tiny_mllama,
    "tiny-llama": build_tiny_llama,
    "tiny-cross-encoder": build_tiny_cross_encoder,
    "tiny-prompt-guard": build_tiny_prompt_guard,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vistack.testing", description=__doc__)
    parser.add_argument("kind", choices=sorted(_BUILDERS), help="which tiny random model to build")
    parser.add_argument("dir", help="output directory (created if missing)")
    parser.add_argument("--quiet", action="store_true", help="print only the path")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    path = _BUILDERS[args.kind](args.dir)
    if not args.quiet:
        import sys

        print(f"built {args.kind} in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    print(Path(path).resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
