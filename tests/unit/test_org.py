"""The organisation file loads, and a broken reference names its entry."""

import shutil

import pytest

from core.config import DATA_DIR
from core.errors import InputError
from core.org import POOL_KINDS, load_org


def test_demo_org_has_hq_five_provinces_and_every_pool_kind():
    org = load_org()
    assert [u.level for u in org.units.values()].count("province") == 5
    assert {p.kind for p in org.pools.values()} == set(POOL_KINDS)
    assert org.cluster_of("hq-lang").kube_context == "hq-beijing-1"
    assert org.pools["sd-pool"].nodes == 12


def test_a_pool_on_an_unknown_cluster_is_named(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    text = (data / "org.yaml").read_text(encoding="utf-8").replace("cluster: sc-chengdu,", "cluster: nowhere,")
    (data / "org.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("COMPUTELOOP_DATA_DIR", str(data))
    with pytest.raises(InputError) as err:
        load_org()
    assert err.value.field == "org.yaml"
    assert "pools.sc-pool.cluster = nowhere" in err.value.params["entry"]
