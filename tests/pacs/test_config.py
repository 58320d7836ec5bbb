"""The serve configuration: the shipped example, and every refusal names the key."""

from __future__ import annotations

import pytest

from ctpipe.pacs.config import ServeConfig, ServeConfigError, load_serve_config
from tests.conftest import REPO

BASE = {"storage": "node", "workflow": "workflows/denoise_segment.yaml"}


def test_the_example_config_loads():
    config = load_serve_config(REPO / "workflows" / "pacs_node.yaml")
    assert config.node.ae_title == "CTPIPE" and config.node.allowed_calling_aets == ("ORTHANC",)
    assert config.node.require_called_aet and config.node.strict_uids
    assert (config.completion.incomplete, config.completion.late_instances) == (
        "mark",
        "reprocess",
    )
    assert config.destination.describe() == "C-STORE ORTHANC@127.0.0.1:4242"
    assert [config.destination.retry.delay(n) for n in (1, 2, 3, 8, 9)] == [5, 10, 20, 300, 300]
    assert (REPO / config.workflow).name == "denoise_segment.yaml"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"nodes": {}}, "unknown key 'nodes'; .* did you mean 'node'"),
        ({"processor": "pkg.mod:run"}, "exactly one of workflow .* and processor"),
        ({"workflow": None}, "exactly one of workflow"),
        (
            {"workflow": None, "processor": "no colon"},
            "processor must be 'package.module:callable'",
        ),
        ({"node": {"ae_title": "A" * 17}}, "node: ae_title must be 1 to 16 characters"),
        ({"node": {"allowed_calling_aets": ["OK", "BAD\\AE"]}}, r"allowed_calling_aets\[1\]"),
        ({"node": {"port": 70000}}, "node: port must be a TCP port in 1..65535, got 70000"),
        ({"node": {"port": "104"}}, "node.port must be an integer, got str '104'"),
        ({"completion": {"quiet_period_s": -1}}, "completion: quiet_period_s must be at least 0"),
        ({"destination": {"kind": "dimse", "port": 104}}, "ae_title and port are required"),
        ({"destination": {"kind": "dicomweb", "url": "ftp://x"}}, "url is required for kind"),
        ({"destination": {"kind": "stow"}}, "destination.kind must be one of dimse, dicomweb"),
        (
            {
                "destination": {
                    "kind": "dimse",
                    "ae_title": "P",
                    "port": 1,
                    "retry": {"factor": 0.5},
                }
            },
            "destination.retry: factor must be at least 1",
        ),
        ({"max_process_attempts": 0}, "max_process_attempts must be at least 1, got 0"),
        ({"node": {"require_called_aet": "no"}}, "node.require_called_aet must be true or false"),
        ({"node": {"strict_uids": 1}}, "node.strict_uids must be true or false"),
        ({"completion": {"incomplete": "process"}}, "completion.incomplete must be one of mark"),
        (
            {"completion": {"late_instances": "merge"}},
            "completion.late_instances must be one of reprocess, store",
        ),
    ],
)
def test_bad_configs_are_refused_with_the_key(change, message):
    with pytest.raises(ServeConfigError, match=message):
        ServeConfig.from_dict({**BASE, **change}, source="node.yaml")


def test_ae_titles_lose_their_padding():
    config = ServeConfig.from_dict({**BASE, "node": {"ae_title": " CTPIPE  "}})
    assert config.node.ae_title == "CTPIPE"
