"""The Kubernetes API test server and an official client pointed at it: the ``kube`` fixture."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from tests.support.fake_kube_api import FakeKubeApi


@pytest.fixture
def kube():
    with FakeKubeApi() as api:
        cfg = k8s.Configuration()
        cfg.host = api.url
        with k8s.ApiClient(cfg) as client:
            yield api, client
