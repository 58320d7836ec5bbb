"""``ctpipe serve`` and ``ctpipe pull``: bad input gives one line and exit status 2."""

from __future__ import annotations

import socket

import pytest
import yaml

from ctpipe.cli import main
from tests.pacs.conftest import free_port, node_config


def _write(tmp_path, config) -> str:
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_help_lists_serve_and_pull(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "serve" in out and "pull" in out


def test_serve_refuses_a_missing_config(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: cannot read DICOM node config" in _error(capsys)


def test_serve_refuses_an_unknown_key(tmp_path, capsys):
    config = node_config(tmp_path / "s", free_port(), None, destinaton={})
    assert main(["serve", _write(tmp_path, config)]) == 2
    assert "unknown key 'destinaton'" in _error(capsys)


def test_serve_refuses_a_processor_that_cannot_be_imported(tmp_path, capsys):
    config = node_config(tmp_path / "s", free_port(), None, processor="tests.nowhere:run")
    assert main(["serve", _write(tmp_path, config)]) == 2
    assert "processor 'tests.nowhere:run': cannot import tests.nowhere" in _error(capsys)


def test_serve_refuses_a_bad_workflow_before_listening(tmp_path, capsys):
    config = node_config(tmp_path / "s", free_port(), None)
    del config["processor"]
    config["workflow"] = str(tmp_path / "missing_workflow.yaml")
    assert main(["serve", _write(tmp_path, config)]) == 2
    assert "missing_workflow.yaml" in _error(capsys)
    assert not (tmp_path / "s").exists()  # nothing was set up


def test_serve_reports_a_port_in_use(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = node_config(tmp_path / "s", port, None)
        assert main(["serve", _write(tmp_path, config)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_status_without_a_queue(tmp_path, capsys):
    config = node_config(tmp_path / "empty", free_port(), None)
    assert main(["serve", _write(tmp_path, config), "--status"]) == 2
    assert "no job queue here (queue.sqlite is missing)" in _error(capsys)


def test_status_lists_incomplete_revised_and_skipped_jobs(tmp_path, capsys):
    from ctpipe.pacs.completion import CompletionPolicy
    from ctpipe.pacs.queue import JobQueue

    now = [1000.0]
    queue = JobQueue(tmp_path / "node", clock=lambda: now[0])
    aborted = queue.receiving_job(
        "1.2.1", "1.2", calling_aet="CT1", opens_association=lambda _: True
    )
    queue.association_ended([aborted], aborted=True)
    sent = queue.receiving_job("1.2.2", "1.2", calling_aet="CT2")
    now[0] += 60
    queue.promote_complete(CompletionPolicy(quiet_period_s=1, interrupted_timeout_s=60))
    queue.claim_next()
    queue.claim_next()
    queue.finish_processing(sent, [], send=False)
    late = queue.receiving_job("1.2.2", "1.2", calling_aet="CT2")
    now[0] += 60
    queue.promote_complete(CompletionPolicy(quiet_period_s=1, late_instances="store"))
    queue.close()
    config = node_config(tmp_path / "node", free_port(), None)
    assert main(["serve", _write(tmp_path, config), "--status"]) == 0
    out = capsys.readouterr().out
    assert "INCOMPLETE: the association sending it was aborted" in out
    assert f"REVISED: results of job {sent} were sent before this one" in out
    assert f"{late:>6}  skipped" in out and "late_instances: store" in out
    assert out.strip().endswith("done: 1, failed: 0, skipped: 1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dimse", "ORTHANC:4242"], "--dimse must be AET@HOST:PORT, got 'ORTHANC:4242'"),
        (["--dimse", "O@127.0.0.1:1", "--study-date", "2024"], "study_date must be YYYYMMDD"),
        (["--dimse", "O@127.0.0.1:1", "--calling-ae", ""], "calling_ae must be 1 to 16"),
    ],
)
def test_pull_refuses_bad_arguments(args, message, capsys):
    assert main(["pull", *args, "--list"]) == 2
    assert message in _error(capsys)


def test_pull_names_an_unreachable_pacs(capsys):
    port = free_port()
    assert main(["pull", "--dimse", f"PACS@127.0.0.1:{port}", "--list"]) == 2
    assert f"PACS@127.0.0.1:{port} cannot be reached (calling AE title CTPIPE)" in (
        capsys.readouterr().err
    )
    assert main(["pull", "--dicomweb", f"http://127.0.0.1:{port}/dicom-web", "--list"]) == 2
    assert "QIDO-RS http://127.0.0.1" in capsys.readouterr().err
