from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from ctpipe.errors import InputError
from ctpipe.schema import (
    dataclass_to_dict,
    did_you_mean,
    load_yaml_dataclass,
    parse_dataclass,
)


class JobError(InputError):
    """A throwaway error class, as a workflow schema would define."""


@dataclass(frozen=True)
class Crop:
    size: tuple[int, int] = (64, 64)
    margin: float = 0.0


@dataclass(frozen=True)
class Step:
    name: Literal["denoise", "segment"]
    crop: Crop = field(default_factory=Crop)
    label: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    title: str
    steps: tuple[str, ...] = ()
    first: Step | None = None
    main: Step = field(default_factory=lambda: Step("denoise"))
    workers: int = 1
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class Positive:
    value: int = 1

    def __post_init__(self) -> None:
        if self.value < 1:
            raise ValueError(f"value must be >= 1, got {self.value}")


@dataclass(frozen=True)
class Outer:
    inner: Positive


def parse(data: object, cls: type = Job) -> Any:
    return parse_dataclass(cls, data, source="job.yaml", error=JobError)


def test_defaults_and_conversion():
    job = parse({"title": "t", "steps": ["a", "b"], "main": {"name": "segment"}})
    assert job.steps == ("a", "b")
    assert job.main == Step("segment")
    assert job.main.crop.size == (64, 64)
    assert job.first is None


def test_tuple_conversion_and_numeric_strings():
    crop = parse({"size": [32, 48], "margin": "1e-2"}, Crop)
    assert crop == Crop((32, 48), 0.01)
    assert isinstance(crop.size, tuple)
    assert parse({"margin": 2}, Crop).margin == 2.0


def test_empty_section_takes_defaults():
    assert parse({"title": "t", "main": {"name": "denoise", "crop": None}}).main.crop == Crop()


def test_optional_section():
    job = parse({"title": "t", "first": {"name": "denoise", "label": None}})
    assert job.first == Step("denoise")
    assert parse({"title": "t", "first": None}).first is None


def test_unknown_key_names_path_allowed_keys_and_suggestion():
    with pytest.raises(JobError) as info:
        parse({"title": "t", "main": {"name": "denoise", "crop": {"sise": [1, 1]}}})
    assert str(info.value) == (
        "job.yaml: unknown key 'main.crop.sise'; allowed keys at main.crop: size, margin; "
        "did you mean 'size'?"
    )
    assert info.value.path == Path("job.yaml")


def test_unknown_top_level_key_without_close_match():
    with pytest.raises(JobError, match=r"unknown key 'zzz'; allowed keys at the top level: ti"):
        parse({"title": "t", "zzz": 1})
    with pytest.raises(JobError, match=r"unknown key 'zzz'.*dry_run$"):
        parse({"title": "t", "zzz": 1})


def test_missing_required_key():
    with pytest.raises(JobError, match=r"^job\.yaml: key 'main\.name' is required$"):
        parse({"title": "t", "main": {}})


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"title": 3}, r"title must be a string \(quote it in YAML\), got int 3"),
        ({"title": "t", "workers": "2"}, r"workers must be an integer, got str '2'"),
        ({"title": "t", "workers": True}, r"workers must be an integer, got bool True"),
        ({"title": "t", "dry_run": "yes"}, r"dry_run must be true or false, got str 'yes'"),
        ({"title": "t", "dry_run": None}, r"dry_run must not be null"),
        ({"title": "t", "steps": "a"}, r"steps must be a list, got str 'a'"),
        ({"title": "t", "steps": ["a", 1]}, r"steps\[1\] must be a string"),
        ({"title": "t", "main": {"name": "denoise", "crop": {"size": [1]}}}, r"list of 2 items"),
        ({"title": "t", "main": {"name": "denoise", "crop": {"margin": "x"}}}, r"must be a num"),
        ({"title": "t", "main": {"name": "denoise", "crop": {"margin": "inf"}}}, r"finite"),
        ({"title": "t", "main": {"name": "denoize"}}, r"main\.name must be one of denoise, seg"),
        ({"title": "t", "main": {"name": "denoize"}}, r"did you mean 'denoise'\?$"),
        (
            {"title": "t", "main": {"name": "denoise", "options": [1]}},
            r"main\.options must be a map",
        ),
        ({"title": "t", "main": []}, r"main must be a mapping, got list \[\]"),
        (["title"], r"the top level must be a mapping, got list"),
        (None, r"the top level must be a mapping, got NoneType None"),
    ],
)
def test_wrong_type_names_key_and_value(data, pattern):
    with pytest.raises(JobError, match=pattern):
        parse(data)


def test_rule_of_the_dataclass_becomes_the_error():
    with pytest.raises(JobError, match=r"^job\.yaml: workers must be >= 1, got 0$"):
        parse({"title": "t", "workers": 0})


def test_rule_of_a_section_is_prefixed_with_its_path():
    with pytest.raises(JobError, match=r"^job\.yaml: inner: value must be >= 1, got 0$"):
        parse({"inner": {"value": 0}}, Outer)


def test_default_error_is_input_error():
    with pytest.raises(InputError, match=r"^<config>: key 'title' is required$"):
        parse_dataclass(Job, {})


def test_not_a_dataclass():
    with pytest.raises(TypeError, match="cls must be a dataclass type"):
        parse_dataclass(dict, {})


def test_round_trip():
    job = Job(
        "t",
        steps=("a",),
        first=Step("segment", Crop((8, 8), 0.5), label="x", options={"k": [1, 2]}),
        workers=3,
    )
    data = dataclass_to_dict(job)
    assert data["steps"] == ["a"]
    assert data["first"]["crop"] == {"size": [8, 8], "margin": 0.5}
    assert data["first"]["options"] == {"k": [1, 2]}
    assert parse(data) == job
    assert dataclasses.asdict(parse(data)) == dataclasses.asdict(job)


def test_did_you_mean():
    assert did_you_mean("workres", ["workers", "title"]) == "; did you mean 'workers'?"
    assert did_you_mean("q", ["workers"]) == ""


def test_load_yaml(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("title: t\nsteps: [a]\nmain: {crop: {margin: 1e-3}, name: segment}\n")
    job = load_yaml_dataclass(Job, path, error=JobError)
    assert job.main.crop.margin == pytest.approx(1e-3)
    assert job.steps == ("a",)


def test_load_yaml_error_names_file_and_key(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("title: t\nworker: 2\n")
    with pytest.raises(JobError) as info:
        load_yaml_dataclass(Job, path, error=JobError)
    assert str(info.value).startswith(f"{path}: unknown key 'worker'")
    assert info.value.path == path


@pytest.mark.parametrize(
    ("content", "pattern"),
    [("a: [\n", r"job\.yaml: not valid YAML"), (b"\xff\xfe\x00", r"cannot read job: ")],
)
def test_load_yaml_bad_file(tmp_path, content, pattern):
    path = tmp_path / "job.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(JobError, match=pattern):
        load_yaml_dataclass(Job, path, error=JobError, what="job")


def test_load_yaml_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"absent\.yaml: cannot read config: "):
        load_yaml_dataclass(Job, tmp_path / "absent.yaml")
