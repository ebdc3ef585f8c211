"""Every Kubernetes kind the portal creates is named in words on the pages (ui.names.k8s_kind), in
both languages: the allocation's objects and the batch scheduler's, for Kueue and for Volcano."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.cluster.manifests import allocation_spec, load_cluster_settings, render
from core.cluster.scheduler_queues import cluster_objects
from core.i18n import LANGS, translate
from core.org import load_org
from tests.support import clock
from tests.support.scheduler import settings_for
from ui.names import K8S_KINDS


def _created_kinds() -> set[str]:
    org = load_org()
    spec = allocation_spec(org, allocation_id="A-20300009", project="P-LLM-01", pool="hq-lang", gpus=8, cpu=96,
                           memory_gi=768, expires_at=clock.now() + timedelta(days=30), user="zhang.san@example.com")
    kinds = {m["kind"] for m in render(spec, load_cluster_settings())}
    for scheduler in ("kueue", "volcano"):
        kinds |= {m["kind"] for c in org.clusters for m in cluster_objects(org, c, settings=settings_for(scheduler))}
    return kinds


def test_every_kind_the_portal_creates_has_a_name():
    created = _created_kinds()
    assert {"Namespace", "ResourceQuota", "LocalQueue", "ClusterQueue", "Queue"} <= created
    assert created <= K8S_KINDS, created - K8S_KINDS


@pytest.mark.parametrize("lang", LANGS)
def test_each_name_is_in_the_catalog(lang):
    for kind in K8S_KINDS:
        assert translate(f"uitext.k8s_kind.{kind}", lang).strip()
