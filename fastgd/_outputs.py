"""Where fastgd writes: model files, checkpoints, figures and bench results.

Every output is checked before any work (:func:`check_outputs`), so that a fit never
destroys its own input, never replaces a file of the user's that fastgd did not write,
and never runs for an hour to fail at the end on a folder that does not exist:

* an output that is an input of the same call, or another output of it, is refused
  (compared by real path and by device and inode, so symbolic and hard links count);
* its folder must exist and be writable, and the path must not be a folder, a device or
  a pipe;
* an existing file is replaced only when it is of the output's own kind (a model file
  by a model, a checkpoint by a checkpoint, an image by an image, a bench result by a
  bench result) or empty; anything else needs ``overwrite=True`` (``--force``).

Writes (:func:`write_bytes`) are atomic: a temporary file ``<target>.tmp<PID>`` in the
same folder, flushed to disk, then renamed over the target, so that a process killed at
any moment leaves the previous file or the new one. A write removes its own temporary
file when it fails, and the temporary files of the same target that killed processes
left behind (see :func:`remove_stale_temps`). Imports nothing of fastgd's.
"""
import json
import os
import stat

#: the kinds of output, with how a file of that kind is named in messages
KIND_NAMES = {"model": "fastgd model file", "checkpoint": "fastgd checkpoint",
              "image": "image (PNG, SVG, PDF, ...)", "bench": "fastgd bench result"}
#: the keys that make a JSON object a file of that kind
JSON_KEYS = {"model": ("format", "coef", "intercept"),
             "checkpoint": ("format", "state", "plan", "fingerprint"),
             "bench": ("rows", "features", "results")}
#: an existing JSON file larger than this is not parsed to decide its kind (it is taken
#: for someone else's file: a checkpoint of 10^6 features is about 100 MB)
MAX_JSON_BYTES = 1 << 30
#: the first bytes of the image formats matplotlib writes
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"%PDF-", b"%!PS", b"\xff\xd8\xff", b"II*\x00",
               b"MM\x00*", b"GIF8")


def check_outputs(outputs, inputs=(), *, overwrite=False, force_hint="pass overwrite=True"):
    """Refuse, with a ``ValueError`` naming the path and the fix, any output that would
    destroy data or fail at the end.

    Parameters
    ----------
    outputs : iterable of (label, path, kind)
        ``label`` names the output in messages ("--save-model", "checkpoint"); ``kind``
        is a key of :data:`KIND_NAMES`. ``path`` None is skipped.
    inputs : iterable of (label, path)
        The files the same call reads (``path`` None is skipped).
    overwrite : bool
        Whether an existing file of another kind may be replaced.
    force_hint : str
        How the caller's user allows that ("pass overwrite=True", "add --force").
    """
    if overwrite is not True and overwrite is not False:
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    seen = []
    for label, path, kind in outputs:
        if path is None:
            continue
        path = os.fspath(path)
        check_location(label, path)
        for ilabel, ipath in inputs:
            if ipath is not None and same_file(path, ipath):
                raise ValueError(
                    f"{label} {path} is {ilabel} ({os.fspath(ipath)}), which this command reads: "
                    "writing it would destroy it; write to another path"
                )
        for olabel, opath in seen:
            if same_file(path, opath):
                raise ValueError(f"{label} and {olabel} are the same file ({path}): one would "
                                 "overwrite the other; give each its own path")
        check_kind(label, path, kind, overwrite, force_hint)
        seen.append((label, path))


def image_format(label, path):
    """The image format of ``path`` (its extension, PNG without one), or a ``ValueError``
    naming ``label`` and the formats matplotlib writes (imported here: only callers that
    draw need it)."""
    from matplotlib.backend_bases import FigureCanvasBase

    ext = os.path.splitext(os.fspath(path))[1][1:].lower() or "png"
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext not in formats:
        raise ValueError(f"{label} {os.fspath(path)}: matplotlib does not write .{ext} files; "
                         f"use one of: {', '.join('.' + f for f in sorted(formats))}")
    return ext


def same_file(a, b):
    """Whether the paths ``a`` and ``b`` name one file: the same real path (symbolic
    links resolved), or, both existing, the same device and inode (hard links)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_location(label, path):
    """A ``ValueError`` unless ``path`` can be written: not a folder, a device or a pipe,
    in a folder that exists and is writable."""
    if not path:
        raise ValueError(f"{label} is an empty path: give a file name")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ValueError(f"{label} {path}: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{label} {path} is a folder: give a file name inside it "
                         f"(e.g. {os.path.join(path, 'out')})")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{label} {path} is not a regular file (a device, pipe or socket): "
                         "write to a file")
    folder = os.path.dirname(os.path.realpath(path)) or "."
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise ValueError(f"{label} {path}: the folder {folder} {what}; create it first, or "
                         "choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{label} {path}: the folder {folder} is not writable (permission "
                         "denied); choose another path")


def check_kind(label, path, kind, overwrite=False, force_hint="pass overwrite=True"):
    """A ``ValueError`` when ``path`` exists, is not empty and is not a file of ``kind``,
    unless ``overwrite``."""
    if overwrite or not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    if is_kind(path, kind):
        return
    name = KIND_NAMES[kind]
    article = "an" if name[0] in "aeiou" else "a"
    raise ValueError(f"{label} {path} exists and is not {article} {name}: fastgd would "
                     f"replace it; {force_hint} to replace it, or choose another path")


def is_kind(path, kind):
    """Whether the existing file ``path`` is of ``kind`` (read, never trusted by name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            if kind == "image":
                return _is_image(head)
            if not head.lstrip().startswith(b"{") or os.fstat(f.fileno()).st_size > MAX_JSON_BYTES:
                return False
            f.seek(0)
            doc = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
        return False
    return isinstance(doc, dict) and all(k in doc for k in JSON_KEYS[kind])


def _is_image(head):
    if head.startswith(IMAGE_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    text = head.lstrip()
    return text.startswith((b"<?xml", b"<svg", b"<!DOCTYPE svg")) and b"<svg" in head


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------

def temp_name(target, pid=None):
    """The temporary file a write of ``target`` goes through."""
    return f"{target}.tmp{os.getpid() if pid is None else pid}"


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically (see the module's docstring). Symbolic links
    are followed (the file they point to is replaced, the link stays). An ``OSError``
    has ``path`` as its ``filename``, never the temporary file; the temporary file is
    removed."""
    path = os.fspath(path)
    target = os.path.realpath(path)
    remove_stale_temps(target)
    tmp = temp_name(target)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:  # a replaced file keeps its permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        except FileNotFoundError:
            pass
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None:
            raise type(exc)(exc.errno, exc.strerror, path) from None
        raise
    _sync_folder(os.path.dirname(target) or ".")


def _sync_folder(folder):
    """Flush the folder's entry of a renamed file to disk (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(target):
    """Remove the temporary files ``<target>.tmp<PID>`` that writes killed before their
    rename left behind: those whose process is gone, or whose PID now belongs to a
    process started after the file was last written (the PID was reused). A temporary
    file of a live writer is never touched, nor one whose writer cannot be told."""
    folder, base = os.path.split(target)
    prefix = base + ".tmp"
    try:
        entries = list(os.scandir(folder or "."))
    except OSError:
        return
    for entry in entries:
        suffix = entry.name[len(prefix):]
        if not entry.name.startswith(prefix) or not suffix.isdigit():
            continue
        pid = int(suffix)
        if pid == os.getpid():
            continue
        try:
            written = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if _alive(pid) and not _started_after(pid, written):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists, another user's (or cannot be told): keep its files
    return True


def _started_after(pid, when):
    """Whether process ``pid`` started after the time ``when`` (seconds since the epoch),
    from Linux's /proc; False where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    # btime and the start tick are whole seconds and ticks: one second of margin
    return started > when + 1.0
