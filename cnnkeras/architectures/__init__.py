"""Architecture families; importing this package registers every builder."""

from cnnkeras.architectures import lecture  # noqa: F401
