"""The ``ctpipe data`` command group: create and verify data manifests.

``ctpipe data verify MANIFEST ROOT`` reports missing, changed and unexpected files and
layout counts that are off; it exits 0 when the data matches, 1 when it does not and 2
when the manifest or the root cannot be used. ``ctpipe data create ROOT --name NAME -o
MANIFEST`` hashes every file under ROOT into a new manifest.

Heavy modules are imported inside the handlers so that ``ctpipe --help`` stays fast.

Example:
    >>> from ctpipe.cli.common import parse_args
    >>> args = parse_args(add_data_parser, ["data", "verify", "m.yaml", "/data", "--no-hash"])
    >>> args.func is run_verify, args.no_hash
    (True, True)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctpipe.io.manifest import Manifest, Progress

from ctpipe.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PROBLEMS,
    SubParsers,
    add_command,
    add_command_group,
)

__all__ = ["add_data_parser", "run_create", "run_verify"]


_FEW_FILES = 10
"""Hashing more files than this shows a progress bar."""


def add_data_parser(
    subparsers: SubParsers,
) -> argparse.ArgumentParser:
    """Add the ``data`` command group (``verify``, ``create``) to a CLI."""
    data, commands = add_command_group(
        subparsers,
        "data",
        help="describe datasets with manifests and verify local copies",
        description="Describe datasets with manifests (YAML) and verify local copies.",
    )
    _add_verify(commands)
    _add_create(commands)
    return data


def _add_verify(commands: SubParsers) -> None:
    verify = add_command(commands, "verify", run_verify)
    verify.add_argument("manifest", type=Path, metavar="MANIFEST", help="manifest YAML file")
    verify.add_argument("root", type=Path, metavar="ROOT", help="dataset root folder")
    verify.add_argument(
        "--no-hash",
        action="store_true",
        help="compare file sizes only, skipping sha256 (fast)",
    )
    verify.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the report as JSON to OUT"
    )


def _add_create(commands: SubParsers) -> None:
    create = add_command(commands, "create", run_create)
    create.add_argument("root", type=Path, metavar="ROOT", help="dataset root folder")
    create.add_argument("--name", help="dataset name (default: the template's name)")
    create.add_argument(
        "-o", "--output", type=Path, required=True, metavar="MANIFEST", help="YAML to write"
    )
    create.add_argument(
        "--pattern",
        action="append",
        metavar="GLOB",
        help="only files matching GLOB, relative to ROOT; repeatable (default: '**/*')",
    )
    create.add_argument("--description", default="", help="what the data is")
    create.add_argument(
        "--template",
        type=Path,
        metavar="MANIFEST",
        help="copy description, source, licence, labels, splits, layout and the comment "
        "header from this manifest, replacing only its file list (to regenerate it)",
    )


def _progress_bar(description: str) -> Progress:
    def wrap(paths: Sequence[str]) -> Iterable[str]:
        if len(paths) <= _FEW_FILES:
            return paths
        from tqdm import tqdm

        return tqdm(paths, desc=description, unit="file", file=sys.stderr, leave=False)

    return wrap


def _fail(command: str, error: Exception) -> int:
    print(f"ctpipe data {command}: error: {error}", file=sys.stderr)
    return EXIT_ERROR


def run_verify(args: argparse.Namespace) -> int:
    """Check a local copy of a dataset against its manifest.

    Check a local copy of a dataset against its manifest. Exit code: 0 when it matches, 1
    when files are missing, changed or unexpected or layout counts are off, 2 when the
    manifest or the root cannot be used.

    Returns:
        The exit code, after printing the report.

    Example:
        >>> args = argparse.Namespace(manifest=Path("missing.yaml"), root=Path("."),
        ...                           no_hash=False, json=None)
        >>> run_verify(args)
        2
    """
    import json

    from ctpipe.errors import CTPipeError
    from ctpipe.io.manifest import load_manifest, verify_manifest

    try:
        manifest = load_manifest(args.manifest)
        report = verify_manifest(
            manifest,
            args.root,
            check_hashes=not args.no_hash,
            progress=_progress_bar("verifying"),
        )
        if args.json is not None:
            args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    except (CTPipeError, OSError) as error:
        return _fail("verify", error)
    print(report.format())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _header(args: argparse.Namespace, name: str) -> str:
    patterns = "".join(f" --pattern '{p}'" for p in args.pattern or [])
    return (
        f"Manifest of the local dataset {name!r}: size and sha256 of every file.\n"
        f"Regenerate with: ctpipe data create {args.root} --name {name}{patterns} "
        f"-o {args.output}"
    )


def _from_template(args: argparse.Namespace, template: Manifest, progress: Progress) -> Manifest:
    from dataclasses import replace

    from ctpipe.io.manifest import hash_files

    files = hash_files(args.root, args.pattern or ("**/*",), progress=progress)
    changes = {"name": args.name} if args.name else {}
    if args.description:
        changes["description"] = args.description
    return replace(template, files=files, **changes)


def run_create(args: argparse.Namespace) -> int:
    """Hash the files of a local dataset into a manifest.

    Hash the files of a local dataset into a manifest, paths relative to ROOT and sorted.
    Hidden files are skipped.

    Returns:
        0 when the manifest is written, 2 when the root, the template or the output
        cannot be used.

    Example:
        >>> args = argparse.Namespace(root=Path("missing"), name="demo", pattern=None,
        ...                           output=Path("m.yaml"), description="", template=None)
        >>> run_create(args)
        2
    """
    from ctpipe.errors import CTPipeError
    from ctpipe.io.manifest import create_manifest, load_manifest, read_header, save_manifest

    progress = _progress_bar("hashing")
    try:
        if args.template is not None:
            manifest = _from_template(args, load_manifest(args.template), progress)
            header = read_header(args.template)
        elif not args.name:
            return _fail("create", ValueError("--name is required unless --template is given"))
        else:
            manifest = create_manifest(
                args.root,
                name=args.name,
                patterns=args.pattern or ("**/*",),
                description=args.description,
                progress=progress,
            )
            header = _header(args, args.name)
        save_manifest(manifest, args.output, header=header)
    except (CTPipeError, OSError, ValueError) as error:
        return _fail("create", error)
    total = sum(entry.size for entry in manifest.files or ())
    print(f"wrote {args.output}: {len(manifest.files or ())} files, {total / 1e6:.1f} MB")
    return EXIT_OK
