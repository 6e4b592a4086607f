"""PACS references, server settings, credentials, the series cache and the multipart reader,
without a server."""

from __future__ import annotations

import http.client
import io
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from recist_tool.batch.manifest import ManifestError, read_manifest
from recist_tool.io.pacs import PacsError, is_pacs_ref, parse_ref, read_servers
from recist_tool.io.pacs.cache import SeriesCache
from recist_tool.io.pacs.dicomweb import KEEP_BUFFERS, _Buffers, _parts

STUDY, SERIES = "1.2.840.1", "1.2.840.1.7"


def test_reference_syntax() -> None:
    ref = parse_ref(f"pacs://orthanc/{STUDY}/{SERIES}")
    assert (ref.server, ref.study_uid, ref.series_uid) == ("orthanc", STUDY, SERIES)
    assert str(ref) == f"pacs://orthanc/{STUDY}/{SERIES}"
    # a CLI argument typed as a path folds the double slash: still the same reference
    assert parse_ref(Path(f"pacs://orthanc/{STUDY}/{SERIES}")) == ref
    assert parse_ref(f"pacs://orthanc/{STUDY}").series_uid is None
    assert is_pacs_ref(Path("pacs://x/1/2")) and not is_pacs_ref("/data/pacs/x")
    for bad in ("pacs://", "pacs://orthanc", "pacs://orthanc/1.2/abc", "pacs://a b/1/2"):
        with pytest.raises(PacsError, match="not a PACS series reference"):
            parse_ref(bad)


def _settings(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "trial.toml"
    p.write_text(body)
    return p


def test_servers_and_refusals(tmp_path: Path) -> None:
    p = _settings(tmp_path, '[pacs.a]\nurl = "http://h:1/dicom-web/"\n[pacs.b]\ndicom = "h:104"\n'
                            'aet = "ARCH"\n')
    servers = read_servers(p)
    assert servers["a"].protocol == "dicomweb" and servers["a"].url == "http://h:1/dicom-web"
    assert (servers["b"].protocol, servers["b"].port, servers["b"].aet) == ("dimse", 104, "ARCH")
    for body, match in (('[pacs.a]\nurl = "http://u:secret@h/"', "holds credentials"),
                        ('[pacs.a]\nurl = "http://h/"\npassword = "x"', "no credentials in the"),
                        ('[pacs.a]\nurl = "http://h/"\ndicom = "h:1"', "one of the two"),
                        ('[pacs.a]\ndicom = "h"', "HOST:PORT"),
                        ('[pacs.a]\nurl = "ftp://h/"', "http"),
                        ('[pacs.a]\nurl = "http://h/"\ncolour = 1', "unknown key")):
        with pytest.raises(PacsError, match=match) as err:
            read_servers(_settings(tmp_path, body))
        assert "secret" not in str(err.value)


def test_credentials_env_then_owner_only_file(tmp_path: Path, monkeypatch) -> None:
    cred = tmp_path / "login.toml"
    cred.write_text('username = "u"\npassword = "p"\n')
    cred.chmod(0o600)
    p = _settings(tmp_path, '[pacs.my-pacs]\nurl = "http://h/"\ncredentials = "login.toml"\n')
    srv = read_servers(p)["my-pacs"]
    assert srv.login() == ("u", "p")
    monkeypatch.setenv("RECIST_PACS_MY_PACS_USERNAME", "eu")
    monkeypatch.setenv("RECIST_PACS_MY_PACS_PASSWORD", "ep")
    assert srv.login() == ("eu", "ep")
    monkeypatch.delenv("RECIST_PACS_MY_PACS_PASSWORD")
    with pytest.raises(PacsError, match="set both"):
        srv.login()
    monkeypatch.delenv("RECIST_PACS_MY_PACS_USERNAME")
    cred.chmod(0o640)
    with pytest.raises(PacsError, match="readable by others .*0640.*chmod 600") as err:
        srv.login()
    assert "p\"" not in str(err.value)


def test_unknown_server_names_the_known(tmp_path: Path, monkeypatch) -> None:
    from recist_tool.io.pacs import server

    monkeypatch.delenv("RECIST_PACS_CONFIG", raising=False)
    with pytest.raises(PacsError, match="no servers configured"):
        server("x")
    monkeypatch.setenv("RECIST_PACS_CONFIG", str(_settings(tmp_path, '[pacs.a]\nurl = "http://h/"')))
    with pytest.raises(PacsError, match=r"'x' is not in .*servers there: a\)"):
        server("x")


def test_manifest_keeps_references(tmp_path: Path) -> None:
    head = "subject,visit,date,series_path,series_uid\n"
    m = tmp_path / "m.csv"
    m.write_text(head + f"S-1,BL,2025-01-01,pacs://orthanc/{STUDY}/{SERIES},\n"
                 "S-1,W06,2025-02-01,W06,\n")
    cases = read_manifest(m)
    assert cases[0].series_path == f"pacs://orthanc/{STUDY}/{SERIES}"
    assert cases[1].series_path == str(tmp_path / "W06")
    m.write_text(head + "S-1,BL,2025-01-01,pacs://orthanc/not-a-uid,\n")
    with pytest.raises(ManifestError, match=r"m.csv:2: series_path .*not a PACS series reference"):
        read_manifest(m)


def _fill(n_bytes: int, n: int = 1):
    def fetch(folder: Path, arrived) -> dict:
        for i in range(1, n + 1):
            (folder / f"{i:06d}.dcm").write_bytes(b"x" * n_bytes)
            arrived(i)
        return {"n_instances": n}
    return fetch


def test_cache_lru_by_series(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path / "c", max_bytes=2500)
    keys = [SeriesCache.key("srv", STUDY, f"{SERIES}.{i}") for i in range(3)]
    calls = []
    for k in keys[:2]:
        with cache.open(k, expect_instances=1, fetch=_fill(1000)) as entry:
            assert entry.n_bytes == 1000 and (entry.instances / "000001.dcm").is_file()
    time.sleep(0.02)
    # a use makes keys[0] the most recent one; a stale count fetches again
    with cache.open(keys[0], expect_instances=1, fetch=lambda f, a: calls.append(f)) as entry:
        assert not calls
    with cache.open(keys[2], expect_instances=1, fetch=_fill(1000)) as entry:
        entry.files()
    assert {k for _, k, _ in cache.entries()} == {keys[0], keys[2]}  # keys[1] went
    assert cache.size() <= 2500
    with cache.open(keys[0], expect_instances=2, fetch=_fill(10)) as entry:
        assert entry.n_bytes == 10
    assert oct(os.stat(tmp_path / "c").st_mode & 0o777) == "0o700"


def test_cache_never_evicts_a_series_in_use(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path / "c", max_bytes=1500)
    a, b = SeriesCache.key("s", STUDY, "1"), SeriesCache.key("s", STUDY, "2")
    with cache.open(a, expect_instances=None, fetch=_fill(1000)) as first:
        first.files()
        time.sleep(0.02)
        with cache.open(b, expect_instances=None, fetch=_fill(1000)) as second:
            second.files()  # fetched: the cache is over its limit, but a is in use
            assert (first.instances / "000001.dcm").is_file()  # a is read: kept
    assert cache.evict() == [a]  # nothing reads them now: the older goes


def test_one_fetch_when_two_ask_at_once(tmp_path: Path) -> None:
    import threading

    cache = SeriesCache(tmp_path / "c", max_bytes=10**6)
    fetches = []

    def slow(folder: Path, arrived) -> dict:
        fetches.append(folder)
        time.sleep(0.3)
        return _fill(10)(folder, arrived)

    read_back = []

    def read() -> None:
        with cache.open("k", expect_instances=1, fetch=slow) as entry:
            read_back.append((entry.instances / "000001.dcm").read_bytes())

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fetches) == 1 and read_back == [b"x" * 10] * 3


def test_fetch_failure_leaves_no_entry(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path / "c", max_bytes=10**6)

    def broken(folder: Path, arrived) -> dict:
        (folder / "000001.dcm").write_bytes(b"half")
        arrived(1)
        raise PacsError("server went away")

    with pytest.raises(PacsError), cache.open("k", expect_instances=None, fetch=broken) as entry:
        entry.files()
    assert cache.entries() == [] and not (tmp_path / "c" / "k").exists()
    # read as it arrives: the files before the failure, then the error; nothing kept
    got = []
    with pytest.raises(PacsError, match="went away"), \
            cache.open("k", expect_instances=None, fetch=broken) as entry:
        got.extend(p.name for p in entry.arriving())
    assert got == ["000001.dcm"] and not (tmp_path / "c" / "k").exists()


def test_cache_files_as_they_arrive(tmp_path: Path) -> None:
    """A series read as it arrives: each file once complete, in order, while the fetch runs in
    a thread; the entry is complete afterwards and read from the cache the next time."""
    import threading

    cache = SeriesCache(tmp_path / "c", max_bytes=10**6)
    gate = threading.Event()
    seen: list[tuple[str, bool]] = []

    def fetch(folder: Path, arrived) -> dict:
        for i in range(1, 4):
            (folder / f"{i:06d}.dcm").write_bytes(b"x" * i)
            arrived(i)
            if i == 1:
                assert gate.wait(5)  # the reader has the first file before the others exist
        return {"n_instances": 3}

    with cache.open("k", expect_instances=3, fetch=fetch) as entry:
        assert entry.expected == 3 and not entry.complete
        for p in entry.arriving():
            seen.append((p.name, p.read_bytes() == b"x" * int(p.stem)))
            gate.set()
        assert entry.complete and entry.n_instances == 3 and entry.n_bytes == 6
    assert seen == [("000001.dcm", True), ("000002.dcm", True), ("000003.dcm", True)]
    with cache.open("k", expect_instances=3, fetch=lambda f, a: 1 / 0) as entry:
        assert entry.complete and [p.name for p in entry.arriving()] == [n for n, _ in seen]


def test_cache_reader_leaving_early_stops_the_fetch(tmp_path: Path) -> None:
    """A reader that stops after the first file (or raises) stops the fetch at its next
    instance; half a series is not kept, and a series never asked for is not fetched."""
    cache = SeriesCache(tmp_path / "c", max_bytes=10**6)
    calls = []

    def endless(folder: Path, arrived) -> dict:
        i = 0
        while True:
            i += 1
            calls.append(i)
            (folder / f"{i:06d}.dcm").write_bytes(b"y")
            arrived(i)
            time.sleep(0.01)

    with pytest.raises(ValueError), cache.open("k", expect_instances=None, fetch=endless) as entry:
        for _ in entry.arriving():
            raise ValueError("the loader failed")
    assert cache.entries() == [] and not (tmp_path / "c" / "k").exists() and len(calls) < 50
    with cache.open("k", expect_instances=None, fetch=endless):
        pass
    assert len(calls) < 50 and not (tmp_path / "c" / "k").exists()


class _Response:
    def __init__(self, body: bytes, boundary: str, chunk: int) -> None:
        self.headers = {"Content-Type": f'multipart/related; type="application/dicom"; '
                                        f'boundary="{boundary}"'}
        self.body, self.chunk = body, chunk

    def iter_content(self, chunk_size: int):
        for i in range(0, len(self.body), self.chunk):
            yield self.body[i:i + self.chunk]


@pytest.mark.parametrize("chunk", [1, 7, 64, 10**6])
def test_multipart_parts_across_chunks(chunk: int) -> None:
    parts = [b"DICM" + bytes(range(256)) * 3, b"\r\n--notit\r\n", b""]
    body = b"preamble\r\n" + b"".join(
        b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n" for p in parts
    ) + b"--XyZ--\r\n"
    assert [bytes(b) for b in _parts(_Response(body, "XyZ", chunk))] == parts


def _with_lengths(parts: list[bytes], lengths: list[int] | None = None) -> bytes:
    lengths = lengths or [len(p) for p in parts]
    return b"preamble\r\n" + b"".join(
        b"--XyZ\r\nContent-Type: application/dicom\r\nContent-Length: %d\r\n\r\n" % n + p + b"\r\n"
        for p, n in zip(parts, lengths, strict=True)) + b"--XyZ--\r\n"


class _Socket:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data), buffer_size=8192)


def _direct(body: bytes, content_encoding: str | None = None) -> SimpleNamespace:
    """An answer as ``requests`` streams it: headers, and urllib3's raw response around an
    ``http.client`` response reading the bytes as a socket would give them."""
    extra = f"Content-Encoding: {content_encoding}\r\n" if content_encoding else ""
    head = (f'HTTP/1.1 200 OK\r\nConnection: close\r\n{extra}Content-Type: multipart/related; '
            f'type="application/dicom"; boundary=XyZ\r\n\r\n').encode()
    fp = http.client.HTTPResponse(_Socket(head + body))  # type: ignore[arg-type]
    fp.begin()

    def iter_content(chunk_size: int):
        raise AssertionError("read through iter_content, not from the connection")

    return SimpleNamespace(headers=dict(fp.getheaders()), raw=SimpleNamespace(_fp=fp),
                           iter_content=iter_content)


@pytest.mark.parametrize("chunk", [1, 7, 10**6])
def test_multipart_parts_by_content_length(chunk: int) -> None:
    """Parts that give their Content-Length (Orthanc's) are read by it, also when a body holds
    the delimiter itself; read from the connection directly or through ``iter_content``."""
    parts = [b"DICM" + bytes(range(256)) * 3, b"x\r\n--XyZ\r\nnot a delimiter", b"", b"y" * 200_000]
    body = _with_lengths(parts)
    assert [bytes(b) for b in _parts(_Response(body, "XyZ", chunk))] == parts
    assert [bytes(b) for b in _parts(_direct(body))] == parts
    with pytest.raises(AssertionError, match="iter_content"):  # a gzip answer is decoded
        list(_parts(_direct(body, content_encoding="gzip")))


def test_multipart_wrong_length_or_cut_short() -> None:
    parts = [b"a" * 100, b"b" * 50]
    with pytest.raises(ValueError, match="longer than its Content-Length"):
        list(_parts(_direct(_with_lengths(parts, [90, 50]))))
    body = _with_lengths(parts)
    for cut in (len(body) - 5, 150, 30):  # in the closing line, inside a part, in a header
        with pytest.raises(ValueError, match="multipart answer ends"):
            list(_parts(_direct(body[:cut])))


def test_part_buffers_used_again() -> None:
    """A buffer handed back serves the next part of the same size or smaller; at most
    KEEP_BUFFERS bytes are kept."""
    buffers = _Buffers()
    a = buffers.get(525_000)
    assert len(a) >= 525_000
    buffers.give_back(a)
    assert buffers.get(524_000) is a and buffers.get(525_000) is not a
    big = [buffers.get(KEEP_BUFFERS // 2) for _ in range(3)]
    for b in big:
        buffers.give_back(b)
    again = [buffers.get(KEEP_BUFFERS // 2) for _ in range(3)]
    assert [any(x is b for b in big) for x in again] == [True, True, False]


class _Arriving:
    """Files handed out one at a time with an announced count, as a retrieve under way does."""

    def __init__(self, files: list[Path]) -> None:
        self._it, self._left = iter(files), len(files)

    def __iter__(self) -> _Arriving:
        return self

    def __next__(self) -> Path:
        p = next(self._it)
        self._left -= 1
        return p

    def __length_hint__(self) -> int:
        return self._left


@pytest.mark.parametrize("workers", [1, 2])
def test_headers_read_as_files_arrive_equal_the_folders(tmp_path: Path, workers: int) -> None:
    """The loader's header pass over arriving files (in this process, or batches sent to header
    processes: 70 files, 2 workers) gives the headers of the same files read as a folder."""
    from recist_tool.io.dicom import _read_all_headers, _read_arriving_headers
    from tests.io.dicom_factory import write_series

    files, _ = write_series(tmp_path / "s", n=70, shape=(8, 8))
    files = sorted(files)
    want = _read_all_headers(files, 1)
    got = _read_arriving_headers(_Arriving(files), workers)
    assert len(got) == len(want) == 70
    key = [(h.path, h.sop_instance_uid, tuple(h.position)) for fr in want for h in fr]
    assert [(h.path, h.sop_instance_uid, tuple(h.position)) for fr in got for h in fr] == key


def _header_key(got: object) -> object:
    """What a header read gives, comparable (a Skipped as is; frames by their values)."""
    import dataclasses

    import numpy as np

    if not isinstance(got, list):
        return got
    return [tuple(v.tolist() if isinstance(v, np.ndarray) else v for v in dataclasses.astuple(h))
            for h in got]


def test_headers_from_bytes_equal_the_files(tmp_path: Path) -> None:
    """``read_frame_headers(path, data)`` (a retrieved instance's bytes, before its file is
    written) gives what reading the file gives: slices of more and of less than HEAD_BYTES,
    one whose header is longer than HEAD_BYTES, elements after the pixel data, and damaged
    copies (cut short anywhere, bytes changed, junk appended), each file's own Skipped; so does
    ``read_head_headers`` from the first HEAD_BYTES, or it says it cannot (None)."""
    import random

    import numpy as np
    import pydicom

    from recist_tool.io.dicom_headers import (
        HEAD_BYTES,
        Skipped,
        read_frame_headers,
        read_head_headers,
    )
    from tests.io.dicom_factory import ct_slice

    uid = pydicom.uid.generate_uid()
    small = ct_slice(np.ones((8, 8), np.uint16), (0, 0, 0), series_uid=uid)
    large = ct_slice(np.arange(256 * 256, dtype=np.uint16).reshape(256, 256), (0, 0, 2.5),
                     series_uid=uid)  # 128 KiB of pixels: more than HEAD_BYTES
    long_head = ct_slice(np.ones((256, 256), np.uint16), (0, 0, 5), series_uid=uid)
    block = long_head.private_block(0x0009, "RECIST TEST", create=True)
    block.add_new(0x10, "OB", b"x" * (HEAD_BYTES + 1000))  # the pixel data beyond HEAD_BYTES
    trailing = ct_slice(np.ones((256, 256), np.uint16), (0, 0, 7.5), series_uid=uid)
    sources = []
    for i, ds in enumerate((small, large, long_head, trailing)):
        path = tmp_path / f"{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        sources.append(path.read_bytes())
    # after the pixel data, out of order: a SeriesDescription the file's reading finds
    sources[3] += b"\x08\x00\x3e\x10LO\x04\x00LATE"
    assert len(sources[1]) > HEAD_BYTES and len(sources[2]) > 2 * HEAD_BYTES
    rng = random.Random(5)
    cases = list(sources)
    for _ in range(150):
        data = bytearray(rng.choice(sources))
        how = rng.random()
        if how < 0.4:
            data = data[:rng.randrange(len(data))]
        elif how < 0.8:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(min(len(data), 3000))] = rng.randrange(256)
        else:
            data += bytes(rng.randrange(1, 200))
        cases.append(bytes(data))
    path = tmp_path / "case.dcm"
    kinds = set()
    from_head = 0
    for data in cases:
        path.write_bytes(data)
        want = read_frame_headers(path)
        kinds.add(getattr(want, "reason", "CT"))
        assert _header_key(read_frame_headers(path, memoryview(bytearray(data)))) == \
            _header_key(want)
        # from the first bytes alone (what the header process is sent): the same, or None
        head = read_head_headers(path, data[:HEAD_BYTES], len(data))
        if head is not None:
            from_head += len(data) > HEAD_BYTES
            assert _header_key(head) == _header_key(want)
    assert {"CT", "TRUNCATED"} <= kinds and len(kinds) >= 4, kinds
    assert from_head >= 10
    for data in sources[1:]:
        path.write_bytes(data)
        head = read_head_headers(path, data[:HEAD_BYTES], len(data))
        if data is sources[1]:  # header within the first bytes, pixel data to the end
            assert _header_key(head) == _header_key(read_frame_headers(path))
        else:  # the header longer than HEAD_BYTES; an element after the pixel data
            assert head is None
    path.write_bytes(sources[3])
    got = read_frame_headers(path, sources[3])
    assert not isinstance(got, Skipped) and got[0].series_description == "LATE"
