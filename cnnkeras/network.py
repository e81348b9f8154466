"""Why a download failed: the network, the installation, or something else.

Offline, a dataset or weights download fails deep inside tensorflow-datasets or
Keras, and the exception a user sees wraps the real cause (``requests`` wraps
``urllib3``, which wraps ``socket.gaierror``; Keras raises a bare ``Exception``
over a ``URLError``). ``network_cause`` walks that chain, so only a failure of
the network is reported as one, and ``download_error`` words the one line.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
from typing import Iterator, Optional

INSTALL_HINT = ("This is an installation problem, not a network one: reinstall with "
                "`make setup` (pip install -r requirements.txt).")


def chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and every exception it was raised from or while handling, outermost first."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def network_types() -> tuple:
    """Exception types that mean a download could not reach or read its server.

    ``requests``, ``urllib3`` and tensorflow-datasets are consulted only when already
    imported: an exception of theirs cannot exist otherwise.
    """
    types = [socket.gaierror, socket.herror, ConnectionError, TimeoutError,
             urllib.error.URLError]
    for module, attributes in (("requests", "exceptions.RequestException"),
                               ("urllib3", "exceptions.HTTPError"),
                               ("tensorflow_datasets", "download.DownloadError")):
        found = sys.modules.get(module)
        for attribute in attributes.split("."):
            found = getattr(found, attribute, None)
        if isinstance(found, type):
            types.append(found)
    return tuple(types)


def network_cause(err: BaseException) -> Optional[BaseException]:
    """The innermost network error in ``err``'s chain (the most specific), else None."""
    types = network_types()
    causes = [e for e in chain(err) if isinstance(e, types)]
    return causes[-1] if causes else None


def describe(err: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def download_error(failed: str, err: BaseException, *, instead: str) -> ValueError:
    """One line for a failed download: ``failed`` says what failed, ``instead`` what to use.

    A network failure says that the download needs internet; a module missing from
    the environment says it is an installation problem; anything else is shown as is.
    """
    cause = network_cause(err)
    if cause is not None:
        return ValueError(f"{failed}: the download needs internet and failed "
                          f"({describe(cause)}). Without internet, {instead}.")
    missing = next((e for e in chain(err) if isinstance(e, ImportError)), None)
    if missing is not None:
        return ValueError(f"{failed}: {describe(missing)}. {INSTALL_HINT}")
    return ValueError(f"{failed}: {describe(err)}. Alternatively, {instead}.")
