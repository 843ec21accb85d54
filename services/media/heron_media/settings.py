"""Media service settings (env prefix `HERON_MEDIA_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from heron_common.settings import ServiceSettings
from pydantic import Field, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

MiB = 1024 * 1024

# SonicJS's allowlist: common images, PDF, plain text, office documents, video and audio.
DEFAULT_TYPES: tuple[str, ...] = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "application/pdf",
    "text/plain",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "audio/mpeg",
    "audio/wav",
    "audio/ogg",
)


DEFAULT_VARIANT_SIZES = (
    32, 64, 96, 128, 160, 200, 256, 320, 400, 480, 512, 640, 720, 768, 800, 960, 1024, 1080,
    1200, 1280, 1440, 1600, 1920, 2048, 2560,
)  # fmt: skip
DEFAULT_PRESETS: dict[str, dict[str, int | str]] = {
    "thumb": {"width": 200, "height": 200, "fit": "cover"},
    "small": {"width": 480},
    "medium": {"width": 1024},
    "large": {"width": 1920},
}


def _listed(value: object) -> object:
    """A comma-separated environment value as a list (JSON lists work too)."""
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, str):
        import json

        return json.loads(value)
    return value


class MediaSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="HERON_MEDIA_", extra="ignore", populate_by_name=True
    )

    grpc_port: int = 50053
    public_files: Literal["published", "all"] = Field(
        default="published",
        description="Which files anonymous callers may read: `published` (those published "
        "content uses; a draft's files stay private) or `all` (every file, as SonicJS).",
    )
    storage: Literal["local", "s3"] = Field(
        default="local",
        description="Where files are kept: `local` (a directory) or `s3` (any S3-compatible "
        "store: AWS S3, Cloudflare R2, MinIO).",
    )
    local_dir: Path | None = Field(
        default=None, description="The local storage directory; empty: <data dir>/media."
    )
    s3_bucket: str = ""
    s3_endpoint_url: str = Field(
        default="", description="Empty for AWS; R2: https://<account>.r2.cloudflarestorage.com."
    )
    s3_region: str = "us-east-1"
    s3_access_key_id: str = Field(default="", repr=False)
    s3_secret_access_key: str = Field(default="", repr=False)
    s3_path_style: bool = Field(
        default=False, description="Path-style addressing (MinIO and most self-hosted stores)."
    )
    s3_prefix: str = Field(default="", description="Prefix of every object key in the bucket.")
    storage_threads: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Threads that run the blocking storage calls (boto3, file I/O).",
    )
    part_size_bytes: int = Field(
        default=8 * MiB,
        ge=5 * MiB,
        le=512 * MiB,
        description="Files larger than this go to S3 as multipart uploads of parts this big.",
    )
    max_file_bytes: int = Field(
        default=50 * MiB, ge=1, description="The largest file an upload may hold."
    )
    max_filename_length: int = Field(default=255, ge=1, le=1024)
    allowed_types: Annotated[list[str], NoDecode] = Field(
        default=list(DEFAULT_TYPES),
        description="Media types an upload may be (as told by its bytes), comma-separated.",
    )
    image_max_pixels: int = Field(
        default=50_000_000,
        ge=1,
        description="Images with more pixels (width times height) are refused unread.",
    )
    strip_gps: bool = Field(
        default=True,
        description="Remove the GPS position from images' EXIF data as they are stored.",
    )
    stale_upload_seconds: float = Field(
        default=120.0,
        gt=0,
        description="An upload unheard of for this long is abandoned: its partial object and "
        "row are removed (at start and every minute).",
    )

    variant_sizes: Annotated[list[int], NoDecode] = Field(
        default=list(DEFAULT_VARIANT_SIZES),
        description="The widths and heights a variant may ask for, comma-separated: nothing "
        "else is made, so variants cannot fill the disk or burn the CPU.",
    )
    variant_qualities: Annotated[list[int], NoDecode] = Field(
        default=[50, 60, 70, 75, 80, 85, 90, 95],
        description="The qualities (`q`) a variant may ask for, comma-separated.",
    )
    variant_quality: int = Field(default=80, ge=1, le=100, description="The default `q`.")
    variant_presets: dict[str, dict[str, int | str]] = Field(
        default_factory=lambda: dict(DEFAULT_PRESETS),
        description='Named variants (JSON): `{"thumb": {"width": 200, "height": 200, '
        '"fit": "cover"}, ...}`; a preset may use any size.',
    )
    variants_per_file: int = Field(
        default=50, ge=1, description="At most this many variants are stored per file."
    )
    variant_workers: int = Field(
        default=2, ge=1, le=32, description="Variants made at once (each decodes an image)."
    )

    @model_validator(mode="before")
    @classmethod
    def _split_types(cls, data: object) -> object:
        if isinstance(data, dict):
            for name in ("allowed_types", "variant_sizes", "variant_qualities"):
                if name in data:
                    data = {**data, name: _listed(data[name])}
        return data

    @model_validator(mode="after")
    def _s3_complete(self) -> Self:
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("HERON_MEDIA_S3_BUCKET is required with HERON_MEDIA_STORAGE=s3")
        return self

    def resolved_local_dir(self) -> Path:
        return (self.local_dir or self.data_dir / "media").resolve()
