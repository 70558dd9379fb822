"""Content-addressed artifacts: BLAKE3 names, dedup, verified reads, flat memory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pacha_sdk as pacha
from pacha_sdk.backends import get_backend

if TYPE_CHECKING:
    from pacha_sdk.backends import Backend
    from tests.servers import ObjectStore

pytest_plugins = ["tests.servers"]

HELLO_HASH = "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"


def blob_path(store: str, content_hash: str) -> Path:
    return Path(store) / "artifacts" / content_hash[:2] / content_hash


def stored_blobs(store: str) -> list[Path]:
    folder = Path(store) / "artifacts"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    path.write_bytes(bytes(range(256)) * 40_000)  # ~10 MB: several 4 MiB chunks
    return path


@pytest.fixture
def stored(store: str, weights: Path) -> pacha.ArtifactReference:
    with pacha.run(uri=store, system_metrics=False) as run:
        return run.log_artifact(weights)


def test_bytes_are_named_by_their_blake3_hash(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        ref = run.log_artifact(b"hello world", name="greeting.txt", artifact_type="text")
    assert ref == pacha.ArtifactReference(
        artifact_type="text", name="greeting.txt", content_hash=HELLO_HASH
    )
    assert blob_path(store, HELLO_HASH).read_bytes() == b"hello world"
    assert pacha.load_run(run.run_id, uri=store).artifacts == [ref]


def test_a_file_is_stored_under_its_hash_and_named_after_itself(
    store: str, weights: Path, stored: pacha.ArtifactReference
) -> None:
    assert stored.name == "model.safetensors"
    assert stored.artifact_type == "model"
    assert blob_path(store, stored.content_hash).read_bytes() == weights.read_bytes()
    (record,) = pacha.list_runs(uri=store)
    assert record.artifacts == [stored]


def test_the_same_content_is_stored_once(store: str, weights: Path) -> None:
    with pacha.run(uri=store, system_metrics=False) as first:
        ref = first.log_artifact(weights, artifact_type="checkpoint", name="epoch-1.pt")
    blob = blob_path(store, ref.content_hash)
    before = blob.stat()
    with pacha.run(uri=store, system_metrics=False) as second:
        again = second.log_artifact(weights.read_bytes(), artifact_type="model", name="best.pt")
        second.log_artifact(weights, artifact_type="model", name="best.pt")
    assert again.content_hash == ref.content_hash
    assert stored_blobs(store) == [blob]
    after = blob.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert pacha.load_run(second.run_id, uri=store).artifacts == [again]


def test_open_artifact_reads_it_back(
    store: str, weights: Path, stored: pacha.ArtifactReference
) -> None:
    with pacha.open_artifact(stored, uri=store) as f:
        head = f.read(1000)
        rest = f.read()
    assert head + rest == weights.read_bytes()
    assert f.closed
    with pacha.open_artifact(stored.content_hash.upper(), uri=store) as f:
        assert f.read() == weights.read_bytes()


def test_download_artifact_to_a_file_or_a_folder(
    store: str, weights: Path, stored: pacha.ArtifactReference, tmp_path: Path
) -> None:
    target = pacha.download_artifact(stored, tmp_path / "out" / "copy.bin", uri=store)
    assert target == tmp_path / "out" / "copy.bin"
    assert target.read_bytes() == weights.read_bytes()
    folder = tmp_path / "downloads"
    folder.mkdir()
    into = pacha.download_artifact(stored, folder, uri=store)
    assert into == folder / "model.safetensors"
    by_hash = pacha.download_artifact(stored.content_hash, folder, uri=store)
    assert by_hash == folder / stored.content_hash
    assert sorted(p.name for p in folder.iterdir()) == sorted([into.name, by_hash.name])


def test_a_hand_made_reference_cannot_escape_the_download_folder(
    store: str, stored: pacha.ArtifactReference, tmp_path: Path
) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    sneaky = stored.model_copy(update={"name": "weights/.."})
    target = pacha.download_artifact(sneaky, folder, uri=store)
    assert target == folder / stored.content_hash
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["model.safetensors"]


def corrupt(store: str, ref: pacha.ArtifactReference, *, truncate: bool = False) -> None:
    blob = blob_path(store, ref.content_hash)
    data = bytearray(blob.read_bytes())
    if truncate:
        del data[-1]
    else:
        data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))


@pytest.mark.parametrize("truncate", [False, True])
def test_a_corrupted_blob_is_detected_by_the_end_of_the_read(
    store: str, stored: pacha.ArtifactReference, truncate: bool
) -> None:
    corrupt(store, stored, truncate=truncate)
    with pytest.raises(pacha.ArtifactCorruptedError, match=stored.content_hash):
        read_in_pieces(stored, store)
    with pytest.raises(ValueError, match="corrupted"), pacha.open_artifact(stored, uri=store) as f:
        f.read()


def read_in_pieces(ref: pacha.ArtifactReference, store: str) -> None:
    with pacha.open_artifact(ref, uri=store) as f:
        while f.read(64 * 1024):
            pass


def test_a_corrupted_blob_is_never_downloaded(
    store: str, stored: pacha.ArtifactReference, tmp_path: Path
) -> None:
    corrupt(store, stored)
    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(pacha.PachaError, match="corrupted"):
        pacha.download_artifact(stored, folder / "model.bin", uri=store)
    assert list(folder.iterdir()) == []


def test_a_missing_blob(store: str, tmp_path: Path) -> None:
    Path(store).mkdir()  # a store without that blob
    with pytest.raises(pacha.ArtifactNotFoundError, match=HELLO_HASH) as caught:
        pacha.open_artifact(HELLO_HASH, uri=store)
    assert isinstance(caught.value, LookupError)
    with pytest.raises(pacha.ArtifactNotFoundError):
        pacha.download_artifact(HELLO_HASH, tmp_path / "x", uri=store)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("bad", ["abc", "g" * 64, HELLO_HASH + "0", "../" + HELLO_HASH[3:]])
def test_a_string_that_is_not_a_hash_is_refused(store: str, bad: str) -> None:
    with pytest.raises(ValueError, match="BLAKE3"):
        pacha.open_artifact(bad, uri=store)


@pytest.mark.parametrize("name", ["../escape.pt", "/etc/passwd", "a/../../b", "", "\x00"])
def test_unsafe_names_are_refused_before_anything_is_stored(store: str, name: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        with pytest.raises(pacha.UnsafeNameError):
            run.log_artifact(b"weights", name=name)
        assert run.record.artifacts == []
    assert stored_blobs(store) == []


def test_bad_sources(store: str, tmp_path: Path) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        with pytest.raises(ValueError, match="name="):
            run.log_artifact(b"weights")
        with pytest.raises(FileNotFoundError):
            run.log_artifact(tmp_path / "missing.pt")
        with pytest.raises(TypeError, match="path or bytes"):
            run.log_artifact(42)  # type: ignore[arg-type]
    with pytest.raises(pacha.RunStateError, match="not running"):
        run.log_artifact(b"late", name="late.bin")


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux /proc")
def test_a_file_that_changes_while_it_is_stored_is_refused(store: str) -> None:
    # /proc/self/io counts this process's reads, so each read of it differs.
    with pacha.run(uri=store, system_metrics=False) as run:
        with pytest.raises(pacha.ArtifactCorruptedError, match="changed while"):
            run.log_artifact("/proc/self/io", name="io.txt")
        assert run.record.artifacts == []
    assert stored_blobs(store) == []


def test_a_store_that_refuses_the_blob_raises_store_error(store: str) -> None:
    with pacha.run(uri=store, system_metrics=False) as run:
        (Path(store) / "artifacts").write_bytes(b"a file where the folder should be")
        with pytest.raises(pacha.StoreError, match=HELLO_HASH):
            run.log_artifact(b"hello world", name="greeting.txt")
    assert pacha.load_run(run.run_id, uri=store).status is pacha.RunStatus.COMPLETED


def test_memory_store_round_trip() -> None:
    uri = "memory://artifacts-test"
    with pacha.run(uri=uri, system_metrics=False) as run:
        ref = run.log_artifact(b"hello world", name="greeting.txt")
        again = run.log_artifact(b"hello world", name="greeting.txt")
    assert ref == again
    with pacha.open_artifact(ref, uri=uri) as f:
        assert f.read() == b"hello world"


FLAT_MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys
    import pacha_sdk as pacha

    store, source, dest = sys.argv[1:4]
    block = bytes(range(256)) * 4096  # 1 MiB
    with open(source, "wb") as f:
        for i in range(200):
            f.write(i.to_bytes(4, "big") + block[4:])

    def peak_mb():  # VmHWM: the peak resident set since the last reset
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def reset_peak():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    with pacha.run(uri=store, system_metrics=False) as run:
        run.flush()  # the writer loads pyarrow as the run starts: before the baseline
        reset_peak()
        baseline = peak_mb()
        ref = run.log_artifact(source)
        after_log = peak_mb()
    reset_peak()
    before_download = peak_mb()
    pacha.download_artifact(ref, dest, uri=store)
    after_download = peak_mb()
    print(json.dumps({"hash": ref.content_hash, "log": after_log - baseline,
                      "download": after_download - before_download}))
    """
)


@pytest.mark.subprocess
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_a_200_mb_artifact_is_streamed_with_flat_memory(store: str, tmp_path: Path) -> None:
    source, dest = tmp_path / "big.bin", tmp_path / "big-copy.bin"
    result = subprocess.run(
        [sys.executable, "-c", FLAT_MEMORY_CHILD, store, str(source), str(dest)],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(result.stdout)
    assert source.stat().st_size == 200 * 1024 * 1024
    assert blob_path(store, seen["hash"]).stat().st_size == source.stat().st_size
    assert dest.stat().st_size == source.stat().st_size
    assert seen["log"] < 60  # MB of peak resident memory added by logging 200 MB
    assert seen["download"] < 60
    os.unlink(source)


@pytest.fixture(params=["seaweedfs", "moto", "gcs"])
def object_store(request: pytest.FixtureRequest) -> ObjectStore:
    found: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return found


@pytest.mark.servers
# gcsfs sends each 5 MiB piece of a resumable upload as raw bytes, which aiohttp flags.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
def test_object_stores_stream_dedup_and_verify(object_store: ObjectStore, tmp_path: Path) -> None:
    big = tmp_path / "checkpoint.pt"
    big.write_bytes(os.urandom(1024 * 1024) * 12)  # 12 MiB: a multipart upload on S3
    options: dict[str, Any] = {
        "uri": object_store.uri,
        "storage_options": object_store.storage_options,
    }
    with pacha.run(system_metrics=False, **options) as run:
        ref = run.log_artifact(big, artifact_type="checkpoint")
        assert run.log_artifact(big).content_hash == ref.content_hash
    with pacha.open_artifact(ref, **options) as f:
        assert f.read() == big.read_bytes()
    copy = pacha.download_artifact(ref, tmp_path / "copy.pt", **options)
    assert copy.read_bytes() == big.read_bytes()
    assert pacha.lineage(ref, **options).produced_by == [run.run_id]
    corrupt_key = f"artifacts/{HELLO_HASH[:2]}/{HELLO_HASH}"
    get_backend(object_store.uri, storage_options=object_store.storage_options).replace(
        corrupt_key, b"not hello world"
    )
    with (
        pytest.raises(pacha.ArtifactCorruptedError),
        pacha.open_artifact(HELLO_HASH, **options) as f,
    ):
        f.read()


class BrokenSource:
    """A file whose reading fails after two 6 MiB pieces (a disk or network error)."""

    def __init__(self) -> None:
        self.pieces = 0

    def read(self, size: int = -1, /) -> bytes:
        self.pieces += 1
        if size < 0 or self.pieces > 2:
            raise OSError("the source went away")
        return b"x" * (6 * 1024 * 1024)


@pytest.fixture(params=["local", "memory", "seaweedfs", "moto", "gcs"])
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return get_backend(str(tmp_path / "store"))
    if request.param == "memory":
        return get_backend(f"memory://{tmp_path.name}")
    found: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return get_backend(found.uri, storage_options=found.storage_options)


@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
def test_backends_stream_create_only_and_never_publish_a_partial_object(
    any_backend: Backend,
) -> None:
    key = f"artifacts/{HELLO_HASH[:2]}/{HELLO_HASH}"
    with pytest.raises(OSError, match="went away"):
        any_backend.write_new_from(key, BrokenSource())
    assert not any_backend.exists(key)
    assert any_backend.list("artifacts") == []
    any_backend.write_new_from(key, io.BytesIO(b"hello world"))
    with pytest.raises(FileExistsError):
        any_backend.write_new_from(key, io.BytesIO(b"something else"))
    with any_backend.open_read(key) as f:
        assert f.read(5) + f.read() == b"hello world"
    with pytest.raises(FileNotFoundError):
        any_backend.open_read("artifacts/00/missing")
