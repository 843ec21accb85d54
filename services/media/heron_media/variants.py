"""Image variants: what may be asked for (`Spec`), and making one with Pillow (`render`).

Only sizes of the allowlist (`HERON_MEDIA_VARIANT_SIZES`), qualities of theirs and presets are
made, and at most `HERON_MEDIA_VARIANTS_PER_FILE` per file: variants cannot be used to fill
the disk or burn the CPU. A variant carries no metadata of the original (no EXIF, so no GPS
position), only its colour profile; it is turned upright by the EXIF orientation first.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import IO, Any

from heron_common.errors import ErrorDetail, InvalidArgument

from heron_media.settings import MediaSettings

FITS = ("cover", "contain", "inside")
FORMATS = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
_PILLOW = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}
_SOURCE = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/gif": "png",  # the first frame
    "image/webp": "webp",
    "image/avif": "avif",
}


def _invalid(name: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{name}: {message}", [ErrorDetail(name, message)])


@dataclass(frozen=True, slots=True)
class Spec:
    width: int
    height: int
    fit: str
    format: str
    quality: int

    @property
    def name(self) -> str:
        """The canonical spelling: one stored copy per name."""
        return f"w{self.width}-h{self.height}-{self.fit}-q{self.quality}.{self.format}"

    @property
    def mime_type(self) -> str:
        return FORMATS[self.format]


def spec_of(
    settings: MediaSettings,
    source_type: str,
    *,
    preset: str = "",
    width: int = 0,
    height: int = 0,
    fit: str = "",
    format: str = "",
    quality: int = 0,
) -> Spec:
    """The variant asked for, checked against what may be made; InvalidArgument otherwise."""
    if source_type not in _SOURCE:
        raise _invalid("variant", "only images (JPEG, PNG, GIF, WebP, AVIF) have variants")
    if preset:
        chosen = settings.variant_presets.get(preset)
        if chosen is None:
            names = ", ".join(sorted(settings.variant_presets)) or "none"
            raise _invalid("preset", f"one of {names}")
        width = int(chosen.get("width", 0))
        height = int(chosen.get("height", 0))
        fit = fit or str(chosen.get("fit", ""))
        format = format or str(chosen.get("format", ""))
        quality = quality or int(chosen.get("quality", 0))
    else:
        allowed = settings.variant_sizes
        for name, value in (("w", width), ("h", height)):
            if value and value not in allowed:
                raise _invalid(name, f"one of the allowed sizes: {', '.join(map(str, allowed))}")
        if not width and not height:
            raise _invalid("w", "a variant needs a width, a height or a preset")
    if fit and fit not in FITS:
        raise _invalid("fit", f"one of {', '.join(FITS)}")
    if format and format not in FORMATS:
        raise _invalid("format", f"one of {', '.join(FORMATS)}")
    if quality and quality not in settings.variant_qualities and not preset:
        allowed_q = ", ".join(map(str, settings.variant_qualities))
        raise _invalid("q", f"one of {allowed_q}")
    if not fit:
        fit = "cover" if width and height else "inside"
    if fit != "inside" and not (width and height):
        raise _invalid("fit", f"{fit} needs both a width and a height")
    return Spec(
        width=width,
        height=height,
        fit=fit,
        format=format or _SOURCE[source_type],
        quality=quality or settings.variant_quality,
    )


@dataclass(frozen=True, slots=True)
class Rendered:
    data: bytes
    width: int
    height: int
    sha256: str


def render(source: IO[bytes], source_type: str, spec: Spec, max_pixels: int) -> Rendered:
    """Make the variant from the original's bytes (blocking: run it on a worker thread)."""
    from PIL import Image, ImageOps

    pillow_format = {"image/gif": "GIF", **{v: _PILLOW[k] for k, v in FORMATS.items()}}
    with Image.open(source, formats=[pillow_format[source_type]]) as opened:
        if opened.width * opened.height > max_pixels:
            raise _invalid("file", "the image has more pixels than are accepted")
        turned = opened.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # shown on its side
        width, height = opened.size
        target = _box((height, width) if turned else (width, height), spec)
        if opened.format == "JPEG":
            # Decode at the smallest scale (1/2 .. 1/8) still at least as large as needed.
            opened.draft("RGB", (target[1], target[0]) if turned else target)
        image: Any = ImageOps.exif_transpose(opened)
        icc = opened.info.get("icc_profile")
        image = _fitted(image, spec, target)
        image = _mode_for(image, spec.format)
        out = io.BytesIO()
        options: dict[str, Any] = {"quality": spec.quality}
        if icc:
            options["icc_profile"] = icc
        if spec.format == "jpeg":
            options.update(optimize=True, progressive=True)
        elif spec.format == "png":
            options = {"optimize": True, **({"icc_profile": icc} if icc else {})}
        elif spec.format == "webp":
            options["method"] = 4
        image.save(out, _PILLOW[spec.format], **options)
    data = out.getvalue()
    return Rendered(data, image.width, image.height, hashlib.sha256(data).hexdigest())


def _box(size: tuple[int, int], spec: Spec) -> tuple[int, int]:
    """The size the decoded image must at least have (a side of 0 follows the other)."""
    width, height = size
    w = spec.width or max(1, round(width * spec.height / height))
    h = spec.height or max(1, round(height * spec.width / width))
    return w, h


def _fitted(image: Any, spec: Spec, target: tuple[int, int]) -> Any:
    from PIL import Image, ImageOps

    resample = Image.Resampling.LANCZOS
    if spec.fit == "cover":
        return ImageOps.fit(image, target, resample)
    if spec.fit == "contain":
        return ImageOps.pad(image, target, resample, color=_background(image))
    image.thumbnail(target, resample)  # within the box, never enlarged
    return image


def _background(image: Any) -> Any:
    return (255, 255, 255, 0) if image.mode in ("RGBA", "LA", "P") else (255, 255, 255)


def _mode_for(image: Any, format: str) -> Any:
    if format == "jpeg" and image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "P"):
            from PIL import Image

            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return image.convert("RGB")
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P") or (image.mode == "P" and format != "png"):
        return image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB")
    return image
