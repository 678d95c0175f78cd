"""The test MCP server, runnable from tests/: ``python tests/mcp_server.py --port N [--transport sse] ...``.

The implementation lives in ``vistack/testing/mcp_server.py`` so that the importable helper
``vistack.testing.mcp.run_mcp_server`` can find it from any rootdir or an installed package;
this file just runs it (by path, so torch is not imported via ``vistack.testing``).
"""

import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "vistack" / "testing" / "mcp_server.py"), run_name="__main__")
