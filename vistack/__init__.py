"""vistack: self-hosted visual document intelligence on Llama 3.2 Vision, Llama Stack-compatible."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("vistack")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"
