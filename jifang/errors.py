"""The one exception hierarchy of jifang. Every error a user can cause or meet derives from JifangError and
carries a message that says what is wrong and what to do about it."""

from __future__ import annotations


class JifangError(Exception):
    """Base of every error jifang raises on purpose."""


class ConfigError(JifangError):
    """The configuration file or an environment override is invalid (CLI exit code 2)."""


class CatalogError(JifangError):
    """The catalog database cannot be reached or is inconsistent."""


class StoreError(JifangError):
    """The object store failed an operation."""


class StoreUnavailableError(StoreError):
    """The object store cannot be reached (network, DNS, TLS, credentials)."""


class ObjectLockedError(StoreError):
    """A delete or overwrite was refused because the object is under retention or legal hold."""


class RetentionShortenError(StoreError):
    """A request would shorten an object's retention; jifang never issues one."""


class ObjectConflictError(StoreError):
    """An object with the same key but different content already exists."""


class BucketNotLockedError(StoreError):
    """A bucket exists without object lock, so retention floors cannot be enforced by the store."""


class CameraError(JifangError):
    """A camera or its stream misbehaves."""


class CameraUnauthorizedError(CameraError):
    """The camera answered 401: wrong user name or password."""


class CameraUnreachableError(CameraError):
    """The camera's RTSP port does not answer."""


class CameraStreamNotFoundError(CameraError):
    """The camera answered 404 for the RTSP path."""


class CameraTimeoutError(CameraUnreachableError):
    """The camera accepted the connection but did not answer in time."""


class NotOnvifError(CameraError):
    """Something answers at the address, but it does not speak ONVIF."""


class NoMediaProfileError(CameraError):
    """The camera speaks ONVIF but offers no media profile with a video stream."""


class CameraClockSkewError(CameraError):
    """The camera's clock is so far off that it rejects authentication tokens even with the offset applied."""


class ModelError(JifangError):
    """A recognition model is missing, incomplete or fails its checksum; the message names the
    `jifang models fetch` command that fixes it (CLI exit code 2)."""


class SegmentInvalidError(JifangError):
    """A recorded segment failed validation (empty, undecodable, no video)."""


class ManagedByFileError(ConfigError):
    """An edit of a registry object that the configuration file declares (the file would overwrite it)."""


class SpoolInUseError(ConfigError):
    """Another running agent holds the spool folder (each agent needs its own)."""
