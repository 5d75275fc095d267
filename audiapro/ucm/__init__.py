"""Grandstream CloudUCM / UCM63xx access: API client, cdrapi parsing, PBX-local time windows."""

from audiapro.ucm.client import UcmClient, UcmConnection
from audiapro.ucm.errors import (
    UcmApiError,
    UcmAuthError,
    UcmConfigError,
    UcmError,
    UcmHttpError,
    UcmLoginBannedError,
    UcmPageCapExceeded,
    UcmPagingError,
    UcmPermissionError,
    UcmRecordingError,
    UcmRecordingNotFound,
    UcmResponseError,
    UcmSessionError,
    UcmThrottledError,
    UcmTlsError,
    UcmTransportError,
    UcmUnknownUserError,
    UcmWrongPasswordError,
)
from audiapro.ucm.records import CdrPage, MalformedItem, parse_recordfiles, recording_basename
from audiapro.ucm.retry import RetryPolicy
from audiapro.ucm.timewindow import LocalWindow, local_window

__all__ = [
    "CdrPage",
    "LocalWindow",
    "MalformedItem",
    "RetryPolicy",
    "UcmApiError",
    "UcmAuthError",
    "UcmClient",
    "UcmConfigError",
    "UcmConnection",
    "UcmError",
    "UcmHttpError",
    "UcmLoginBannedError",
    "UcmPageCapExceeded",
    "UcmPagingError",
    "UcmPermissionError",
    "UcmRecordingError",
    "UcmRecordingNotFound",
    "UcmResponseError",
    "UcmSessionError",
    "UcmThrottledError",
    "UcmTlsError",
    "UcmTransportError",
    "UcmUnknownUserError",
    "UcmWrongPasswordError",
    "local_window",
    "parse_recordfiles",
    "recording_basename",
]
