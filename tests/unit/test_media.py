"""Storing uploaded images and taking them out of ZIP archives, safely."""

import dataclasses
import hashlib
import io
import os
import stat
import struct
import zipfile
import zlib

import pytest
from PIL import Image

from annotate.media import Limits, MediaError, StoredImage, count_zip_images, iter_zip_images, store_image


def image_bytes(fmt="JPEG", size=(64, 48), color=(200, 30, 30), mode="RGB", **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, fmt, **save)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims width x height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def store(data: bytes, root, name="photo.jpg", limits=Limits()) -> StoredImage:
    return store_image(io.BytesIO(data), name, root, limits)


def media_error(data: bytes, root, name="photo.jpg", limits=Limits()) -> MediaError:
    with pytest.raises(MediaError) as info:
        store(data, root, name, limits)
    return info.value


# --- storing ------------------------------------------------------------------


def test_a_jpeg_is_stored_under_its_content_hash_with_a_thumbnail(tmp_path):
    data = image_bytes(size=(1000, 500))
    sha = hashlib.sha256(data).hexdigest()
    stored = store(data, tmp_path)
    assert stored == StoredImage(
        path=f"{sha[:2]}/{sha[2:4]}/{sha}.jpg",
        thumb_path=f"{sha[:2]}/{sha[2:4]}/{sha}.thumb.jpg",
        width=1000, height=500, format="JPEG", sha256=sha, created=True,
    )
    # an upright image is kept byte for byte
    assert (tmp_path / stored.path).read_bytes() == data
    with Image.open(tmp_path / stored.thumb_path) as thumb:
        assert (thumb.format, thumb.size) == ("JPEG", (256, 128))
    # nothing half-written is left behind
    assert sorted(p.name for p in (tmp_path / stored.path).parent.iterdir()) == [f"{sha}.jpg", f"{sha}.thumb.jpg"]


@pytest.mark.parametrize("fmt, ext", [("PNG", ".png"), ("WEBP", ".webp")])
def test_png_and_webp_are_taken_and_transparency_is_laid_on_white(tmp_path, fmt, ext):
    data = image_bytes(fmt, size=(300, 600), color=(0, 0, 0, 0), mode="RGBA")
    stored = store(data, tmp_path, f"x{ext}")
    assert (stored.format, stored.path[-len(ext):], stored.width, stored.height) == (fmt, ext, 300, 600)
    with Image.open(tmp_path / stored.thumb_path) as thumb:
        assert thumb.size == (128, 256)
        assert thumb.convert("RGB").getpixel((64, 128)) == (255, 255, 255)


def test_a_small_image_keeps_its_size_in_the_thumbnail(tmp_path):
    stored = store(image_bytes(size=(100, 50)), tmp_path)
    with Image.open(tmp_path / stored.thumb_path) as thumb:
        assert thumb.size == (100, 50)


def test_the_thumbnail_size_follows_the_limits(tmp_path):
    stored = store(image_bytes(size=(400, 200)), tmp_path, limits=Limits(thumbnail_size=64))
    with Image.open(tmp_path / stored.thumb_path) as thumb:
        assert thumb.size == (64, 32)


def test_storing_the_same_image_again_writes_nothing(tmp_path):
    data = image_bytes()
    first = store(data, tmp_path)
    before = [os.stat(tmp_path / p) for p in (first.path, first.thumb_path)]
    again = store(data, tmp_path, "copy-of-photo.jpg")
    after = [os.stat(tmp_path / p) for p in (first.path, first.thumb_path)]
    assert again == dataclasses.replace(first, created=False)  # the import knows it owns no new file
    assert [(s.st_ino, s.st_mtime_ns) for s in before] == [(s.st_ino, s.st_mtime_ns) for s in after]


def test_an_exif_rotated_jpeg_is_stored_upright(tmp_path):
    # 40 x 20, red on the left, blue on the right; orientation 6 means
    # "turn 90 degrees clockwise to view": upright it is 20 x 40, red on top.
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes(), quality=95)

    stored = store(out.getvalue(), tmp_path)
    assert (stored.width, stored.height) == (20, 40)
    with Image.open(tmp_path / stored.path) as upright:
        assert upright.size == (20, 40)
        assert upright.getexif().get(0x0112) is None
        red, blue = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert red[0] > 200 and red[2] < 60
    assert blue[2] > 200 and blue[0] < 60
    with Image.open(tmp_path / stored.thumb_path) as thumb:
        assert thumb.size == (20, 40)


def test_garbage_is_not_an_image(tmp_path):
    err = media_error(b"this is not an image at all", tmp_path, "notes.jpg")
    assert str(err) == "notes.jpg: not an image we take: upload a JPEG, PNG or WebP file"
    assert err.name == "notes.jpg"


def test_a_gif_is_not_an_image_we_take(tmp_path):
    err = media_error(image_bytes("GIF"), tmp_path, "anim.gif")
    assert str(err) == "anim.gif: not an image we take: upload a JPEG, PNG or WebP file"


def test_a_truncated_jpeg_is_damaged(tmp_path):
    data = image_bytes(size=(400, 300), quality=95)
    err = media_error(data[: len(data) // 2], tmp_path)
    assert str(err).startswith("photo.jpg: the image is damaged or truncated (")


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("missing", [2, 200, 0.5])
def test_a_photo_cut_short_anywhere_is_damaged(tmp_path, fmt, missing):
    # Pillow's verify() checks nothing in these: the thumbnail's decoding,
    # at a quarter of the size, reads all of the image data and is the check.
    out = io.BytesIO()
    Image.effect_noise((1024, 768), 40).convert("RGB").save(out, fmt)
    data = out.getvalue()
    cut = len(data) - (int(len(data) * missing) if missing < 1 else missing)
    assert str(media_error(data[:cut], tmp_path)).startswith("photo.jpg: the image is damaged or truncated (")
    assert not any(tmp_path.rglob("*.*"))


def test_a_png_with_a_bad_checksum_is_damaged(tmp_path):
    data = bytearray(image_bytes("PNG"))
    data[-20] ^= 0xFF  # inside the last IDAT chunk
    assert str(media_error(bytes(data), tmp_path, "a.png")).startswith("a.png: the image is damaged or truncated (")


def test_an_empty_file_is_refused(tmp_path):
    assert str(media_error(b"", tmp_path)) == "photo.jpg: the file is empty"


def test_an_over_large_file_is_refused_before_decoding(tmp_path):
    err = media_error(image_bytes(size=(200, 200)), tmp_path, limits=Limits(max_file_bytes=1000))
    assert str(err) == "photo.jpg: the file is larger than 1000 bytes"


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    bomb = png_declaring(8_000, 8_000)  # 64 megapixels in about 80 bytes
    assert len(bomb) < 100
    err = media_error(bomb, tmp_path, "bomb.png")
    assert str(err) == "bomb.png: the image is 8000 x 8000 pixels, more than the 50,000,000 we take"


def test_a_huge_bomb_trips_pillows_own_guard_and_is_refused(tmp_path):
    err = media_error(png_declaring(100_000, 100_000), tmp_path, "bomb.png")
    assert str(err).startswith("bomb.png: the image has more pixels than we take (Image size (10000000000 pixels)")


def test_the_pixel_limit_follows_the_limits(tmp_path):
    err = media_error(image_bytes(size=(20, 20)), tmp_path, limits=Limits(max_pixels=399))
    assert str(err) == "photo.jpg: the image is 20 x 20 pixels, more than the 399 we take"


def test_nothing_is_written_for_a_refused_image(tmp_path):
    media_error(png_declaring(8_000, 8_000), tmp_path, "bomb.png")
    assert list(tmp_path.iterdir()) == []


# --- ZIP archives -------------------------------------------------------------


def zip_of(*members, compression=zipfile.ZIP_DEFLATED) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for member in members:
            if isinstance(member, zipfile.ZipInfo):
                zf.writestr(member, b"target.jpg")
            else:
                name, data = member
                zf.writestr(name, data)
    out.seek(0)
    return out


def zip_error(archive, limits=Limits()) -> MediaError:
    with pytest.raises(MediaError) as info:
        list(iter_zip_images(archive, limits))
    return info.value


def test_images_come_out_of_a_zip_and_the_rest_is_skipped(tmp_path):
    a, b = image_bytes(color=(1, 2, 3)), image_bytes("PNG", color=(4, 5, 6))
    archive = zip_of(
        ("photos/", b""),
        ("photos/a.jpg", a),
        ("photos/B.PNG", b),
        ("__MACOSX/photos/._a.jpg", b"resource fork"),
        ("photos/.DS_Store", b"finder"),
        ("readme.txt", b"hello"),
    )
    seen = []
    for name, member in iter_zip_images(archive):
        seen.append((name, store_image(member, name, tmp_path).format))
    assert seen == [("photos/a.jpg", "JPEG"), ("photos/B.PNG", "PNG")]


@pytest.mark.parametrize("name", ["../evil.jpg", "photos/../../evil.jpg", "..\\evil.jpg"])
def test_zip_slip_is_refused(name):
    err = zip_error(zip_of(("ok.jpg", image_bytes()), (name, image_bytes())))
    assert str(err) == f"{name}: the ZIP member's path leads outside the archive (..)"
    assert err.name == name


@pytest.mark.parametrize("name", ["/etc/evil.jpg", "C:/evil.jpg"])
def test_an_absolute_path_is_refused(name):
    assert str(zip_error(zip_of((name, image_bytes())))) == f"{name}: the ZIP member has an absolute path"


def test_a_symlink_member_is_refused():
    link = zipfile.ZipInfo("photos/link.jpg")
    link.create_system = 3  # Unix
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    assert str(zip_error(zip_of(link))) == "photos/link.jpg: the ZIP member is a symbolic link"


def test_a_zip_bomb_is_refused_by_its_compression_ratio():
    err = zip_error(zip_of(("bomb.jpg", b"\0" * (5 * 1024 * 1024))))
    assert err.name == "bomb.jpg"
    assert str(err).startswith("bomb.jpg: the ZIP member inflates ")
    assert str(err).endswith("to 5 MiB): refused as a decompression bomb")


def test_a_zip_with_too_many_images_is_refused_naming_the_first_too_many():
    archive = zip_of(*[(f"{n}.jpg", image_bytes()) for n in range(3)])
    err = zip_error(archive, Limits(max_zip_members=2))
    assert str(err) == "2.jpg: the ZIP archive has more than 2 images"


def test_a_zip_whose_images_add_up_to_too_much_is_refused():
    data = image_bytes()
    archive = zip_of(("a.jpg", data), ("b.jpg", data), compression=zipfile.ZIP_STORED)
    err = zip_error(archive, Limits(max_uncompressed_bytes=len(data) + 1))
    assert str(err) == f"b.jpg: the ZIP archive's images add up to more than {len(data) + 1} bytes"


def test_a_zip_member_over_the_file_size_limit_is_refused():
    err = zip_error(zip_of(("big.jpg", image_bytes(size=(300, 300)))), Limits(max_file_bytes=100))
    assert str(err) == "big.jpg: the image is larger than 100 bytes"


def test_a_hostile_member_anywhere_refuses_the_whole_archive_before_anything_is_yielded():
    images = iter_zip_images(zip_of(("first.jpg", image_bytes()), ("../evil.jpg", image_bytes())))
    with pytest.raises(MediaError, match=r"^\.\./evil\.jpg: "):
        next(images)


def test_a_file_that_is_not_a_zip_is_refused():
    with pytest.raises(MediaError) as info:
        list(iter_zip_images(io.BytesIO(b"not a zip"), filename="upload.zip"))
    assert str(info.value) == "upload.zip: not a readable ZIP archive (File is not a zip file)"


def test_a_zip_is_counted_and_read_in_slices_for_several_background_jobs():
    images = [(f"photos/{n}.jpg", image_bytes(color=(n, n, n))) for n in range(5)]
    archive = zip_of(*images, ("notes.txt", b"skipped"), ("__MACOSX/._0.jpg", b"skipped"))
    assert count_zip_images(archive) == 5
    archive.seek(0)
    first = [name for name, _ in iter_zip_images(archive, stop=2)]
    rest = {name: member.read() for name, member in iter_zip_images(archive, start=2)}
    assert first == ["photos/0.jpg", "photos/1.jpg"]
    assert rest == dict(images[2:])
    # the checks see the whole archive, whatever slice is asked for
    with pytest.raises(MediaError, match=r"^\.\./evil\.jpg: "):
        count_zip_images(zip_of(*images, ("../evil.jpg", image_bytes())))
    with pytest.raises(MediaError, match=r"^\.\./evil\.jpg: "):
        list(iter_zip_images(zip_of(*images, ("../evil.jpg", image_bytes())), start=4))


def test_the_ready_configs_samples_are_drawn_and_synthesised_here():
    import wave

    from annotate.labelconfig import TEMPLATES
    from annotate.media import SAMPLES, sample

    # every sample a ready config points at is one we can serve
    urls = {value for t in TEMPLATES.values() for value in t.sample_data.values() if value.startswith("/projects/")}
    assert {url.rsplit("/", 1)[1] for url in urls} == set(SAMPLES)
    with Image.open(io.BytesIO(sample("street.jpg"))) as street:
        assert (street.format, street.size) == ("JPEG", (1920, 1080))  # the size the sample results assume
    with Image.open(io.BytesIO(sample("cat.jpg"))) as cat:
        assert cat.format == "JPEG"
    with wave.open(io.BytesIO(sample("hello.wav"))) as sound:
        assert (sound.getnchannels(), sound.getsampwidth(), sound.getframerate()) == (1, 2, 16000)
        assert sound.getnframes() == 24000  # 1.5 s
        assert max(sound.readframes(24000)) > 0  # not silence
    with pytest.raises(KeyError):
        sample("../secret_key")
