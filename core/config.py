"""Every setting of ComputeLoop in one place.

Settings come from environment variables (prefix ``COMPUTELOOP_``) and are read when
:func:`load` is called, never at import time, so tests and the CLI can change them per run.
The README's configuration reference is generated from :data:`SETTINGS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"


@dataclass(frozen=True)
class Setting:
    """One documented setting: its environment variable, default and meaning."""

    env: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "COMPUTELOOP_DATABASE_URL",
        f"sqlite:///{PROJECT_ROOT / 'var' / 'computeloop.db'}",
        "SQLAlchemy URL of the portal database (SQLite by default; e.g. "
        "postgresql+psycopg://user@host:5432/db).",
    ),
    Setting(
        "COMPUTELOOP_DATA_DIR",
        str(DATA_DIR),
        "Folder holding the hardware catalog, efficiency table and defaults (YAML, each figure with its source).",
    ),
    Setting(
        "COMPUTELOOP_AUTH",
        "",
        "Required: 'oidc' requires sign-in via st.login (configure [auth] in .streamlit/secrets.toml; roles, "
        "departments and provinces from the ID token's claims, data/oidc.yaml); 'demo' shows a persona switcher "
        "and a demo banner (make run sets it). Unset or any other value: the pages refuse to start.",
    ),
    Setting(
        "COMPUTELOOP_DEFAULT_LANG",
        "",
        "Force the UI language ('zh-CN' or 'en'); empty means: follow the browser locale.",
    ),
    Setting(
        "COMPUTELOOP_CLUSTER_BACKEND",
        "plan",
        "'plan' renders the Kubernetes manifests of each allocation (stored, downloadable as YAML for GitOps) "
        "and counts the GPU nodes of the demo fleet; 'live' applies them through the official client, one "
        "kubeconfig context per cluster, and the water level reads each cluster's GPU nodes from it.",
    ),
    Setting(
        "COMPUTELOOP_TOKEN_KEYS",
        "",
        "Fernet keys (comma-separated; the first seals, all open) that seal the cluster tokens of live "
        "kubeconfigs at rest. Required by the live backend; rotate by putting a new key first.",
    ),
    Setting("COMPUTELOOP_KUBECONFIG", "", "kubeconfig file for the live backend; empty = the client's default (~/.kube/config)."),
    Setting(
        "COMPUTELOOP_PROMETHEUS_URLS",
        "",
        "Prometheus-compatible servers as cluster=url pairs separated by commas (a bare URL is cluster "
        "'default'); empty = the offline sample files.",
    ),
    Setting(
        "COMPUTELOOP_METRICS_DIR",
        "",
        "Folder of offline GPU samples (day=YYYY-MM-DD partitions); empty = var/metrics/samples. "
        "Used when COMPUTELOOP_PROMETHEUS_URLS is empty.",
    ),
    Setting(
        "COMPUTELOOP_PROMETHEUS_RANGES",
        "closed",
        "How the metrics store bounds a range selector: 'closed' for Prometheus 2.x (and Thanos or Mimir on "
        "its engine), 'open' for Prometheus 3 and VictoriaMetrics (left-open ranges); the daily figures "
        "count each sample exactly once either way.",
    ),
    Setting(
        "COMPUTELOOP_PROMETHEUS_CONCURRENCY",
        "4",
        "Queries in flight at once per metrics source (clusters, and the pieces of a long window), 1 to 16.",
    ),
    Setting(
        "COMPUTELOOP_PROMETHEUS_CLUSTER_LABEL",
        "",
        "The label that names each series' cluster when one central store (Thanos Query, Mimir, a "
        "VictoriaMetrics cluster) holds every cluster: list every cluster with the store's URL in "
        "COMPUTELOOP_PROMETHEUS_URLS and each cluster's queries select its series. Empty: one server per cluster.",
    ),
    Setting("COMPUTELOOP_PROMETHEUS_TIMEOUT_S", "10", "Timeout of one Prometheus query, seconds."),
    Setting("COMPUTELOOP_PROMETHEUS_RETRIES", "1", "Connection retries per Prometheus query."),
    Setting(
        "COMPUTELOOP_PROMETHEUS_EXPORTER_NAMESPACES",
        "gpu-operator,nvidia-gpu-operator",
        "Namespaces of dcgm-exporter itself: a GPU labelled only with these is idle.",
    ),
    Setting("COMPUTELOOP_SMTP_HOST", "", "SMTP server for notices; empty = in-app inbox only."),
    Setting("COMPUTELOOP_SMTP_PORT", "587", "SMTP port."),
    Setting("COMPUTELOOP_SMTP_FROM", "computeloop@localhost", "Sender address of notices."),
    Setting("COMPUTELOOP_SMTP_STARTTLS", "1", "'1' upgrades the SMTP connection with STARTTLS."),
    Setting("COMPUTELOOP_SMTP_USER", "", "SMTP login user; empty = no login."),
    Setting("COMPUTELOOP_SMTP_PASSWORD", "", "SMTP login password."),
    Setting(
        "COMPUTELOOP_PUBLIC_URL",
        "",
        "The portal's public address (e.g. https://computeloop.example.com): e-mailed notices about a request "
        "link to it; empty = e-mails name the request by its number only.",
    ),
    Setting(
        "COMPUTELOOP_TIMEZONE",
        "Asia/Shanghai",
        "The organisation's time zone (an IANA name such as Asia/Shanghai): the pages show every time in it; "
        "the database stores UTC.",
    ),
    Setting(
        "COMPUTELOOP_I18N_STRICT",
        "0",
        "'1' makes a missing message key an error instead of showing the key (the tests set it).",
    ),
    Setting(
        "COMPUTELOOP_LOG_FORMAT",
        "text",
        "'json' writes one JSON line per event on stderr (time, level, event, actor, subject, outcome, "
        "message; credentials masked) for a log pipeline; 'text' writes warnings and errors as plain lines.",
    ),
    Setting(
        "COMPUTELOOP_CHROMIUM",
        "",
        "Chromium binary for PDF exports when WeasyPrint cannot render; empty = /usr/bin/chromium or the "
        "first chromium on PATH.",
    ),
)


# Sign-in modes. Anything else (unset, a typo such as "odic", "none") is refused: the portal fails
# closed instead of falling back to the persona switcher.
AUTH_MODES = ("oidc", "demo")


@dataclass(frozen=True)
class Config:
    """The settings in force for one call."""

    database_url: str
    data_dir: Path
    auth_mode: str
    default_lang: str
    i18n_strict: bool
    cluster_backend: str
    kubeconfig: str

    @property
    def auth_valid(self) -> bool:
        """True when COMPUTELOOP_AUTH names a sign-in mode (see :data:`AUTH_MODES`)."""
        return self.auth_mode in AUTH_MODES

    @property
    def demo(self) -> bool:
        """True only when demo mode was asked for explicitly (persona switcher, banner, ?persona=)."""
        return self.auth_mode == "demo"


def _get(name: str) -> str:
    for s in SETTINGS:
        if s.env == name:
            return os.environ.get(name, s.default)
    raise KeyError(name)


def load() -> Config:
    """Read the settings from the environment now."""
    return Config(
        database_url=_get("COMPUTELOOP_DATABASE_URL"),
        data_dir=Path(_get("COMPUTELOOP_DATA_DIR")),
        auth_mode=_get("COMPUTELOOP_AUTH").strip().lower(),
        default_lang=_get("COMPUTELOOP_DEFAULT_LANG").strip(),
        i18n_strict=_get("COMPUTELOOP_I18N_STRICT").strip() == "1",
        cluster_backend=_get("COMPUTELOOP_CLUSTER_BACKEND").strip().lower() or "plan",
        kubeconfig=_get("COMPUTELOOP_KUBECONFIG").strip(),
    )
