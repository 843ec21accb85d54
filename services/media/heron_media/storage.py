"""Where files' bytes live: a local directory, or an S3-compatible bucket through boto3.

Both are blocking (file I/O, boto3), so every call runs on one bounded thread pool
(`HERON_MEDIA_STORAGE_THREADS`), never on the event loop. boto3 was chosen over aiobotocore:
it is the library AWS maintains, its thread-safe client shares one connection pool across the
threads, and the pool bounds how much storage work runs at once.

A variant of a file is stored beside it, under `beside(key, name)`; deleting a file's key
removes everything beside it too.

Objects are written through a `Writer`, which makes them appear only on `commit()`:
- local: bytes go to `<dir>/.partial/<key>`, which `commit()` renames into place;
- S3: up to one part (`HERON_MEDIA_PART_SIZE_BYTES`) is held in memory; a file larger than
  that becomes a multipart upload whose id is reported (`on_multipart`) before the first part
  goes up, so a reaper can abort it if the upload never completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from heron_common.errors import Unavailable

from heron_media.settings import MediaSettings

READ_CHUNK = 256 * 1024
T = TypeVar("T")


def beside(key: str, name: str) -> str:
    """The key of an object kept with the file stored under `key` (a variant of it)."""
    return f"{key}.v/{name}"


class Writer(Protocol):
    async def write(self, chunk: bytes) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class Storage(Protocol):
    name: str

    async def start(self) -> None: ...
    def writer(self, key: str, on_multipart: Callable[[str], Awaitable[None]]) -> Writer: ...
    def read(self, key: str, offset: int, length: int) -> AsyncIterator[bytes]: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str, multipart_id: str | None = None) -> None: ...
    async def close(self) -> None: ...


class _Pool:
    """The bounded thread pool every blocking storage call runs on."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="heron-media-storage")

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        # In the caller's context (as asyncio.to_thread does): its request id and its trace
        # span reach what the call logs and the S3 requests it makes.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, context.run, function, *args
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


# -- local ---------------------------------------------------------------------------------


class LocalStorage:
    name = "local"

    def __init__(self, root: Path, threads: int) -> None:
        self.root = root
        self.partial = root / ".partial"
        self.pool = _Pool(threads)

    def path(self, key: str) -> Path:
        # Keys are the service's own hex ids; two levels of fan-out keep directories small.
        return self.root / key[:2] / key[2:4] / key

    async def start(self) -> None:
        def prepare() -> None:
            self.partial.mkdir(parents=True, exist_ok=True)

        await self.pool.run(prepare)

    def writer(self, key: str, on_multipart: Callable[[str], Awaitable[None]]) -> Writer:
        return _LocalWriter(self, key)

    async def read(self, key: str, offset: int, length: int) -> AsyncIterator[bytes]:
        handle = await self.pool.run(_open_at, self.path(key), offset)
        try:
            left = length
            while left > 0:
                chunk = await self.pool.run(handle.read, min(READ_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            await self.pool.run(handle.close)

    async def exists(self, key: str) -> bool:
        return await self.pool.run(self.path(key).exists)

    async def delete(self, key: str, multipart_id: str | None = None) -> None:
        def remove() -> None:
            for path in (self.path(key), self.partial / _flat(key)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            shutil.rmtree(self.path(beside(key, "")), ignore_errors=True)

        await self.pool.run(remove)

    async def close(self) -> None:
        self.pool.close()


def _flat(key: str) -> str:
    """A key as one file name (a variant's key has a folder in it)."""
    return key.replace("/", "~")


def _open_at(path: Path, offset: int) -> Any:
    handle = path.open("rb")
    handle.seek(offset)
    return handle


class _LocalWriter:
    def __init__(self, storage: LocalStorage, key: str) -> None:
        self.storage = storage
        self.key = key
        self.temp = storage.partial / _flat(key)
        self._handle: Any = None

    async def write(self, chunk: bytes) -> None:
        if self._handle is None:
            self._handle = await self.storage.pool.run(self.temp.open, "xb")
        await self.storage.pool.run(self._handle.write, chunk)

    async def commit(self) -> None:
        final = self.storage.path(self.key)

        def finish() -> None:
            if self._handle is None:
                self.temp.open("xb").close()  # an empty file
            else:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.temp, final)

        await self.storage.pool.run(finish)

    async def abort(self) -> None:
        def discard() -> None:
            if self._handle is not None:
                self._handle.close()
            with contextlib.suppress(FileNotFoundError):
                self.temp.unlink()

        await self.storage.pool.run(discard)


# -- S3 ------------------------------------------------------------------------------------


class S3Storage:
    name = "s3"

    def __init__(self, settings: MediaSettings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        self.part_size = settings.part_size_bytes
        self.pool = _Pool(settings.storage_threads)
        config = Config(
            s3={"addressing_style": "path" if settings.s3_path_style else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=settings.storage_threads,
            connect_timeout=5,
            read_timeout=30,
        )
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region or None,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            config=config,
        )

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    async def start(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await self.pool.run(lambda: self.client.head_bucket(Bucket=self.bucket))
        except (BotoCoreError, ClientError) as exc:
            raise RuntimeError(f"the media bucket {self.bucket!r} is not reachable: {exc}") from exc

    def writer(self, key: str, on_multipart: Callable[[str], Awaitable[None]]) -> Writer:
        return _S3Writer(self, self.object_key(key), on_multipart)

    async def read(self, key: str, offset: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        reply = await self._call(
            self.client.get_object,
            Bucket=self.bucket,
            Key=self.object_key(key),
            Range=f"bytes={offset}-{offset + length - 1}",
        )
        body = reply["Body"]
        try:
            while True:
                chunk = await self.pool.run(body.read, READ_CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            await self.pool.run(body.close)

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await self.pool.run(
                lambda: self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def delete(self, key: str, multipart_id: str | None = None) -> None:
        from botocore.exceptions import ClientError

        if multipart_id:
            try:
                await self._call(
                    self.client.abort_multipart_upload,
                    Bucket=self.bucket,
                    Key=self.object_key(key),
                    UploadId=multipart_id,
                )
            except Unavailable as exc:
                if not isinstance(exc.__cause__, ClientError):
                    raise
                # NoSuchUpload: it completed or was aborted already.
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=self.object_key(key))
        await self._delete_prefix(self.object_key(beside(key, "")))

    async def _delete_prefix(self, prefix: str) -> None:
        """Delete every object whose key starts with `prefix`."""
        while True:
            listed = await self._call(
                self.client.list_objects_v2, Bucket=self.bucket, Prefix=prefix, MaxKeys=1000
            )
            found = [{"Key": o["Key"]} for o in listed.get("Contents", ())]
            if not found:
                return
            await self._call(
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": found, "Quiet": True},
            )

    async def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await self.pool.run(lambda: method(**kwargs))
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable("The media storage is not reachable; retry shortly.") from exc

    async def close(self) -> None:
        self.pool.close()


class _S3Writer:
    def __init__(
        self, storage: S3Storage, key: str, on_multipart: Callable[[str], Awaitable[None]]
    ) -> None:
        self.storage = storage
        self.key = key
        self.on_multipart = on_multipart
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    async def write(self, chunk: bytes) -> None:
        self._buffer.append(chunk)
        self._buffered += len(chunk)
        while self._buffered >= self.storage.part_size:
            await self._send_part(self._take(self.storage.part_size))

    def _take(self, size: int) -> bytes:
        joined = b"".join(self._buffer)
        self._buffer = [joined[size:]] if len(joined) > size else []
        self._buffered = len(joined) - min(size, len(joined))
        return joined[:size]

    async def _send_part(self, body: bytes) -> None:
        s = self.storage
        if self._upload_id is None:
            reply = await s._call(s.client.create_multipart_upload, Bucket=s.bucket, Key=self.key)
            self._upload_id = str(reply["UploadId"])
            await self.on_multipart(self._upload_id)
        number = len(self._parts) + 1
        reply = await s._call(
            s.client.upload_part,
            Bucket=s.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"ETag": reply["ETag"], "PartNumber": number})

    async def commit(self) -> None:
        s = self.storage
        rest = self._take(self._buffered)
        if self._upload_id is None:
            await s._call(s.client.put_object, Bucket=s.bucket, Key=self.key, Body=rest)
            return
        if rest:
            await self._send_part(rest)
        await s._call(
            s.client.complete_multipart_upload,
            Bucket=s.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    async def abort(self) -> None:
        self._buffer, self._buffered = [], 0
        if self._upload_id is not None:
            s = self.storage
            with contextlib.suppress(Unavailable):
                await s._call(
                    s.client.abort_multipart_upload,
                    Bucket=s.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                )


def create_storage(settings: MediaSettings) -> Storage:
    if settings.storage == "s3":
        return S3Storage(settings)
    return LocalStorage(settings.resolved_local_dir(), settings.storage_threads)
