"""No credential is shown: settings, URLs and error messages name the server without its secrets."""

from __future__ import annotations

import pytest

from core import redact
from core.errors import ComputeLoopError
from core.metrics.prometheus import MetricsUnavailable

SECRET = "s3cr3t-P@ss"


@pytest.mark.parametrize(("value", "shown"), [
    (f"postgresql+psycopg://portal:{SECRET}@db.corp:5432/computeloop",
     f"postgresql+psycopg://portal:{redact.MASK}@db.corp:5432/computeloop"),
    ("http://prom.js.corp:9090", "http://prom.js.corp:9090"),
    (f"https://bearer{SECRET}@vm.corp/select/0/prometheus", f"https://{redact.MASK}@vm.corp/select/0/prometheus"),
    (f"https://thanos.corp/api?token={SECRET}&dedup=true", f"https://thanos.corp/api?token={redact.MASK}&dedup=true"),
    ("sqlite:///var/computeloop.db", "sqlite:///var/computeloop.db"),
])
def test_a_url_keeps_its_server_and_loses_its_credentials(value, shown):
    assert redact.url(value) == shown


def test_settings_mask_secrets_whole_and_credentials_inside_url_lists():
    assert redact.setting("COMPUTELOOP_SMTP_PASSWORD", SECRET) == redact.MASK
    assert redact.setting("COMPUTELOOP_TOKEN_KEYS", SECRET) == redact.MASK
    assert redact.setting("COMPUTELOOP_SMTP_PASSWORD", "") == ""
    shown = redact.setting("COMPUTELOOP_PROMETHEUS_URLS",
                           f"hq-beijing-1=http://ops:{SECRET}@prom-hq:9090,js-nanjing=http://prom-js:9090")
    assert shown == f"hq-beijing-1=http://ops:{redact.MASK}@prom-hq:9090,js-nanjing=http://prom-js:9090"
    assert redact.setting("COMPUTELOOP_DATABASE_URL", f"postgresql://u:{SECRET}@h/db") == f"postgresql://u:{redact.MASK}@h/db"
    assert redact.setting("COMPUTELOOP_DEFAULT_LANG", "zh-CN") == "zh-CN"


def test_every_error_message_drops_the_credentials_of_the_urls_it_names():
    err = MetricsUnavailable("prometheus.unreachable", cluster="hq-beijing-1",
                             url=f"http://ops:{SECRET}@prom-hq:9090",
                             reason=f"HTTPConnectionPool(host='prom-hq'): Max retries exceeded with url: "
                                    f"http://ops:{SECRET}@prom-hq:9090/api/v1/query")
    for lang in ("en", "zh-CN"):
        assert SECRET not in err.english() and "prom-hq:9090" in err.english()
    assert SECRET not in str(err.params) and isinstance(err, ComputeLoopError)
