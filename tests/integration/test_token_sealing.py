"""Cluster tokens at rest (core.tokens): a live kubeconfig is stored sealed, opened for its owner,
keys rotate, and nothing live is stored in clear without a key."""

from __future__ import annotations

import json

import pytest
import yaml
from cryptography.fernet import Fernet
from sqlalchemy import text

from core import tokens
from core.cluster.backends import LiveBackend, plan_or_live
from core.lifecycle import provisioning as prov
from core.lifecycle import services as svc
from core.org import load_org
from tests.support.forms import MEDIUM
from tests.support.people import APPLICANT, HQ_OPS

LIVE = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: eyJhbGciOiJSUzI1NiJ9.live\n"
PLAN = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: '<token: kubectl -n ns create token sa>'\n"


def test_a_sealed_value_opens_with_its_key_and_holds_no_clear_text(monkeypatch):
    monkeypatch.setenv(tokens.KEYS_ENV, Fernet.generate_key().decode())
    sealed = tokens.seal(LIVE)
    assert sealed.startswith(tokens.PREFIX) and "eyJhbGci" not in sealed
    assert tokens.unseal(sealed) == LIVE and tokens.seal(sealed) == sealed  # sealing twice changes nothing


def test_keys_rotate_new_first_old_still_opens_and_reseal_moves_to_the_new(monkeypatch):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(tokens.KEYS_ENV, old)
    sealed_old = tokens.seal(LIVE)
    monkeypatch.setenv(tokens.KEYS_ENV, f"{new},{old}")
    assert tokens.unseal(sealed_old) == LIVE
    resealed = tokens.reseal(sealed_old)
    monkeypatch.setenv(tokens.KEYS_ENV, new)
    assert tokens.unseal(resealed) == LIVE
    with pytest.raises(tokens.TokenKeyMissing) as err:
        tokens.unseal(sealed_old)  # the old key is gone
    assert err.value.key == "tokens.key_wrong"


def test_without_a_key_a_live_token_is_refused_and_a_placeholder_is_kept_as_it_is(monkeypatch):
    monkeypatch.delenv(tokens.KEYS_ENV)
    with pytest.raises(tokens.TokenKeyMissing) as err:
        tokens.seal(LIVE)
    assert err.value.params["variable"] == "COMPUTELOOP_TOKEN_KEYS"
    assert tokens.seal(PLAN) == PLAN
    with pytest.raises(tokens.TokenKeyMissing):
        plan_or_live("live", load_org())  # the live backend does not start without a key
    monkeypatch.setenv(tokens.KEYS_ENV, "not-a-key")
    with pytest.raises(tokens.TokenKeyMissing) as err:
        tokens.configured()
    assert err.value.key == "tokens.key_invalid"


def test_a_live_allocation_stores_its_token_sealed_and_its_owner_gets_it(ctx, monkeypatch, kube):
    api, client = kube
    monkeypatch.setattr(prov, "backend_for", lambda org: LiveBackend(org, clients={"hq-beijing-2": client}))
    request = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)
    done = svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=request["id"], decision="approve", reason="资源充足")
    assert done["provisioning"]["status"] == "active"
    sheet = prov.allocation_sheet(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"])
    token = yaml.safe_load(sheet["access"]["kubeconfig"])["users"][0]["user"]["token"]
    assert token and not token.startswith("<token")
    with ctx.engine.connect() as conn:
        stored = conn.execute(text("SELECT kubeconfig FROM allocations WHERE request_id = :r"),
                              {"r": request["id"]}).scalar_one()
    assert stored.startswith(tokens.PREFIX) and token not in stored and "users:" not in stored


def test_a_released_allocation_keeps_no_kubeconfig(ctx):
    from core.reclaim import services as reclaim

    request = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form={**MEDIUM, "requested_gpus": 4})
    if request["status"] != "approved":
        svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=request["id"], decision="approve", reason="ok")
    assert prov.allocation_sheet(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"])["access"]["kubeconfig"]
    reclaim.return_allocation(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"], reason="训练完成")
    sheet = prov.allocation_sheet(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"])
    assert sheet["status"] == "returned" and not sheet["access"]["kubeconfig"]
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT kubeconfig FROM allocations WHERE request_id = :r"),
                            {"r": request["id"]}).scalar_one() is None


def test_db_reseal_tokens_moves_every_stored_token_to_the_new_key(ctx, cli, monkeypatch, kube):
    """The last step of a rotation: after `db reseal-tokens` the old key can go; a row no key opens
    refuses the whole run (exit 2, one line) and nothing is written."""
    api, client = kube
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(tokens.KEYS_ENV, old)
    monkeypatch.setattr(prov, "backend_for", lambda org: LiveBackend(org, clients={"hq-beijing-2": client}))
    request = svc.submit(sessions=ctx.sessions, actor=APPLICANT, form=MEDIUM)
    svc.decide(sessions=ctx.sessions, actor=HQ_OPS, request_id=request["id"], decision="approve", reason="资源充足")

    def stored() -> str:
        with ctx.engine.connect() as conn:
            return conn.execute(text("SELECT kubeconfig FROM allocations WHERE request_id = :r"),
                                {"r": request["id"]}).scalar_one()

    under_old = stored()
    monkeypatch.setenv(tokens.KEYS_ENV, new)  # the old key missing: the row cannot be opened
    code, out, err = cli("db", "reseal-tokens")
    assert code == 2 and out == "" and err.count("\n") == 1 and tokens.KEYS_ENV in err, (code, out, err)
    assert stored() == under_old

    monkeypatch.setenv(tokens.KEYS_ENV, f"{new},{old}")
    code, out, err = cli("db", "reseal-tokens", "--json")
    assert code == 0, err
    assert json.loads(out)["resealed"] >= 1
    monkeypatch.setenv(tokens.KEYS_ENV, new)  # the old key removed: the token still opens
    sheet = prov.allocation_sheet(sessions=ctx.sessions, actor=APPLICANT, request_id=request["id"])
    assert yaml.safe_load(sheet["access"]["kubeconfig"])["users"][0]["user"]["token"].startswith("fake-token-")
    assert stored() != under_old
