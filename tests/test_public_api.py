"""The public surface: one door, sorted, complete, and typed."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys

import plumvoice_async
import plumvoice_async.testing


def test_all_is_sorted_and_names_only_existing_attributes():
    for module in (plumvoice_async, plumvoice_async.testing):
        names = [name for name in module.__all__ if name != "__version__"]
        assert names == sorted(names), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_every_public_attribute_is_in_all():
    for module in (plumvoice_async, plumvoice_async.testing):
        public = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and not isinstance(value, type(plumvoice_async))
        }
        assert public <= set(module.__all__), public - set(module.__all__)


def test_costly_names_load_only_when_asked_for():
    script = (
        "import sys, plumvoice_async\n"
        "costly = ('plumvoice_async._redis', 'plumvoice_async._sync', 'importlib.metadata',\n"
        "          'anyio.from_thread', 'redis')\n"
        "print(sorted(m for m in costly if m in sys.modules))\n"
        "from plumvoice_async import RedisGovernor, SyncPlumClient\n"
        "print(RedisGovernor.__name__, SyncPlumClient.__name__, plumvoice_async.__version__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded, names = result.stdout.splitlines()
    assert loaded == "[]"
    assert names.startswith("RedisGovernor SyncPlumClient ")
    assert set(plumvoice_async.__all__) <= set(dir(plumvoice_async))


def test_contract_names_are_exported():
    contract = {
        "PlumClient",
        "SyncPlumClient",
        "LocalGovernor",
        "Call",
        "CallPage",
        "CallEvent",
        "DetailedCall",
        "DetailedCallPage",
        "EventReport",
        "CallType",
        "Period",
        "PlumError",
        "InvalidParameterError",
        "APIError",
        "BadRequestError",
        "AuthenticationError",
        "NotFoundError",
        "MethodNotAllowedError",
        "RateLimitError",
        "ServerError",
        "DecodeError",
        "TransportError",
    }
    assert contract <= set(plumvoice_async.__all__)


def test_package_is_marked_typed():
    assert importlib.resources.files("plumvoice_async").joinpath("py.typed").is_file()


def test_error_hierarchy():
    assert issubclass(plumvoice_async.InvalidParameterError, ValueError)
    for name in (
        "BadRequestError",
        "AuthenticationError",
        "NotFoundError",
        "MethodNotAllowedError",
        "RateLimitError",
        "ServerError",
    ):
        assert issubclass(getattr(plumvoice_async, name), plumvoice_async.APIError)
    for name in (
        "APIError",
        "DecodeError",
        "TransportError",
        "InvalidParameterError",
        "GovernorUnavailableError",
    ):
        assert issubclass(getattr(plumvoice_async, name), plumvoice_async.PlumError)
