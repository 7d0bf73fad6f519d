"""mammo_edge.images.inputs: folders, globs and list files become an ordered list of paths."""

from __future__ import annotations

from pathlib import Path

from mammo_edge.images.inputs import expand_inputs, find_images


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_folder_is_searched_recursively_for_images_only(tmp_path):
    touch(tmp_path / "b.pgm")
    touch(tmp_path / "a.PNG")
    touch(tmp_path / "sub" / "deeper" / "c.dcm")
    touch(tmp_path / "sub" / "d.tiff")
    touch(tmp_path / "README.md")
    touch(tmp_path / "Licence.txt")
    touch(tmp_path / ".hidden.png")
    touch(tmp_path / ".cache" / "e.png")
    touch(tmp_path / "DICOMDIR", b"\x00" * 128 + b"DICM")
    found = [Path(path).relative_to(tmp_path).as_posix() for path in find_images(tmp_path)]
    assert found == ["a.PNG", "b.pgm", "sub/d.tiff", "sub/deeper/c.dcm"]


def test_extensionless_and_uid_named_dicom_files_are_found_by_content(tmp_path):
    touch(tmp_path / "IM0001", b"\x00" * 128 + b"DICM" + b"rest")
    touch(tmp_path / "1.2.840.113619.2.55.3", b"\x00" * 128 + b"DICM")
    touch(tmp_path / "notes", b"just text, long enough to be read past 132 bytes " * 4)
    found = sorted(Path(path).name for path in find_images(tmp_path))
    assert found == ["1.2.840.113619.2.55.3", "IM0001"]


def test_explicit_files_are_kept_whatever_their_name(tmp_path):
    odd = touch(tmp_path / "scan.weird")
    assert expand_inputs([odd]) == [str(odd)]


def test_missing_paths_and_empty_globs_are_kept_for_reporting(tmp_path):
    missing = str(tmp_path / "absent.png")
    pattern = str(tmp_path / "*.nothing")
    assert expand_inputs([missing, pattern]) == [missing, pattern]


def test_glob_patterns_expand_sorted_and_recursively(tmp_path):
    touch(tmp_path / "x" / "2.png")
    touch(tmp_path / "x" / "1.png")
    touch(tmp_path / "y" / "z" / "3.png")
    touch(tmp_path / "y" / "z" / "skip.jpg")
    found = expand_inputs([str(tmp_path / "**" / "*.png")])
    assert [Path(path).name for path in found] == ["1.png", "2.png", "3.png"]


def test_list_files_are_read_only_when_marked_with_an_at_sign(tmp_path):
    first = touch(tmp_path / "images" / "1.pgm")
    touch(tmp_path / "images" / "more" / "2.pgm")
    listing = tmp_path / "study.lst"
    listing.write_text("# scans for today\n\nimages/1.pgm\nimages/more\nmissing.png\n")
    expected = [
        str(first),
        str(tmp_path / "images" / "more" / "2.pgm"),
        str(tmp_path / "missing.png"),
    ]
    assert expand_inputs([f"@{listing}"]) == expected
    text_listing = tmp_path / "study.txt"
    text_listing.write_text(listing.read_text())
    assert expand_inputs([f"@{text_listing}"]) == expected
    # Named without @, a text file is an input like any other (one NOT_AN_IMAGE record).
    assert expand_inputs([text_listing]) == [str(text_listing)]


def test_mias_folder_star_keeps_info_txt_as_one_input(tmp_path):
    """``predict folder/*`` on a MIAS folder: Info.txt is one input, not 169 paths."""
    image = touch(tmp_path / "mdb001.pgm")
    info = tmp_path / "Info.txt"
    info.write_text("mdb001 G CIRC B 535 425 197\nmdb002 G CIRC B 522 280 69\n")
    licence = touch(tmp_path / "Licence.txt", b"research use only\n")
    assert expand_inputs([str(tmp_path / "*")]) == [str(info), str(licence), str(image)]


def test_a_list_that_names_itself_does_not_loop(tmp_path):
    listing = tmp_path / "loop.txt"
    other = touch(tmp_path / "a.pgm")
    listing.write_text("@loop.txt\na.pgm\n")
    assert expand_inputs([f"@{listing}"]) == [str(other)]


def test_unlistable_subfolder_is_kept_as_an_input(tmp_path, monkeypatch):
    """A folder os.scandir refuses is yielded itself (the reader makes it UNREADABLE)."""
    import os

    first = touch(tmp_path / "a.pgm")
    locked = tmp_path / "locked"
    touch(locked / "b.pgm")
    later = touch(tmp_path / "z" / "c.pgm")
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("mammo_edge.images.inputs.os.scandir", scandir)
    assert expand_inputs([tmp_path]) == [str(first), str(locked), str(later)]


def test_argument_order_is_kept(tmp_path):
    second = touch(tmp_path / "b.png")
    first = touch(tmp_path / "a.png")
    assert expand_inputs([second, first]) == [str(second), str(first)]
