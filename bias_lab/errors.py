"""User-facing errors.

Every error a person can cause with bad input is a ``BiasLabError`` whose message is one line that
names the bad value and what would be valid. The CLI prints it and exits 2; the app shows it with
``st.error``; neither shows a traceback.
"""


class BiasLabError(ValueError):
    """A problem with the user's input or environment, explained in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ModelLoadError(BiasLabError):
    """The model could not be loaded (not found, offline, unsupported)."""


class UnsupportedModelError(ModelLoadError):
    """The model's architecture has no entry in the family table."""


class InterventionError(BiasLabError):
    """An intervention spec names a site the model does not have, or is malformed."""


class RunStoreError(BiasLabError):
    """A run id or run folder that does not exist or cannot be used."""


class Cancelled(Exception):
    """Raised inside a long computation when its cancel token was triggered."""
