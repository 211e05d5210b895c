"""bias lab: find where social bias lives inside transformer language models, and switch it off."""

__version__ = "0.1.0"

from .errors import BiasLabError  # noqa: E402

__all__ = ["BiasLabError", "__version__"]
